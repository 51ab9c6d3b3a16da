"""Every config group option composes and builds; bad values fail early with one clear line."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import CONF_DIR, compose_config, run_hydra_inprocess
from lenet_lab import regularizers
from lenet_lab.components import build_components, build_scheduler
from lenet_lab.errors import ConfigError
from lenet_lab.fixed_keys import SCHEMAS
from lenet_lab.groups import GROUPS as TECHNIQUE_GROUPS
from lenet_lab.model import count_parameters
from lenet_lab.run import train
from lenet_lab.validation import validate

GROUPS = ["data", *TECHNIQUE_GROUPS, "experiment"]
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONF_DIR / g).glob("*.yaml"))]
CPU = torch.device("cpu")
ES, PLATEAU = "lenet_lab.callbacks.EarlyStopping", "torch.optim.lr_scheduler.ReduceLROnPlateau"
OPTIONAL_EXTRAS = {"tensorboard": "tensorboard", "mlflow": "mlflow"}


def test_every_group_has_options():
    found = {g for g, _ in OPTIONS}
    assert found == set(GROUPS)
    assert len([o for g, o in OPTIONS if g == "experiment"]) == 7  # ex3 .. ex7


def test_every_instantiated_group_has_none_or_a_default():
    for group in (
        "regularizer",
        "normalization",
        "scheduler",
        "augmentation",
        "averaging",
        "early_stopping",
        "logger",
    ):
        assert (CONF_DIR / group / "none.yaml").is_file(), group


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_builds(group, option):
    if group == "logger" and option in OPTIONAL_EXTRAS:
        pytest.importorskip(OPTIONAL_EXTRAS[option])
    cfg = compose_config(f"{group}={option}")
    validate(cfg)  # every shipped option is valid: each component is built once
    parts = build_components(cfg, CPU)
    bn = 12 if cfg.normalization._target_ else 0
    padded = cfg.model.padding == 2
    assert count_parameters(parts.model) == (61_706 if padded else 44_426) + bn
    assert parts.model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert parts.optimizer.param_groups[0]["lr"] == pytest.approx(cfg.optimizer.lr)
    wd = cfg.regularizer.coef if cfg.regularizer._target_ == "lenet_lab.regularizers.L2" else 0.0
    assert parts.optimizer.param_groups[0]["weight_decay"] == wd
    sched = build_scheduler(cfg, parts.optimizer, epochs=3, steps_per_epoch=5)
    assert (sched is None) == (cfg.scheduler._target_ is None)
    OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # no dangling ${...}


def test_every_yaml_key_is_commented():
    """Each key line of an option or preset (not hparams_search/hydra) has a # comment."""
    for group, option in OPTIONS:
        for line in (CONF_DIR / group / f"{option}.yaml").read_text().splitlines():
            text = line.strip()
            if not text or text.startswith(("#", "- ", "defaults:")) or text.endswith(":"):
                continue
            assert "#" in line, f"{group}/{option}.yaml: {line!r} has no comment"


def test_defaults_are_the_sheet():
    cfg = compose_config()
    assert cfg.optimizer._target_ == "torch.optim.SGD"
    assert cfg.optimizer.lr == 0.1 and cfg.optimizer.momentum == 0.9
    assert cfg.trainer.epochs == 100 and cfg.data.batch_size == 64
    for group in (
        "regularizer",
        "scheduler",
        "early_stopping",
        "augmentation",
        "averaging",
        "logger",
    ):
        assert cfg[group]._target_ is None, group
    assert cfg.loss.label_smoothing == 0.0 and cfg.data.val_split == "test"
    assert cfg.data.train_size is None and cfg.data.val_size is None
    sub = compose_config("data=fashion_mnist_subset")
    assert (sub.data.train_size, sub.data.val_size) == (10_000, 2_000)


@pytest.mark.parametrize(
    ("option", "cls"),
    [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)],
)
def test_optimizer_classes(option, cls):
    opt = build_components(compose_config(f"optimizer={option}"), CPU).optimizer
    assert type(opt) is cls
    assert opt.defaults["fused"] is True  # one kernel for all parameters on the CPU
    if option == "sgd":
        assert opt.param_groups[0]["momentum"] == 0.9 and opt.param_groups[0]["lr"] == 0.1


@pytest.mark.parametrize("option", ["sgd", "adam", "adamw"])
def test_l2_is_weight_decay_001(option):
    parts = build_components(compose_config(f"optimizer={option}", "regularizer=l2"), CPU)
    assert all(g["weight_decay"] == 0.01 for g in parts.optimizer.param_groups)
    assert parts.loss_terms == [] and isinstance(parts.model.drop_fc, torch.nn.Identity)


