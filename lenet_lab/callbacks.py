"""Per-epoch behaviours of the training loop, as callback objects.

The loop in ``run.train`` calls, on every callback, ``on_train_start(run)`` once,
``on_batch_end(run)`` after every optimizer step (only callbacks with ``per_batch`` set),
``on_epoch_end(run, epoch, metrics)`` after every epoch, in list order, and
``on_train_end(run)`` once, whatever happened. A callback ends the run by raising
``StopTraining(status, reason)``: early stopping, the divergence check and a sweep's pruning
reporter do so. A callback with state of its own (counters, a scheduler, averaged weights)
returns it from ``state_dict()``: it is saved after every epoch (``resume.py``) and handed back
to ``load_state_dict(run, state)`` after ``on_train_start`` when the run continues.
Also here: the lab's per-epoch statistics (exercises 5 and 7).
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from . import record as rec
from .errors import StopTraining
from .record import Status

if TYPE_CHECKING:
    from .run_state import Run

log = logging.getLogger(__name__)

Metrics = dict[str, float]


class Callback:
    """Does nothing; subclasses override what they need (and set ``per_batch`` to have
    ``on_batch_end`` called: the loop skips the call for the others)."""

    per_batch: bool = False

    def on_train_start(self, run: Run) -> None:
        pass

    def on_batch_end(self, run: Run) -> None:
        pass

    def on_epoch_end(self, run: Run, epoch: int, metrics: Metrics) -> None:
        pass

    def on_train_end(self, run: Run) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        """What a continued run needs of this callback ({}: nothing)."""
        return {}

    def load_state_dict(self, run: Run, state: dict[str, Any]) -> None:
        """Take back ``state_dict()``'s values (called after ``on_train_start``)."""


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by at least ``min_delta`` for ``patience`` epochs.

    ``mode`` min: lower is better (val_loss). ``step`` returns True when training should stop:
    after ``patience`` consecutive epochs without improvement (``patience=0``: at the first).
    """

    def __init__(
        self,
        patience: int = 5,
        min_delta: float = 0.005,
        monitor: str = rec.VAL_LOSS,
        mode: str = "min",
    ):
        if not isinstance(patience, int) or isinstance(patience, bool) or patience < 0:
            raise ValueError(f"patience must be an integer >= 0, got {patience!r}")
        if not isinstance(min_delta, (int, float)) or min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be min or max, got {mode!r}")
        self.patience, self.min_delta, self.monitor, self.mode = patience, min_delta, monitor, mode
        self.best = math.inf
        self.bad_epochs = 0

    def step(self, value: float) -> bool:
        value = value if self.mode == "min" else -value
        if value < self.best - self.min_delta:
            self.best, self.bad_epochs = value, 0
            return False  # an improvement never stops training (even with patience 0)
        self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, run: Run, state: dict[str, Any]) -> None:
        self.best, self.bad_epochs = float(state["best"]), int(state["bad_epochs"])

    def on_epoch_end(self, run: Run, epoch: int, metrics: Metrics) -> None:
        if self.step(metrics[self.monitor]):
            raise StopTraining(
                Status.EARLY_STOPPED,
                f"early stopping at epoch {epoch}: {self.monitor} has not improved by "
                f"{self.min_delta:g} for {self.bad_epochs} epoch(s) (patience {self.patience})",
            )


class LRScheduler(Callback):
    """Steps a torch LR scheduler after every epoch or batch (``interval``), passing the
    ``monitor`` metric (e.g. val_loss for ReduceLROnPlateau) when one is set."""

    def __init__(self, scheduler: Any, interval: str = "epoch", monitor: str | None = None):
        self.scheduler, self.interval, self.monitor = scheduler, interval, monitor
        self.per_batch = interval == "batch"

    def on_batch_end(self, run: Run) -> None:
        self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, run: Run, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state["scheduler"])

    def on_epoch_end(self, run: Run, epoch: int, metrics: Metrics) -> None:
        if self.per_batch:
            return
        if self.monitor:
            self.scheduler.step(metrics[self.monitor])
        else:
            self.scheduler.step()


class WeightAveraging(Callback):
    """Evaluate (and checkpoint) an average of the weights, not the last ones.

    ``decay`` set: an exponential moving average updated after every step (EMA,
    ``w_avg = d * w_avg + (1 - d) * w`` with ``d = min(decay, (1 + n) / (10 + n))`` after n
    updates, so the first epochs are not held back by the initial weights); ``decay`` null:
    the plain mean of the weights after every step (SWA). Averaging starts after ``start``
    (a fraction of the run's steps; until then the run's own weights are evaluated).
    BatchNorm's running statistics are averaged with the weights (``use_buffers``). torch's
    ``AveragedModel`` does the work.
    """

    per_batch = True

    def __init__(self, decay: float | None = 0.999, start: float = 0.0):
        if decay is not None and (not isinstance(decay, (int, float)) or not 0 < decay < 1):
            raise ValueError(f"decay must be in (0, 1) or null (a plain mean), got {decay!r}")
        if not isinstance(start, (int, float)) or not 0 <= start < 1:
            raise ValueError(f"start must be in [0, 1), got {start!r}")
        self.decay, self.start = decay, float(start)
        self.averaged: AveragedModel | None = None

    def on_train_start(self, run: Run) -> None:
        fn = _ema(self.decay) if self.decay is not None else None
        self.averaged = AveragedModel(run.model, avg_fn=fn, use_buffers=True)
        self.first_step = int(self.start * run.epochs * run.steps_per_epoch)
        self.steps = 0

    def on_batch_end(self, run: Run) -> None:
        self.steps += 1
        if self.steps > self.first_step:
            self.averaged.update_parameters(run.model)
            run.eval_model = self.averaged.module

    def state_dict(self) -> dict[str, Any]:
        return {"averaged": self.averaged.state_dict(), "steps": self.steps}

    def load_state_dict(self, run: Run, state: dict[str, Any]) -> None:
        self.averaged.load_state_dict(state["averaged"])
        self.steps = int(state["steps"])
        if self.steps > self.first_step:
            run.eval_model = self.averaged.module


def _ema(decay: float) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """``AveragedModel``'s ``avg_fn`` for an EMA whose decay warms up to ``decay``."""

    def average(averaged: torch.Tensor, current: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        d = torch.clamp((1 + n) / (10 + n), max=decay)
        return averaged + (current - averaged) * (1 - d)

    return average


class DivergenceCheck(Callback):
    """A non-finite validation loss ends the run as diverged (the training loss is checked
    inside the epoch, see ``engine.train_epoch``)."""

    def on_epoch_end(self, run: Run, epoch: int, metrics: Metrics) -> None:
        if not math.isfinite(metrics[rec.VAL_LOSS]):
            raise StopTraining(Status.DIVERGED, f"non-finite validation loss at epoch {epoch}")


class Checkpoint(Callback):
    """Writes the evaluated model's state_dict (the averaged weights with ``averaging``) to
    ``best.pt`` whenever val_acc reaches a new best."""

    def __init__(self, filename: str = rec.CHECKPOINT_FILE):
        self.filename = filename
        self.best: dict[str, torch.Tensor] | None = None  # kept for a continued run

    def on_epoch_end(self, run: Run, epoch: int, metrics: Metrics) -> None:
        if run.summary[rec.BEST_EPOCH] == epoch:
            self.best = {k: v.detach().clone() for k, v in run.evaluated.state_dict().items()}
            torch.save(self.best, run.out_dir / self.filename)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best} if self.best is not None else {}

    def load_state_dict(self, run: Run, state: dict[str, Any]) -> None:
        self.best = state["best"]  # a continuation in another folder gets best.pt there too
        if not (run.out_dir / self.filename).exists():
            torch.save(self.best, run.out_dir / self.filename)


