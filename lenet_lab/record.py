"""The run record: the statuses of a run, the fields of its ``summary.json`` and the
columns of its ``metrics.csv``.

The one place where these words are spelled. The trainer writes the record with
:func:`write_summary`; ``analysis/`` (and anything else) reads it with :func:`read_summary` and
compares statuses with :class:`Status` members, never with string literals.
"""

from __future__ import annotations

import json
import math
from enum import Enum
from pathlib import Path
from typing import Any

SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.csv"
CURVES_FILE = "curves.png"
CHECKPOINT_FILE = "best.pt"  # the best epoch's weights


class Status(str, Enum):
    """How a run ended (``summary.json``'s ``status``). A member equals its word: a ``str``."""

    RUNNING = "running"  # written while training; left behind by a killed process
    COMPLETED = "completed"  # trained every epoch of trainer.epochs
    EARLY_STOPPED = "early_stopped"  # early stopping ended it
    PRUNED = "pruned"  # the pruning reporter (a sweep's pruner) stopped it
    DIVERGED = "diverged"  # a non-finite loss: the objective is NaN (the sweeper's FAIL)
    FAILED = "failed"  # an exception other than the above
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM: its state is saved, it can continue

    __str__ = str.__str__  # "completed", not "Status.COMPLETED", in f-strings and logs
    __format__ = str.__format__


#: Runs that trained to their normal end: their best_val_acc ranks and compares.
FINISHED: frozenset[Status] = frozenset({Status.COMPLETED, Status.EARLY_STOPPED})
#: Runs that ended by themselves (not killed or crashed), their metrics are complete.
ENDED: frozenset[Status] = FINISHED | {Status.PRUNED, Status.DIVERGED}

# summary.json's fields, in the order they are written.
STATUS = "status"  # a Status word
REASON = "reason"  # why a run was stopped (diverged/pruned/failed/interrupted), else null
OBJECTIVE = "objective"  # the value returned to the sweeper (NaN → null for a diverged run)
OPTIMIZED_METRIC = "optimized_metric"  # which summary field the objective is
BEST_VAL_ACC = "best_val_acc"  # best validation accuracy over the epochs run
BEST_EPOCH = "best_epoch"  # the epoch of best_val_acc (null if none ran)
EPOCHS_RUN = "epochs_run"  # epochs trained
MAX_EPOCHS = "max_epochs"  # trainer.epochs
STOPPED_EARLY = "stopped_early"  # early stopping ended the run
STOP_EPOCH = "stop_epoch"  # the epoch early stopping ended it, else null
VAL_SPLIT = "val_split"  # where the validation images came from: "test" or "holdout"
N_PARAMS = "n_params"  # trainable parameters
DEVICE = "device"  # "cpu", "cuda", "cuda:1", ...
TRAINING_STEP = "training_step"  # the class that ran the training step
WALL_TIME_S = "wall_time_s"  # seconds from the start of train() to the summary
FINAL_TRAIN_ACC = "final_train_acc"  # last epoch's values
FINAL_VAL_ACC = "final_val_acc"
FINAL_TRAIN_LOSS = "final_train_loss"
FINAL_VAL_LOSS = "final_val_loss"
RESUMED_FROM = "resumed_from"  # the epochs after which the run was continued ([]: none)
CHOICES = "choices"  # the option of each config group: {"optimizer": "adamw", ...}
CONFIG = "config"  # the resolved config of the run

FIELDS: tuple[str, ...] = (
    STATUS,
    REASON,
    OBJECTIVE,
    OPTIMIZED_METRIC,
    BEST_VAL_ACC,
    BEST_EPOCH,
    EPOCHS_RUN,
    MAX_EPOCHS,
    STOPPED_EARLY,
    STOP_EPOCH,
    VAL_SPLIT,
    N_PARAMS,
    DEVICE,
    TRAINING_STEP,
    WALL_TIME_S,
    FINAL_TRAIN_ACC,
    FINAL_VAL_ACC,
    FINAL_TRAIN_LOSS,
    FINAL_VAL_LOSS,
    RESUMED_FROM,
    CHOICES,
    CONFIG,
)


# metrics.csv's columns (one row per epoch; the metrics a callback's on_epoch_end gets).
EPOCH = "epoch"  # 1, 2, ...
TRAIN_LOSS = "train_loss"  # mean criterion value over the epoch's batches (no loss terms)
TRAIN_ACC = "train_acc"
VAL_LOSS = "val_loss"  # mean cross-entropy on the validation split
VAL_ACC = "val_acc"
LR = "lr"  # the learning rate the epoch started with
SECONDS = "seconds"  # wall time of the epoch (train + validation)
#: The metrics early stopping or a scheduler may monitor.
MONITORABLE: tuple[str, ...] = (TRAIN_LOSS, TRAIN_ACC, VAL_LOSS, VAL_ACC)
#: The statistics of a tensor, and the tensors they are taken of (``{tensor}_{stat}``):
#: all parameters (exercise 5), the features entering and leaving the normalization point
#: (exercise 7.2).
STATS: tuple[str, ...] = ("min", "max", "mean", "std")
STAT_TENSORS: tuple[str, ...] = ("param", "feat_in", "feat_out")
METRIC_COLUMNS: list[str] = [
    EPOCH,
    TRAIN_LOSS,
    TRAIN_ACC,
    VAL_LOSS,
    VAL_ACC,
    LR,
    SECONDS,
    *(f"{tensor}_{stat}" for tensor in STAT_TENSORS for stat in STATS),
]
#: summary.json fields a sweep can maximize (``optimized_metric``).
OBJECTIVES: frozenset[str] = frozenset({BEST_VAL_ACC, FINAL_VAL_ACC, FINAL_TRAIN_ACC})


def _finite(value: Any) -> Any:
    """JSON has no NaN: write non-finite floats as null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """Write ``summary`` (FIELDS first, in order) atomically: readers never see half a file."""
    ordered = {k: summary[k] for k in FIELDS if k in summary}
    ordered.update((k, v) for k, v in summary.items() if k not in ordered)
    clean = {k: _finite(v) for k, v in ordered.items()}
    path = Path(path)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(clean, indent=2, default=str))
    tmp.replace(path)


def read_summary(path: Path) -> dict[str, Any] | None:
    """A run's summary (``path`` is the file or the run dir), its ``status`` a :class:`Status`.

    None when the file is missing or unreadable (a run killed before writing it); an unknown
    status word is kept as a plain string.
    """
    path = Path(path)
    if path.is_dir():
        path = path / SUMMARY_FILE
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict):
        return None
    try:
        summary[STATUS] = Status(summary.get(STATUS))
    except ValueError:
        pass
    return summary