def test_only_l2_sets_weight_decay():
    for reg in ("none", "l1", "dropout"):
        opt = build_components(compose_config(f"regularizer={reg}"), CPU).optimizer
        assert opt.param_groups[0]["weight_decay"] == 0.0


def test_regularizer_options_reach_the_model_and_the_loss():
    model = build_components(compose_config("regularizer=dropout"), CPU).model
    assert model.drop_conv.p == model.drop_fc.p == 0.5
    parts = build_components(compose_config("regularizer=l1"), CPU)
    (term,) = parts.loss_terms
    assert isinstance(term, regularizers.L1Penalty) and term.coef == 0.001


def test_plateau_scheduler_settings():
    cfg = compose_config("scheduler=plateau")
    opt = build_components(cfg, CPU).optimizer
    sched = build_scheduler(cfg, opt, epochs=3, steps_per_epoch=5).scheduler
    assert isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
    assert (sched.factor, sched.patience, sched.mode) == (0.1, 2, "min")


@pytest.mark.parametrize(("option", "length"), [("cosine", 3 * 5), ("onecycle", 3 * 5)])
def test_whole_run_schedulers_get_the_run_length(option, length):
    cfg = compose_config(f"scheduler={option}", "optimizer.lr=0.05")
    opt = build_components(cfg, CPU).optimizer
    callback = build_scheduler(cfg, opt, epochs=3, steps_per_epoch=5)
    assert callback.interval == "batch"
    sched = callback.scheduler
    assert (sched.T_max if option == "cosine" else sched.total_steps) == length
    lrs = []
    for _ in range(length):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()  # no gradients: a no-op that keeps torch's step-order check quiet
        callback.on_batch_end(None)
    assert max(lrs) == pytest.approx(0.05, rel=0.02) and lrs[-1] < 0.05 / 10


@pytest.mark.parametrize(
    ("preset", "checks"),
    [
        (
            "ex3_baseline",
            {
                "optimizer._target_": "torch.optim.SGD",
                "regularizer._target_": None,
                "early_stopping._target_": None,
                "trainer.epochs": 100,
            },
        ),
        ("ex4_early_stopping", {"early_stopping.patience": 5, "early_stopping.min_delta": 0.005}),
        (
            "ex5_l2",
            {
                "regularizer._target_": "lenet_lab.regularizers.L2",
                "regularizer.coef": 0.01,
                "early_stopping._target_": ES,
            },
        ),
        (
            "ex5_l1",
            {"regularizer._target_": "lenet_lab.regularizers.L1", "regularizer.coef": 0.001},
        ),
        (
            "ex5_dropout",
            {"regularizer._target_": "lenet_lab.regularizers.Dropout", "regularizer.p": 0.5},
        ),
        (
            "ex6_plateau",
            {
                "scheduler._target_": PLATEAU,
                "scheduler.factor": 0.1,
                "scheduler.patience": 2,
                "early_stopping.patience": 5,
            },
        ),
        (
            "ex7_batchnorm",
            {"normalization._target_": "torch.nn.BatchNorm2d", "early_stopping._target_": ES},
        ),
    ],
)
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
    (
        ["early_stopping=val_loss", "early_stopping.min_delta=-0.1"],
        "early_stopping.min_delta",
        "-0.1",
    ),
    (["scheduler=plateau", "scheduler.patience=-2"], "scheduler.patience", "-2"),
    (["scheduler=plateau", "scheduler.factor=1.5"], "scheduler.factor", "1.5"),
    (["regularizer=l1", "regularizer.coef=-0.001"], "regularizer.coef", "-0.001"),
    (["regularizer=l2", "regularizer.coef=-0.01"], "regularizer.coef", "-0.01"),
    (["trainer.device=tpu"], "trainer.device", "'tpu'"),
    (["trainer.device=mps"], "trainer.device", "'mps'"),
    (["optimizer=adam", "optimizer.eps=-1.0"], "optimizer.eps", "-1.0"),  # torch's own check
    (["optimizer=adam", "optimizer.betas=[0.9,1.5]"], "optimizer.betas", "1.5"),
    (["optimizer._target_=torch.optim.Nope"], "optimizer._target_", "'torch.optim.Nope'"),
    (["loss.label_smoothing=2"], "loss.label_smoothing", "2"),
    (["augmentation=shift", "augmentation.max_pixels=-1"], "augmentation.max_pixels", "-1"),
    (["scheduler=cosine", "scheduler.interval=step"], "scheduler.interval", "'step'"),
    (["scheduler=plateau", "scheduler.monitor=val_los"], "scheduler.monitor", "'val_los'"),
    (["data.val_split=train"], "data.val_split", "'train'"),
    (["data.holdout_size=0"], "data.holdout_size", "0"),
    (["trainer.progress_bar=flase"], "trainer.progress_bar", "'flase'"),
    (["trainer.cuda_graph=2"], "trainer.cuda_graph", "2"),
    (["trainer.save_curves=null"], "trainer.save_curves", "None"),
]


