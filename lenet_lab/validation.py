"""Config checks that run before any data is read: one clear line per mistake."""

from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf

# summary.json keys a sweep can maximize (``optimized_metric``)
OBJECTIVES = {"best_val_acc", "final_val_acc", "final_train_acc"}


class ConfigError(ValueError):
    """A config value is out of range; the message names the key and the bad value."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key  # the offending config key, e.g. "optimizer.lr"


def _get(cfg: DictConfig, key: str):
    return OmegaConf.select(cfg, key, default=None)


_ABSENT = object()

# Switches: a typo such as `trainer.cuda_graph=flase` must not read as true.
BOOL_KEYS = (
    "trainer.cuda_graph", "trainer.explicit_backward", "trainer.progress_bar",
    "trainer.save_samples", "trainer.save_curves", "trainer.save_checkpoint",
    "data.normalize", "data.download",
)  # fmt: skip


def _check(cfg: DictConfig, key: str, ok, expect: str) -> None:
    value = _get(cfg, key)
    if value is None:
        return
    try:
        good = ok(value)
    except TypeError:
        good = False
    if not good:
        raise ConfigError(f"{key} must be {expect}, got {value!r}", key)


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda if available else cpu; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"trainer.device must be auto, cpu or cuda[:N], got {name!r}", "trainer.device"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"trainer.device={name!r} but no CUDA GPU is available", "trainer.device")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(
            f"trainer.device must be auto, cpu or cuda[:N], got {name!r}", "trainer.device"
        )
    return device


# The ``name`` of each technique group the code knows (a typo would silently mean "none").
CHOICES = {
    "optimizer.name": ("sgd", "adam", "adamw"),
    "regularizer.name": ("none", "l2", "l1", "dropout"),
    "normalization.name": ("none", "batchnorm"),
    "scheduler.name": ("none", "plateau"),
    "early_stopping.name": ("none", "val_loss"),
}


# The keys the code reads for each option. A key the chosen option does not read is ignored
# silently when it comes from a preset (`experiment=ex5_l2 regularizer=dropout` keeps the
# preset's `regularizer.coef`), but is an error when it was given on the command line: e.g.
# `+regularizer.coef=0.1` (what Hydra suggests for `regularizer.coef=0.1`) with
# regularizer=none would otherwise do nothing.
OPTION_KEYS = {
    "optimizer": {"sgd": ("lr", "momentum", "nesterov"), "adam": ("lr", "betas", "eps"),
                  "adamw": ("lr", "betas", "eps")},
    "regularizer": {"none": (), "l2": ("coef",), "l1": ("coef",), "dropout": ("p",)},
    "normalization": {"none": (), "batchnorm": ()},
    "scheduler": {"none": (), "plateau": ("factor", "patience", "threshold", "min_lr")},
    "early_stopping": {"none": (), "val_loss": ("patience", "min_delta")},
}  # fmt: skip


def _command_line_keys() -> set[str]:
    """Keys set by this run's overrides (empty outside a Hydra run, e.g. the compose API)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return set()
    return {o.split("=", 1)[0].lstrip("+~") for o in HydraConfig.get().overrides.task}


def _check_option_keys(cfg: DictConfig) -> None:
    given = _command_line_keys()
    for group, options in OPTION_KEYS.items():
        node = _get(cfg, group)
        if node is None or node.get("name") not in options:
            continue
        name = node.name
        for key in node:
            if key == "name" or key in options[name] or f"{group}.{key}" not in given:
                continue
            owners = [o for o, keys in options.items() if key in keys]
            fix = f"choose an option that uses it (e.g. {group}={owners[0]}) or drop it"
            raise ConfigError(
                f"{group}.{key} is not used by {group}={name}: {fix if owners else 'drop it'}",
                f"{group}.{key}",
            )


def validate(cfg: DictConfig) -> torch.device:
    """Raise ``ConfigError`` on the first bad value; return the resolved device."""
    check_values(cfg)
    return resolve_device(str(_get(cfg, "trainer.device") or "auto"))


def check_values(cfg: DictConfig) -> None:
    """``validate`` without the device: a sweep checks its config with this once, before any
    trial, on a host that may have no GPU (e.g. a SLURM login node)."""
    positive_int = lambda v: isinstance(v, int) and v >= 1  # noqa: E731
    non_negative = lambda v: v >= 0  # noqa: E731
    non_negative_int = lambda v: isinstance(v, int) and v >= 0  # noqa: E731
    for key, names in CHOICES.items():
        _check(cfg, key, lambda v, names=names: v in names, "one of " + ", ".join(names))
    _check_option_keys(cfg)
    _check(cfg, "optimized_metric", lambda v: v in OBJECTIVES, f"one of {sorted(OBJECTIVES)}")
    _check(cfg, "optimizer.lr", lambda v: v > 0, "> 0")
    _check(cfg, "optimizer.momentum", non_negative, ">= 0")
    _check(cfg, "trainer.epochs", non_negative_int, "an integer >= 0")
    _check(cfg, "data.batch_size", positive_int, "an integer >= 1")
    _check(cfg, "trainer.num_threads", positive_int, "an integer >= 1 (or null)")
    for flag in BOOL_KEYS:  # null is not a switch position either
        value = OmegaConf.select(cfg, flag, default=_ABSENT)
        if value is not _ABSENT and not isinstance(value, bool):
            raise ConfigError(f"{flag} must be true or false, got {value!r}", flag)
    _check(cfg, "data.val_batch_size", positive_int, "an integer >= 1")
    _check(cfg, "data.train_size", positive_int, "an integer >= 1 (or null for all)")
    _check(cfg, "data.val_size", positive_int, "an integer >= 1 (or null for all)")
    _check(cfg, "regularizer.coef", non_negative, ">= 0")
    _check(cfg, "regularizer.p", lambda v: 0 <= v < 1, "in [0, 1)")
    _check(cfg, "early_stopping.patience", non_negative_int, "an integer >= 0")
    _check(cfg, "early_stopping.min_delta", non_negative, ">= 0")
    _check(cfg, "scheduler.patience", non_negative_int, "an integer >= 0")
    _check(cfg, "scheduler.factor", lambda v: 0 < v < 1, "in (0, 1)")
    _check(cfg, "scheduler.min_lr", non_negative, ">= 0")
