"""Every config group option composes and builds; bad values fail early with one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import CONF_DIR, compose_config
from lenet_lab import optim, regularizers
from lenet_lab.model import LeNet5, count_parameters
from lenet_lab.run import build_model, train
from lenet_lab.validation import ConfigError, validate

GROUPS = [
    "data", "model", "optimizer", "regularizer", "normalization",
    "scheduler", "early_stopping", "experiment",
]  # fmt: skip
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONF_DIR / g).glob("*.yaml"))]


def test_every_group_has_options():
    found = {g for g, _ in OPTIONS}
    assert found == set(GROUPS)
    assert len([o for g, o in OPTIONS if g == "experiment"]) == 7  # ex3 .. ex7


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_builds(group, option):
    cfg = compose_config(f"{group}={option}")
    if group != "experiment":
        assert cfg[group].name == option
    validate(cfg)  # every shipped option is valid
    model = build_model(cfg, torch.device("cpu"))
    assert count_parameters(model) == 44_426 + (12 if cfg.normalization.name == "batchnorm" else 0)
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    opt = optim.build_optimizer(model, cfg.optimizer, cfg.regularizer)
    assert optim.current_lr(opt) == pytest.approx(cfg.optimizer.lr)
    assert opt.param_groups[0]["weight_decay"] == regularizers.weight_decay(cfg.regularizer)
    sched = optim.build_scheduler(opt, cfg.scheduler)
    assert (sched is None) == (cfg.scheduler.name == "none")
    OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # no dangling ${...}


def test_defaults_are_the_sheet():
    cfg = compose_config()
    assert cfg.optimizer.name == "sgd" and cfg.optimizer.lr == 0.1 and cfg.optimizer.momentum == 0.9
    assert cfg.trainer.epochs == 100 and cfg.data.batch_size == 64
    assert cfg.regularizer.name == cfg.scheduler.name == cfg.early_stopping.name == "none"
    assert cfg.data.train_size is None and cfg.data.val_size is None
    sub = compose_config("data=fashion_mnist_subset")
    assert (sub.data.train_size, sub.data.val_size) == (10_000, 2_000)


@pytest.mark.parametrize(
    ("option", "cls"),
    [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)],
)
def test_optimizer_classes(option, cls):
    cfg = compose_config(f"optimizer={option}")
    opt = optim.build_optimizer(LeNet5(), cfg.optimizer, cfg.regularizer)
    assert type(opt) is cls
    if option == "sgd":
        assert opt.param_groups[0]["momentum"] == 0.9 and opt.param_groups[0]["lr"] == 0.1


@pytest.mark.parametrize("option", ["sgd", "adam", "adamw"])
def test_l2_is_weight_decay_001(option):
    cfg = compose_config(f"optimizer={option}", "regularizer=l2")
    opt = optim.build_optimizer(LeNet5(), cfg.optimizer, cfg.regularizer)
    assert all(g["weight_decay"] == 0.01 for g in opt.param_groups)
    assert regularizers.l1_coef(cfg.regularizer) == 0.0
    assert regularizers.dropout_p(cfg.regularizer) == 0.0


def test_only_l2_sets_weight_decay():
    for reg in ("none", "l1", "dropout"):
        cfg = compose_config(f"regularizer={reg}")
        opt = optim.build_optimizer(LeNet5(), cfg.optimizer, cfg.regularizer)
        assert opt.param_groups[0]["weight_decay"] == 0.0


def test_regularizer_options_reach_the_model():
    cfg = compose_config("regularizer=dropout")
    model = build_model(cfg, torch.device("cpu"))
    assert model.drop_conv.p == model.drop_fc.p == 0.5
    cfg = compose_config("regularizer=l1")
    assert regularizers.l1_coef(cfg.regularizer) == 0.001


def test_plateau_scheduler_settings():
    cfg = compose_config("scheduler=plateau")
    opt = optim.build_optimizer(LeNet5(), cfg.optimizer, cfg.regularizer)
    sched = optim.build_scheduler(opt, cfg.scheduler)
    assert isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
    assert (sched.factor, sched.patience, sched.mode) == (0.1, 2, "min")


@pytest.mark.parametrize(
    ("preset", "checks"),
    [
        ("ex3_baseline", {"optimizer.name": "sgd", "regularizer.name": "none",
                          "early_stopping.name": "none", "trainer.epochs": 100}),
        ("ex4_early_stopping", {"early_stopping.patience": 5, "early_stopping.min_delta": 0.005}),
        ("ex5_l2", {"regularizer.name": "l2", "regularizer.coef": 0.01,
                    "early_stopping.name": "val_loss"}),
        ("ex5_l1", {"regularizer.name": "l1", "regularizer.coef": 0.001}),
        ("ex5_dropout", {"regularizer.name": "dropout", "regularizer.p": 0.5}),
        ("ex6_plateau", {"scheduler.name": "plateau", "scheduler.factor": 0.1,
                         "scheduler.patience": 2, "early_stopping.patience": 5}),
        ("ex7_batchnorm", {"normalization.name": "batchnorm", "early_stopping.name": "val_loss"}),
    ],
)  # fmt: skip
def test_experiment_presets_set_the_sheet_values(preset, checks):
    cfg = compose_config(f"experiment={preset}")
    assert cfg.task_name == preset
    for key, value in checks.items():
        assert OmegaConf.select(cfg, key) == value, key


def test_command_line_beats_preset():
    cfg = compose_config("experiment=ex3_baseline", "trainer.epochs=1")
    assert cfg.trainer.epochs == 1


# --------------------------------------------------------------------------- validation

BAD_VALUES = [
    (["optimizer.lr=0"], "optimizer.lr", "0"),
    (["optimizer.lr=-0.1"], "optimizer.lr", "-0.1"),
    (["optimizer=adam", "optimizer.lr=-1e-3"], "optimizer.lr", "-0.001"),
    (["optimizer.momentum=-0.5"], "optimizer.momentum", "-0.5"),
    (["regularizer=dropout", "regularizer.p=1.0"], "regularizer.p", "1.0"),
    (["regularizer=dropout", "regularizer.p=-0.1"], "regularizer.p", "-0.1"),
    (["trainer.epochs=-1"], "trainer.epochs", "-1"),
    (["trainer.epochs=1.5"], "trainer.epochs", "1.5"),
    (["data.batch_size=0"], "data.batch_size", "0"),
    (["data.val_batch_size=0"], "data.val_batch_size", "0"),
    (["data.train_size=0"], "data.train_size", "0"),
    (["early_stopping=val_loss", "early_stopping.patience=-1"], "early_stopping.patience", "-1"),
    (["early_stopping=val_loss", "early_stopping.min_delta=-0.1"],
     "early_stopping.min_delta", "-0.1"),
    (["scheduler=plateau", "scheduler.patience=-2"], "scheduler.patience", "-2"),
    (["scheduler=plateau", "scheduler.factor=1.5"], "scheduler.factor", "1.5"),
    (["regularizer=l1", "regularizer.coef=-0.001"], "regularizer.coef", "-0.001"),
    (["regularizer=l2", "regularizer.coef=-0.01"], "regularizer.coef", "-0.01"),
    (["trainer.device=tpu"], "trainer.device", "'tpu'"),
    (["trainer.device=mps"], "trainer.device", "'mps'"),
    (["optimizer.name=rmsprop"], "optimizer.name", "'rmsprop'"),
    (["regularizer.name=l3"], "regularizer.name", "'l3'"),
    (["trainer.explicit_backward=flase"], "trainer.explicit_backward", "'flase'"),
    (["trainer.cuda_graph=2"], "trainer.cuda_graph", "2"),
    (["trainer.explicit_backward=null"], "trainer.explicit_backward", "None"),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "key", "shown"), BAD_VALUES, ids=lambda v: str(v))
def test_validate_names_key_and_value(overrides, key, shown):
    cfg = compose_config(*overrides)
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    msg = str(err.value)
    assert key in msg and f"got {shown}" in msg, msg
    assert "\n" not in msg


def test_cuda_without_gpu_is_a_config_error():
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(ConfigError, match=r"trainer.device='cuda' but no CUDA GPU"):
        validate(compose_config("trainer.device=cuda"))


def test_validate_resolves_devices():
    assert validate(compose_config("trainer.device=cpu")) == torch.device("cpu")
    auto = validate(compose_config())
    assert auto.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_bad_config_fails_before_reading_data(monkeypatch, tmp_path):
    """A bad value wins over missing data: validation runs first, nothing is written."""
    monkeypatch.setenv("FASHION_MNIST_ROOT", str(tmp_path / "nowhere"))
    cfg = compose_config("optimizer.lr=0")
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="optimizer.lr"):
        train(cfg, out)
    assert not out.exists()


def test_preset_keys_of_another_option_are_not_errors(run_train):
    """ex5_l2 sets regularizer.coef; choosing dropout instead just leaves it unused."""
    proc = run_train("experiment=ex5_l2", "regularizer=dropout", "trainer.epochs=0")
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((proc.out_dir / "summary.json").read_text())
    assert summary["config"]["regularizer"] == {"name": "dropout", "p": 0.5, "coef": 0.01}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optimizer.lr=-1", "error: optimizer.lr must be > 0, got -1"),
        ("trainer.device=tpu", "error: trainer.device must be auto, cpu or cuda[:N], got 'tpu'"),
        (
            "+regularizer.coef=0.1",  # what Hydra suggests for regularizer.coef=0.1 alone
            "error: regularizer.coef is not used by regularizer=none: choose an option that "
            "uses it (e.g. regularizer=l2) or drop it",
        ),
    ],
)
def test_train_py_rejects_bad_values(run_train, tmp_path, override, message):
    # FASHION_MNIST_ROOT points nowhere: a data error would mean the data was read first
    proc = run_train(override, data_root=tmp_path / "nowhere")
    assert proc.returncode == 2, proc.stderr
    error_lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert error_lines == [message], proc.stderr
    assert (proc.stdout + proc.stderr).count(message.removeprefix("error: ")) == 1  # once
    assert message in (proc.out_dir / "train.log").read_text()  # and in the run's log
    assert "Traceback" not in proc.stderr
    assert not (proc.out_dir / "metrics.csv").exists()
    assert not Path(tmp_path / "nowhere").exists()