@pytest.mark.parametrize(("overrides", "key", "shown"), BAD_VALUES, ids=lambda v: str(v))
def test_validate_names_key_and_value(overrides, key, shown):
    cfg = compose_config(*overrides)
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    msg = str(err.value)
    assert key in msg and (f"got {shown}" in msg or shown in msg), msg
    assert err.value.key == key
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


@pytest.mark.slow  # a train.py subprocess: make test-all
def test_preset_keys_of_another_option_are_not_errors(run_train):
    """ex5_l2 sets regularizer.coef; choosing dropout instead just leaves it unused."""
    proc = run_train("experiment=ex5_l2", "regularizer=dropout", "trainer.epochs=0")
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((proc.out_dir / "summary.json").read_text())
    assert summary["config"]["regularizer"] == {
        "_target_": "lenet_lab.regularizers.Dropout",
        "p": 0.5,
        "coef": 0.01,
    }


BAD_VALUES = [
    ("optimizer.lr=-1", "error: optimizer.lr must be > 0, got -1"),
    ("seed=abc", "error: seed must be an integer, got 'abc'"),  # each key's default's type
    ("data.batch_size=1.5", "error: data.batch_size must be an integer, got 1.5"),
    (
        "scheduler=cosine scheduler.T_max=abc",  # a null default: its constructor's int
        "error: scheduler.T_max must be an integer, got 'abc'",
    ),
    ("trainer.device=tpu", "error: trainer.device must be auto, cpu or cuda[:N], got 'tpu'"),
    (
        "+regularizer.coef=0.1",  # what Hydra suggests for regularizer.coef=0.1 alone
        "error: regularizer.coef is not used by regularizer=none: drop it or choose another option",
    ),
    (
        "regularizer=dropout +regularizer.coef=0.1",
        "error: regularizer.coef is not a parameter of regularizer=dropout "
        "(lenet_lab.regularizers.Dropout): drop it or choose another option",
    ),
    (
        "optimizer=adam optimizer.eps=-1",
        "error: optimizer.eps: Invalid epsilon value: -1 (optimizer=adam)",
    ),
]


@pytest.mark.parametrize(("override", "message"), BAD_VALUES)
def test_bad_values_are_one_line_before_any_data(monkeypatch, capsys, tmp_path, override, message):
    """train.py's task in this process (Hydra's config and choices, as on the command line):
    each bad value is one ``error:`` line and exit 2, before the data is read."""
    monkeypatch.setenv("FASHION_MNIST_ROOT", str(tmp_path / "nowhere"))
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        run_hydra_inprocess(*override.split(), run_dir=out).return_value  # noqa: B018
    assert e.value.code == 2
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert errors == [message]
    assert not (out / "metrics.csv").exists() and not (tmp_path / "nowhere").exists()


# Through the command line (a subprocess each: a value check and a group-option check); the
# in-process test above covers every message.
@pytest.mark.parametrize(("override", "message"), [BAD_VALUES[0], BAD_VALUES[6]])
def test_train_py_rejects_bad_values(run_train, tmp_path, override, message):
    # FASHION_MNIST_ROOT points nowhere: a data error would mean the data was read first
    proc = run_train(*override.split(), data_root=tmp_path / "nowhere")
    assert proc.returncode == 2, proc.stderr
    error_lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert error_lines == [message], proc.stderr
    assert (proc.stdout + proc.stderr).count(message.removeprefix("error: ")) == 1  # once
    assert message in (proc.out_dir / "train.log").read_text()  # and in the run's log
    assert "Traceback" not in proc.stderr
    assert not (proc.out_dir / "metrics.csv").exists()
    assert not Path(tmp_path / "nowhere").exists()


