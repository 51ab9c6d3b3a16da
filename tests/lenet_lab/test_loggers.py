"""The logger group: each logger writes the run's per-epoch metrics and its config
(optional extras: skipped where the package is not installed)."""

from __future__ import annotations

import pytest

from conftest import compose_config
from lenet_lab.record import Status
from lenet_lab.run import train

QUIET = (
    "trainer.progress_bar=false",
    "trainer.device=cpu",
    "trainer.save_samples=false",
    "trainer.save_curves=false",
    "trainer.save_checkpoint=false",
    "trainer.epochs=2",
)


def test_tensorboard_logger_writes_metrics_and_config(tmp_path, tiny_env):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    summary = train(compose_config(*QUIET, "logger=tensorboard"), tmp_path)
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    val_acc = events.Scalars("val_acc")
    assert [e.step for e in val_acc] == [1, 2]
    assert max(e.value for e in val_acc) == pytest.approx(summary["best_val_acc"])
    assert {"train_loss", "val_loss", "lr", "param_std"} <= set(events.Tags()["scalars"])
    text = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "torch.optim.SGD" in text and "epochs: 2" in text


@pytest.mark.slow  # MLflow (an optional extra) starts slowly: make test-all
def test_mlflow_logger_writes_metrics_and_config(tmp_path, tiny_env, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    summary = train(compose_config(*QUIET, "logger=mlflow"), tmp_path)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("lenet-lab")
    (run,) = client.search_runs([experiment.experiment_id])
    history = client.get_metric_history(run.info.run_id, "val_acc")
    assert sorted(m.step for m in history) == [1, 2]
    assert max(m.value for m in history) == pytest.approx(summary["best_val_acc"])
    assert run.data.params["optimizer.lr"] == "0.1"
    assert run.data.params["trainer.epochs"] == "2"
    assert run.data.tags["status"] == Status.COMPLETED
    config = client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path / "dl"))
    assert "torch.optim.SGD" in open(config).read()
    assert (tmp_path / "mlruns").is_dir()  # artifacts beside the run, not in the cwd


def test_a_missing_extra_is_a_config_error_before_data(monkeypatch, tmp_path):
    import importlib.util

    from lenet_lab.errors import ConfigError
    from lenet_lab.validation import validate

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tensorboard" else real(name, *a),
    )
    with pytest.raises(ConfigError, match=r"^logger: needs the tensorboard package: pip"):
        validate(compose_config("logger=tensorboard"))
