"""Config checks that run before any data is read: one clear line per mistake.

``check_values(cfg)`` checks the plain values (ranges, switches) and then builds every
component once on the CPU (``components``): a constructor's own check, torch's included,
stops the run the same way, in one line naming the key. A sweep runs it once before its
first trial (``hydra.sweeper.check_config: lenet_lab.validation.check_values``).
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf

from .components import build, build_components, build_scheduler
from .errors import ConfigError
from .record import OBJECTIVES
from .value_types import check_types

VAL_SPLITS = ("test", "holdout")


def _get(cfg: DictConfig, key: str):
    return OmegaConf.select(cfg, key, default=None)


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


def validate(cfg: DictConfig) -> torch.device:
    """Raise ``ConfigError`` on the first bad value; return the resolved device."""
    check_values(cfg)
    return resolve_device(str(_get(cfg, "trainer.device") or "auto"))


def check_values(cfg: DictConfig) -> None:
    """``validate`` without the device: a sweep checks its config with this once, before any
    trial, on a host that may have no GPU (e.g. a SLURM login node)."""
    positive_int = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1  # noqa: E731
    non_negative = lambda v: v >= 0  # noqa: E731
    non_negative_int = lambda v: isinstance(v, int) and v >= 0  # noqa: E731
    check_types(cfg)  # every key of its type first (switches included): then the ranges
    _check(cfg, "optimized_metric", lambda v: v in OBJECTIVES, f"one of {sorted(OBJECTIVES)}")
    _check(cfg, "optimizer.lr", lambda v: v > 0, "> 0")
    _check(cfg, "optimizer.momentum", non_negative, ">= 0")
    _check(cfg, "optimizer.weight_decay", non_negative, ">= 0")
    _check(cfg, "trainer.epochs", non_negative_int, "an integer >= 0")
    _check(cfg, "data.batch_size", positive_int, "an integer >= 1")
    _check(cfg, "trainer.num_threads", positive_int, "an integer >= 1 (or null)")
    _check(cfg, "data.val_batch_size", positive_int, "an integer >= 1")
    _check(cfg, "data.train_size", positive_int, "an integer >= 1 (or null for all)")
    _check(cfg, "data.val_size", positive_int, "an integer >= 1 (or null for all)")
    _check(cfg, "data.val_split", lambda v: v in VAL_SPLITS, "test or holdout")
    _check(cfg, "data.holdout_size", positive_int, "an integer >= 1")
    _check(cfg, "scheduler.patience", non_negative_int, "an integer >= 0")
    _check(cfg, "scheduler.factor", lambda v: 0 < v < 1, "in (0, 1)")
    _check(cfg, "scheduler.min_lr", non_negative, ">= 0")
    _check(cfg, "loss.label_smoothing", lambda v: 0 <= v <= 1, "in [0, 1]")
    _check(cfg, "model.padding", non_negative_int, "an integer >= 0")
    _check(cfg, "data.std", lambda v: v > 0, "> 0")
    _check(cfg, "scheduler.eta_min", non_negative, ">= 0")
    _check_components(cfg)


def _check_components(cfg: DictConfig) -> None:
    """Build every component once on the CPU (no data): constructors check the rest."""
    build(cfg, "logger", out_dir=".")  # constructors only check: files come at train start
    parts = build_components(cfg, torch.device("cpu"))
    epochs = max(1, int(_get(cfg, "trainer.epochs") or 1))
    build_scheduler(cfg, parts.optimizer, epochs, steps_per_epoch=1)