#: A value of the wrong type for keys of every group (found by setting each leaf key of every
#: option to a value of another type): each is one ConfigError naming the key, before any
#: data is read (``value_types.check_types``: the type of the key's default).
WRONG_TYPES = [
    ((), "seed=abc", "seed must be an integer, got 'abc'"),
    ((), "seed=1.5", "seed must be an integer, got 1.5"),
    ((), "trainer.epochs=abc", "trainer.epochs must be an integer, got 'abc'"),
    ((), "trainer.cuda_graph=3", "trainer.cuda_graph must be true or false, got 3"),
    ((), "data.batch_size=1.5", "data.batch_size must be an integer, got 1.5"),
    ((), "data.holdout_size=abc", "data.holdout_size must be an integer, got 'abc'"),
    ((), "data.mean=fast", "data.mean must be a number, got 'fast'"),
    ((), "data.std=fast", "data.std must be a number, got 'fast'"),
    ((), "data.train_size=abc", "data.train_size must be an integer, got 'abc'"),
    ((), "data.holdout_size=null", "data.holdout_size must be an integer, got None"),
    ((), "trainer.resume=null", "trainer.resume must be true or false, got None"),
    ((), "data.normalize=1", "data.normalize must be true or false, got 1"),
    ((), "seed='3'", "seed must be an integer, got '3'"),
    ((), "optimizer.lr=fast", "optimizer.lr must be a number, got 'fast'"),
    ((), "optimizer.momentum=[1,2]", "optimizer.momentum must be a number, got [1, 2]"),
    ((), "optimizer.nesterov=abc", "optimizer.nesterov must be true or false, got 'abc'"),
    ((), "model.padding=abc", "model.padding must be an integer, got 'abc'"),
    ((), "model.padding=-3", "model.padding must be an integer >= 0, got -3"),
    ((), "data.std=-1", "data.std must be > 0, got -1"),
    ((), "loss.label_smoothing=abc", "loss.label_smoothing must be a number, got 'abc'"),
    (
        ("early_stopping=val_loss",),
        "early_stopping.patience=x",
        "early_stopping.patience must be an integer, got 'x'",
    ),
    (
        ("early_stopping=val_loss",),
        "early_stopping.min_delta=x",
        "early_stopping.min_delta must be a number, got 'x'",
    ),
    (("scheduler=cosine",), "scheduler.T_max=abc", "scheduler.T_max must be an integer, got 'abc'"),
    (("scheduler=cosine",), "scheduler.T_max=1.5", "scheduler.T_max must be an integer, got 1.5"),
    (
        ("scheduler=cosine",),
        "scheduler.eta_min=fast",
        "scheduler.eta_min must be a number, got 'fast'",
    ),
    (("scheduler=cosine",), "scheduler.eta_min=-1", "scheduler.eta_min must be >= 0, got -1"),
    (
        ("scheduler=onecycle",),
        "scheduler.cycle_momentum=abc",
        "scheduler.cycle_momentum must be true or false, got 'abc'",
    ),
    (
        ("scheduler=onecycle",),
        "scheduler.div_factor=x",
        "scheduler.div_factor must be a number, got 'x'",
    ),
    (
        ("scheduler=plateau",),
        "scheduler.threshold=fast",
        "scheduler.threshold must be a number, got 'fast'",
    ),
    (("regularizer=l2",), "regularizer.coef=big", "regularizer.coef must be a number, got 'big'"),
    (
        ("augmentation=hflip_shift",),
        "augmentation.transforms=abc",
        "augmentation.transforms must be a list, got 'abc'",
    ),
]


@pytest.mark.parametrize(
    ("options", "override", "message"), WRONG_TYPES, ids=[c[1] for c in WRONG_TYPES]
)
def test_wrong_type_is_one_config_error(options, override, message):
    cfg = compose_config(*options, override)
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert str(err.value) == message
    assert err.value.key == override.split("=")[0]


@pytest.mark.parametrize(
    "override",
    [
        "task_name=123",
        "trainer.device=cpu",
        "optimizer.lr=1",
        "seed=0",
        "data.mean=0",
        "data.root=/x",
    ],
)
def test_right_types_pass(override):
    validate(compose_config(override))


@pytest.mark.parametrize("where", list(SCHEMAS))
def test_typed_keys_are_the_yaml_keys(where):
    """fixed_keys.py types exactly the keys the YAML files set and comment (a key added to one and
    not the other fails here)."""
    path = {"": "train.yaml", "trainer": "trainer/default.yaml", "data": "data/fashion_mnist.yaml"}
    written = OmegaConf.load(CONF_DIR / path[where])
    keys = {str(k) for k in written if k not in ("defaults", "hydra")}
    assert keys == {f.name for f in fields(SCHEMAS[where])}
