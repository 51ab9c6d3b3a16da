"""The run's components, built from their config groups with ``hydra.utils.instantiate``.

Every option YAML of the technique groups (``groups.GROUPS``: model, optimizer, ...) names
its class in
``_target_`` (``_partial_: true`` when the trainer supplies the rest: the parameters, the
optimizer, the run's length); ``_target_: null`` (the ``none`` options) switches a group off.
A torch class needs no Python: ``scheduler/step.yaml`` with
``_target_: torch.optim.lr_scheduler.StepLR`` works from a user's own config folder.

A scheduler config has two trainer keys besides the constructor's: ``interval`` (``epoch`` or
``batch``: when ``step()`` runs) and ``monitor`` (a metric passed to ``step``, e.g.
``val_loss``; null for none). A scheduler argument named in ``RUN_LENGTH_ARGS`` (OneCycleLR's
``total_steps``, CosineAnnealingLR's ``T_max``) left null gets the run's length in steps.

Errors become one ``ConfigError`` line naming the key: the constructors' own checks (torch's
included) count, and ``build`` runs before any data is read (``validation.check_values``).
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn

from .callbacks import Callback, EarlyStopping, LRScheduler, WeightAveraging
from .errors import ConfigError
from .groups import command_line_keys, group_choice
from .record import MONITORABLE
from .regularizers import LossTerm, Regularizer

log = logging.getLogger(__name__)

#: Keys of a scheduler config the trainer reads (not passed to the constructor).
SCHEDULER_KEYS = ("interval", "monitor")
#: Scheduler arguments that, left null, get the run's length in scheduler steps.
RUN_LENGTH_ARGS = ("total_steps", "T_max")


def enabled(node: Any) -> bool:
    """A group's node is switched on when it names a ``_target_``."""
    return isinstance(node, DictConfig) and node.get("_target_") is not None