class ProgressBar(Callback):
    """A tqdm bar over the run's batches, on a terminal only (``make train > log`` gets no
    carriage-return frames); log lines print above it, not into it."""

    per_batch = True

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self.bar = None

    def on_train_start(self, run: Run) -> None:
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        total = run.epochs * run.steps_per_epoch
        done = run.summary[rec.EPOCHS_RUN] * run.steps_per_epoch  # a continued run's epochs
        if total and sys.stderr.isatty():
            self.bar = self._stack.enter_context(
                tqdm(total=total, initial=done, unit="batch", leave=False, dynamic_ncols=True)
            )
            self._stack.enter_context(logging_redirect_tqdm())

    def on_batch_end(self, run: Run) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def on_train_end(self, run: Run) -> None:
        self._stack.close()


class EpochLog(Callback):
    """One console line per epoch."""

    def on_epoch_end(self, run: Run, epoch: int, metrics: Metrics) -> None:
        m = metrics
        log.info(
            "epoch %3d/%d  loss %.4f acc %.4f | val_loss %.4f val_acc %.4f | lr %.3g | %.1fs",
            epoch,
            run.epochs,
            m[rec.TRAIN_LOSS],
            m[rec.TRAIN_ACC],
            m[rec.VAL_LOSS],
            m[rec.VAL_ACC],
            m[rec.LR],
            m[rec.SECONDS],
        )


class MetricsWriter(Callback):
    """Appends one row per epoch to ``metrics.csv`` and flushes it (a killed run keeps them);
    a continued run's file starts with the rows of the epochs it had finished."""

    def __init__(self, path: Path, columns: list[str]):
        self.path, self.columns = Path(path), columns
        self._file = None

    def on_train_start(self, run: Run) -> None:
        import csv

        self._file = self.path.open("w", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=self.columns, extrasaction="ignore")
        self._writer.writeheader()
        self._writer.writerows(run.rows)
        self._file.flush()

    def on_epoch_end(self, run: Run, epoch: int, metrics: Metrics) -> None:
        self._writer.writerow(metrics)
        self._file.flush()

    def on_train_end(self, run: Run) -> None:
        if self._file is not None:
            self._file.close()


def batch_callbacks(callbacks: list[Callback]) -> list[Callback]:
    """The callbacks whose ``on_batch_end`` runs after every batch."""
    return [c for c in callbacks if c.per_batch]


# --------------------------------------------------------------------------- lab statistics


def tensor_stats(t: torch.Tensor, prefix: str) -> dict[str, float]:
    """min/max/mean/std of a tensor as ``{prefix}_min`` … floats."""
    t = t.detach().float().flatten()
    s = torch.stack([t.min(), t.max(), t.mean(), t.std()]).tolist()  # in rec.STATS' order
    return dict(zip((f"{prefix}_{k}" for k in rec.STATS), s, strict=True))


def parameter_stats(model: nn.Module) -> dict[str, float]:
    """Statistics of all parameters concatenated (exercise 5)."""
    params = torch.cat([p.detach().flatten() for p in model.parameters()])
    return tensor_stats(params, rec.STAT_TENSORS[0])


@torch.no_grad()
def feature_stats(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Stats of features entering (``feat_in``) and leaving (``feat_out``) the normalization
    point on a fixed batch, in eval mode (exercise 7.2; identical when normalization=none)."""
    was_training = model.training
    model.eval()
    before, after = model.stem(x)
    model.train(was_training)
    feat_in, feat_out = rec.STAT_TENSORS[1:]
    return {**tensor_stats(before, feat_in), **tensor_stats(after, feat_out)}
