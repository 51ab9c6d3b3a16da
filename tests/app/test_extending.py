"""A user's own options from their own config folder (``hydra.searchpath``), no Python edit:
a torch scheduler and a torch optimizer, each one YAML; and the shipped whole-run schedules."""

from __future__ import annotations

import csv
import json
import math

import pytest

from lenet_lab.record import Status

QUIET = (
    "trainer.progress_bar=false",
    "trainer.device=cpu",
    "trainer.save_samples=false",
    "trainer.save_curves=false",
)

STEP_YAML = """\
# scheduler/step.yaml: halve the lr after every epoch
_target_: torch.optim.lr_scheduler.StepLR
_partial_: true
step_size: 1
gamma: 0.5
"""
RMSPROP_YAML = """\
# optimizer/rmsprop.yaml
_target_: torch.optim.RMSprop
_partial_: true
lr: 0.002
alpha: 0.9
"""


@pytest.fixture
def user_conf(tmp_path):
    conf = tmp_path / "their_conf"
    (conf / "scheduler").mkdir(parents=True)
    (conf / "optimizer").mkdir()
    (conf / "scheduler" / "step.yaml").write_text(STEP_YAML)
    (conf / "optimizer" / "rmsprop.yaml").write_text(RMSPROP_YAML)
    return conf


def lr_column(out_dir) -> list[float]:
    with (out_dir / "metrics.csv").open(newline="") as f:
        return [float(row["lr"]) for row in csv.DictReader(f)]


def test_a_users_scheduler_and_optimizer_from_their_config_folder(run_train, user_conf):
    proc = run_train(
        f"hydra.searchpath=[file://{user_conf}]",
        "scheduler=step",
        "optimizer=rmsprop",
        "trainer.epochs=3",
        *QUIET,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert lr_column(proc.out_dir) == pytest.approx([0.002, 0.001, 0.0005])
    summary = json.loads((proc.out_dir / "summary.json").read_text())
    assert summary["status"] == Status.COMPLETED and summary["epochs_run"] == 3
    assert summary["config"]["optimizer"]["_target_"] == "torch.optim.RMSprop"
    assert summary["best_val_acc"] > 0.3, "tiny data is learnable: well above chance (0.1)"
    assert summary["objective"] == summary["best_val_acc"]


def test_a_bad_value_of_a_users_option_is_one_line_naming_the_key(run_train, user_conf, tmp_path):
    # torch's own check (RMSprop: "Invalid alpha value"), before any data is read
    proc = run_train(
        f"hydra.searchpath=[file://{user_conf}]",
        "optimizer=rmsprop",
        "optimizer.alpha=-1",
        data_root=tmp_path / "nowhere",
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert errors == ["error: optimizer.alpha: Invalid alpha value: -1 (optimizer=rmsprop)"]


@pytest.mark.parametrize("option", ["cosine", "onecycle"])
def test_whole_run_schedules_in_a_run(tmp_path, tiny_env, option):
    """Stepped every batch over the run's length from the trainer: the lr of each epoch's
    first batch falls after the peak, and the run trains."""
    from conftest import compose_config
    from lenet_lab.run import train

    cfg = compose_config(
        *QUIET, f"scheduler={option}", "optimizer=adamw", "optimizer.lr=0.01", "trainer.epochs=4"
    )
    summary = train(cfg, tmp_path)
    lrs = lr_column(tmp_path)
    assert summary["status"] == Status.COMPLETED and len(lrs) == 4
    if option == "cosine":
        assert lrs[0] == pytest.approx(0.01) and lrs == sorted(lrs, reverse=True)
        # cosine at the start of epoch 3 of 4: half-way, (1 + cos(pi/2)) / 2 = 0.5
        assert lrs[2] == pytest.approx(0.005, rel=1e-6)
    else:
        assert lrs[0] == pytest.approx(0.01 / 25) and max(lrs) > lrs[0] and lrs[-1] < max(lrs)
    assert math.isfinite(summary["best_val_acc"]) and summary["best_val_acc"] > 0.3


def test_an_option_without_partial_says_what_the_trainer_adds(user_conf):
    from hydra import compose, initialize_config_dir

    from conftest import CONF_DIR
    from lenet_lab.validation import ConfigError, validate

    path = user_conf / "optimizer" / "rmsprop.yaml"
    path.write_text(RMSPROP_YAML.replace("_partial_: true\n", ""))
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "train", overrides=[f"hydra.searchpath=[file://{user_conf}]", "optimizer=rmsprop"]
        )
    with pytest.raises(
        ConfigError,
        match=r"^optimizer._partial_ must be true: the trainer "
        r"adds the model's parameters$",
    ):
        validate(cfg)