def _signature(target: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(target)
    except (TypeError, ValueError):
        return None


def target_of(cfg: DictConfig, group: str) -> Any:
    """The class (or function) ``cfg[group]._target_`` names; a ConfigError if it is none."""
    path = cfg[group]._target_
    quiet = logging.getLogger("hydra.utils")  # it logs the error we are about to report
    level, quiet.level = quiet.level, logging.CRITICAL
    try:
        return get_object(path)
    except Exception as e:  # noqa: BLE001 - Hydra raises several types for a bad path
        raise ConfigError(
            f"{group}._target_ cannot be imported: {path!r} ({type(e).__name__})",
            f"{group}._target_",
        ) from None
    finally:
        quiet.level = level


def _kwargs(cfg: DictConfig, group: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The node's constructor keys; keys the target does not take are dropped when a preset
    left them (``experiment=ex5_l2 regularizer=dropout``), an error when typed on the command
    line (``+regularizer.coef=0.1`` with ``regularizer=none``)."""
    node = cfg[group]
    params = {k: v for k, v in node.items() if k not in skip}
    sig = _signature(target_of(cfg, group))
    if sig is not None and not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        given = command_line_keys()
        for key in [k for k in params if not k.startswith("_") and k not in sig.parameters]:
            if f"{group}.{key}" in given:
                raise ConfigError(
                    f"{group}.{key} is not a parameter of {group}={group_choice(cfg, group)} "
                    f"({node._target_}): drop it or choose another option",
                    f"{group}.{key}",
                )
            log.debug("%s.%s (left by a preset) is not used by %s", group, key, node._target_)
            del params[key]
    return params


def _check_unused(cfg: DictConfig, group: str) -> None:
    """A key typed on the command line for a switched-off group is an error."""
    node = cfg.get(group)
    given = command_line_keys() if isinstance(node, DictConfig) else set()
    for key in node if given else ():
        if not str(key).startswith("_") and f"{group}.{key}" in given:
            raise ConfigError(
                f"{group}.{key} is not used by {group}={group_choice(cfg, group)}: "
                "drop it or choose another option",
                f"{group}.{key}",
            )


def _error(cfg: DictConfig, group: str, exc: Exception) -> ConfigError:
    """One line naming the key a constructor rejected (the key its message mentions)."""
    exc = exc.__cause__ if exc.__cause__ is not None and "Error in call" in str(exc) else exc
    message = " ".join(str(exc).split())
    node = cfg[group]
    keys = [str(k) for k in node if not str(k).startswith("_")]
    words = set(re.findall(r"[A-Za-z_]\w*", message.lower()))
    key = next((k for k in keys if k.lower() in words or k.lower().rstrip("s") in words), None)
    if key is None:  # "Invalid epsilon value: -1": the key whose value the message shows
        shown = set(re.findall(r"-?[\w.]+", message.rsplit(": ", 1)[-1]))
        values = {k: node[k] if isinstance(node[k], ListConfig) else [node[k]] for k in keys}
        key = next((k for k in keys if {str(v) for v in values[k]} & shown), None)
    full = f"{group}.{key}" if key else group
    if key and message.startswith(f"{key} "):
        return ConfigError(f"{group}.{message}", full)
    return ConfigError(f"{full}: {message} ({group}={group_choice(cfg, group)})", full)


def build(cfg: DictConfig, group: str, *args: Any, skip: tuple[str, ...] = (), **kwargs: Any):
    """``instantiate(cfg[group])``, called with ``args``/``kwargs`` when ``_partial_``; None
    when the group is off. Any error is a ``ConfigError`` naming the key."""
    if not enabled(cfg.get(group)):
        _check_unused(cfg, group)
        return None
    params = _kwargs(cfg, group, skip)
    if (args or kwargs) and not params.get("_partial_"):
        given = ", ".join([_describe(a) for a in args] + list(kwargs))
        raise ConfigError(
            f"{group}._partial_ must be true: the trainer adds {given}", f"{group}._partial_"
        )
    try:
        obj = instantiate(params, _convert_="all")
        if isinstance(obj, functools.partial) and (args or kwargs):
            obj = obj(*args, **kwargs)
        return obj
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - constructors raise what they like
        raise _error(cfg, group, e) from None


def _describe(arg: Any) -> str:
    if isinstance(arg, torch.optim.Optimizer):
        return "the optimizer"
    return "the model's parameters" if inspect.isgenerator(arg) else type(arg).__name__


@dataclass
class Components:
    """Everything a run trains with, built before any data is read."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    criterion: nn.Module
    regularizer: Regularizer
    loss_terms: list[LossTerm] = field(default_factory=list)
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None
    early_stopping: EarlyStopping | None = None
    averaging: WeightAveraging | None = None


def build_optimizer(
    cfg: DictConfig, model: nn.Module, regularizer: Regularizer, graphable: bool = False
) -> torch.optim.Optimizer:
    """The ``optimizer`` group's class over ``model``'s parameters.

    The regularizer's ``optimizer_kwargs`` (L2: ``weight_decay``) win over the optimizer's
    own. ``graphable`` (CUDA graphs): the learning rate is a device tensor the captured step
    reads, so a scheduler's change reaches the graph. Optimizers with a ``fused`` option use
    it on the CPU and for graphs (one kernel for all parameters: less per-step overhead).
    """
    device = next(model.parameters()).device
    kwargs = dict(regularizer.optimizer_kwargs())
    node = cfg.optimizer
    if "weight_decay" in kwargs and node.get("weight_decay"):
        log.warning(
            "regularizer sets weight_decay=%g: optimizer.weight_decay=%g is not used",
            kwargs["weight_decay"],
            node.weight_decay,
        )
    sig = _signature(target_of(cfg, "optimizer")) if enabled(node) else None
    if sig is not None and "fused" in sig.parameters and (graphable or device.type == "cpu"):
        kwargs["fused"] = True
    if graphable and node.get("lr") is not None:
        kwargs["lr"] = torch.tensor(float(node.lr), device=device)
    if not enabled(node):
        raise ConfigError("optimizer: an optimizer needs a _target_", "optimizer._target_")
    return build(cfg, "optimizer", model.parameters(), **kwargs)


def build_components(cfg: DictConfig, device: torch.device, graphable: bool = False) -> Components:
    """Model, optimizer, loss, regularizer, augmentation, early stopping and weight averaging
    from ``cfg``."""
    regularizer = build(cfg, "regularizer") or Regularizer()
    norm = build(cfg, "normalization")
    model = build(cfg, "model", norm=norm, **regularizer.model_kwargs())
    if model is None:
        raise ConfigError("model: a model needs a _target_", "model._target_")
    model = model.to(device)
    optimizer = build_optimizer(cfg, model, regularizer, graphable)
    criterion = build(cfg, "loss") or nn.CrossEntropyLoss()
    if isinstance(criterion, nn.Module):
        criterion = criterion.to(device)  # its buffers too (class weights)
    stopper = build(cfg, "early_stopping")
    if stopper is not None and stopper.monitor not in MONITORABLE:
        raise ConfigError(
            f"early_stopping.monitor must be one of {', '.join(MONITORABLE)}, "
            f"got {stopper.monitor!r}",
            "early_stopping.monitor",
        )
    return Components(
        model=model,
        optimizer=optimizer,
        criterion=criterion,
        regularizer=regularizer,
        loss_terms=regularizer.loss_terms(model),
        transform=build(cfg, "augmentation"),
        early_stopping=stopper,
        averaging=build(cfg, "averaging"),
    )


def build_scheduler(
    cfg: DictConfig, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int
) -> LRScheduler | None:
    """The ``scheduler`` group's class over ``optimizer``, wrapped in its stepping callback."""
    node = cfg.get("scheduler")
    if not enabled(node):
        return None
    interval, monitor = node.get("interval", "epoch"), node.get("monitor")
    if interval not in ("epoch", "batch"):
        raise ConfigError(
            f"scheduler.interval must be epoch or batch, got {interval!r}", "scheduler.interval"
        )
    if monitor is not None and (interval == "batch" or monitor not in MONITORABLE):
        expect = (
            "null with interval=batch"
            if interval == "batch"
            else ("null or one of " + ", ".join(MONITORABLE))
        )
        raise ConfigError(
            f"scheduler.monitor must be {expect}, got {monitor!r}", "scheduler.monitor"
        )
    length = max(1, epochs * (steps_per_epoch if interval == "batch" else 1))
    fill = {k: length for k in RUN_LENGTH_ARGS if k in node and node[k] is None}
    params = {k: v for k, v in node.items() if k not in fill}
    sub = OmegaConf.create({"scheduler": params})
    scheduler = build(sub, "scheduler", optimizer, skip=SCHEDULER_KEYS, **fill)
    return LRScheduler(scheduler, interval, monitor)


def loggers(cfg: DictConfig, out_dir) -> list[Callback]:
    """The ``logger`` group: none, or a callback writing the run's metrics and config."""
    logger = build(cfg, "logger", out_dir=out_dir)
    return [logger] if logger is not None else []


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return math.ceil(n_train / batch_size)
