"""A whole training run from a composed config: read it top to bottom.

``train(cfg, out_dir, callbacks)`` checks the config and builds every component (before any
data is read), loads the data (once per process), trains epoch by epoch, and writes the run
record (``record.py``). After every epoch it saves the whole training state (``resume.py``);
a run whose state folder holds one continues after its last finished epoch.
Per-epoch behaviours are callbacks (``callbacks.py``); the caller adds
its own, e.g. ``train.py``'s pruning reporter. It returns the summary; ``summary["objective"]``
is the value ``train.py`` hands to the sweeper.
"""

from __future__ import annotations

import logging
import math
import random
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from . import artifacts, data, engine, resume
from . import record as rec
from .callbacks import (
    Callback,
    Checkpoint,
    DivergenceCheck,
    EpochLog,
    MetricsWriter,
    ProgressBar,
    batch_callbacks,
    feature_stats,
    parameter_stats,
)
from .components import Components, build_components, build_scheduler, loggers, steps_per_epoch
from .errors import StopTraining
from .groups import GROUPS, group_choice
from .model import LeNet5, count_parameters
from .record import Status
from .run_state import Run
from .validation import validate

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)  # drives the batch order only


def load_data(cfg: DictConfig, device: torch.device) -> tuple[data.Split, data.Split]:
    """The training and validation splits (``data.val_split``: the test split, or a hold-out
    taken from the training split, stratified, the same for every seed)."""
    source = data.resolve_source(cfg.data.root, bool(cfg.data.download))
    kw = dict(
        normalize=bool(cfg.data.normalize),
        mean=float(cfg.data.mean),
        std=float(cfg.data.std),
        device=device,
    )
    if cfg.data.get("val_split", "test") == "holdout":
        return data.load_holdout(
            source, int(cfg.data.holdout_size), cfg.data.train_size, cfg.data.val_size, **kw
        )
    train = data.load_split(source, True, cfg.data.train_size, **kw)
    val = data.load_split(source, False, cfg.data.val_size, **kw)
    return train, val


def make_step(
    parts: Components,
    train_set: data.Split,
    batch_size: int,
    *,
    graphable: bool,
    scheduler: Any = None,
) -> engine.TrainStep:
    """The CUDA-graph step, or the eager autograd step; what the graph cannot hold falls back
    to the eager step with one log line saying why."""
    args = (parts.model, parts.optimizer, parts.criterion, parts.loss_terms, parts.transform)
    if graphable and getattr(getattr(scheduler, "scheduler", None), "cycle_momentum", False):
        # the lr lives in a tensor the graph reads; momentum/betas are baked into the capture
        log.info(
            "CUDA graph unavailable (the scheduler cycles momentum, which a captured step "
            "cannot see: set scheduler.cycle_momentum=false to keep the graph); eager"
        )
        graphable = False
    if graphable and len(train_set) >= batch_size:
        saved = {k: v.clone() for k, v in parts.model.state_dict().items()}
        try:
            return engine.GraphedTrainStep(*args[:2], train_set, batch_size, *args[2:])
        except Exception as e:  # anything the graph cannot hold: fall back to eager
            warnings.warn(f"CUDA graph capture failed ({e}); training eagerly", stacklevel=2)
            parts.model.load_state_dict(saved)
            parts.optimizer.state.clear()
    return engine.TrainStep(*args)


def _warn_patience_conflict(cfg: DictConfig) -> None:
    sched, stop = cfg.get("scheduler"), cfg.get("early_stopping")
    if not (
        sched
        and stop
        and sched.get("_target_")
        and stop.get("_target_")
        and sched.get("monitor")
        and "patience" in sched
        and "patience" in stop
    ):
        return
    # ReduceLROnPlateau lowers the lr on the (patience + 1)-th epoch without improvement,
    # early stopping ends the run on its patience-th: the lowered lr must get an epoch.
    if sched.patience + 1 >= stop.patience:
        log.warning(
            "scheduler.patience=%d >= early_stopping.patience-1=%d: early stopping will end "
            "the run before training with a learning rate ReduceLROnPlateau lowered",
            sched.patience,
            stop.patience - 1,
        )


def train(
    cfg: DictConfig,
    out_dir: Path,
    callbacks: Sequence[Callback] = (),
    state_dir: Path | None = None,
) -> dict[str, Any]:
    """Train one model; write artifacts into ``out_dir``; return the summary dict.

    ``callbacks`` run after the built-in ones each epoch (before early stopping); one may end
    the run with ``StopTraining`` (the pruning reporter: status pruned). Other exceptions are
    recorded in summary.json (failed, interrupted), then re-raised. The training state is
    saved into ``state_dir`` (default ``out_dir``) after every epoch; when it holds one of
    this config, the run continues from it (an ended run is only recorded again).
    """
    device = validate(cfg)  # every component built once on the CPU: before any data is read
    started = time.perf_counter()
    state_dir = Path(state_dir or out_dir) if cfg.trainer.get("resume", True) else None
    saved = resume.load(state_dir, cfg, device) if state_dir else None  # a bad state: 1 line
    run, loop = _prepare(cfg, out_dir, device, callbacks)
    loop.state_dir = state_dir
    if saved is not None:
        resume.restore(saved, run)
        loop.saved = saved
        if not resume.ended(saved):
            run.summary[rec.RESUMED_FROM] = [*run.summary.get(rec.RESUMED_FROM, []), saved["epoch"]]
        log.info(
            "continuing the run saved in %s after epoch %d of %d",
            state_dir,
            saved["epoch"],
            run.epochs,
        )
    summary = run.summary
    try:
        loop.fit(run)
        summary[rec.STATUS] = Status.COMPLETED
    except StopTraining as stop:
        summary.update({rec.STATUS: stop.status, rec.REASON: stop.reason})
        log.log(
            logging.ERROR if stop.status is Status.DIVERGED else logging.INFO,
            "%s: %s",
            stop.status,
            stop.reason,
        )
    except KeyboardInterrupt:
        summary.update(
            {rec.STATUS: Status.INTERRUPTED, rec.REASON: "interrupted (Ctrl-C or SIGTERM)"}
        )
        raise
    except Exception as e:
        summary.update({rec.STATUS: Status.FAILED, rec.REASON: f"{type(e).__name__}: {e}"})
        raise
    finally:
        for callback in loop.callbacks:
            callback.on_train_end(run)
        _finish(run, started)
    loop.save(run)  # the ended run: continuing it only records it again
    _report_end(run)
    return summary


@dataclass
class Loop:
    """The epoch loop: train an epoch, evaluate, hand the metrics to every callback."""

    step: engine.TrainStep
    train_set: data.Split
    val_set: data.Split
    callbacks: list[Callback]
    generator: torch.Generator
    check_every: int  # finiteness check of the training loss every N batches
    state_dir: Path | None = None  # where the state is saved after every epoch
    saved: dict[str, Any] | None = None  # the state this run continues from

    def fit(self, run: Run) -> None:
        cfg, summary = run.cfg, run.summary
        batch_size, val_batch = int(cfg.data.batch_size), int(cfg.data.val_batch_size)
        on_batch = [lambda c=c: c.on_batch_end(run) for c in batch_callbacks(self.callbacks)]
        probe = self.val_set.x[: min(256, len(self.val_set))]  # for the feature statistics
        for callback in self.callbacks:
            callback.on_train_start(run)
        if self.saved is not None:
            resume.restore_loop(self.saved, run, self.callbacks, self.generator)
            if resume.ended(self.saved):  # it had ended: end it the same way again
                if summary[rec.STATUS] != Status.COMPLETED:
                    raise StopTraining(summary[rec.STATUS], summary[rec.REASON])
                return
        if run.epochs == 0:  # inspect-only: score the untrained model
            summary[rec.BEST_VAL_ACC] = engine.evaluate(run.model, self.val_set, val_batch).acc
            summary[rec.BEST_EPOCH] = 0  # epoch 0: the untrained model
        for epoch in range(summary[rec.EPOCHS_RUN] + 1, run.epochs + 1):
            t0, lr = time.perf_counter(), float(run.optimizer.param_groups[0]["lr"])
            tr = engine.train_epoch(
                self.step, self.train_set, batch_size, self.generator, self.check_every, on_batch
            )
            va = engine.evaluate(run.evaluated, self.val_set, val_batch)
            metrics = {
                rec.EPOCH: epoch,
                rec.TRAIN_LOSS: tr.loss,
                rec.TRAIN_ACC: tr.acc,
                rec.VAL_LOSS: va.loss,
                rec.VAL_ACC: va.acc,
                rec.LR: lr,
                rec.SECONDS: time.perf_counter() - t0,
                **_statistics(run.model, probe),
            }
            run.rows.append(metrics)
            summary[rec.EPOCHS_RUN] = epoch
            if va.acc > summary[rec.BEST_VAL_ACC]:
                summary.update({rec.BEST_VAL_ACC: va.acc, rec.BEST_EPOCH: epoch})
            for callback in self.callbacks:
                callback.on_epoch_end(run, epoch, metrics)
            self.save(run)  # a run killed from now on loses no more than its next epoch

    def save(self, run: Run) -> None:
        if self.state_dir is not None:
            resume.save(self.state_dir, run, self.callbacks, self.generator)


def _prepare(
    cfg: DictConfig, out_dir: Path, device: torch.device, callbacks: Sequence[Callback]
) -> tuple[Run, Loop]:
    """Seed, build the components, then read the data, then the scheduler (which needs the
    number of batches) and the training step; log what the run is."""
    if cfg.trainer.get("num_threads"):
        torch.set_num_threads(int(cfg.trainer.num_threads))
    generator = seed_everything(int(cfg.seed))
    graphable = device.type == "cuda" and bool(cfg.trainer.cuda_graph)
    parts = build_components(cfg, device, graphable)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_set, val_set = load_data(cfg, device)
    for line in data.describe(train_set):
        log.info(line)
    val_split = cfg.data.get("val_split", "test")
    log.info(
        "train %d images, validation %d images (%s split), device %s",
        len(train_set),
        len(val_set),
        val_split,
        device,
    )
    if cfg.trainer.save_samples:
        data.save_samples(train_set, out_dir / "samples.png")
    n_params = count_parameters(parts.model)
    log.info(
        "model: %s (%s), %s trainable parameters, output = logits (no softmax)",
        _model_name(parts.model),
        _techniques(cfg),
        f"{n_params:,}",
    )
    epochs, batch_size = int(cfg.trainer.epochs), int(cfg.data.batch_size)
    steps = steps_per_epoch(len(train_set), batch_size)
    scheduler = build_scheduler(cfg, parts.optimizer, epochs, steps)
    _warn_patience_conflict(cfg)
    step = make_step(parts, train_set, batch_size, graphable=graphable, scheduler=scheduler)
    log.info("training step: %s", type(step).__name__)
    summary: dict[str, Any] = {
        rec.STATUS: Status.RUNNING,
        rec.REASON: None,
        rec.OPTIMIZED_METRIC: cfg.optimized_metric,
        rec.BEST_VAL_ACC: 0.0,
        rec.BEST_EPOCH: None,
        rec.EPOCHS_RUN: 0,
        rec.MAX_EPOCHS: epochs,
        rec.STOPPED_EARLY: False,
        rec.STOP_EPOCH: None,
        rec.RESUMED_FROM: [],
        rec.VAL_SPLIT: val_split,
        rec.N_PARAMS: n_params,
        rec.DEVICE: str(device),
        rec.TRAINING_STEP: type(step).__name__,
        rec.CHOICES: {g: group_choice(cfg, g) for g in GROUPS if g in cfg},
    }
    run = Run(cfg, out_dir, parts.model, parts.optimizer, epochs, steps, summary)
    everyone = _callbacks(cfg, out_dir, scheduler, parts, callbacks)
    check_every = 1 if device.type == "cpu" else 100
    return run, Loop(step, train_set, val_set, everyone, generator, check_every)


def _callbacks(
    cfg: DictConfig,
    out_dir: Path,
    scheduler: Callback | None,
    parts: Components,
    extra: Sequence[Callback],
) -> list[Callback]:
    """The built-in callbacks, in the order they run each epoch; ``extra`` before early
    stopping, so a pruned or stopped epoch is still written and logged."""
    found = [MetricsWriter(out_dir / rec.METRICS_FILE, rec.METRIC_COLUMNS), EpochLog()]
    found += loggers(cfg, out_dir)
    if cfg.trainer.save_checkpoint:
        found.append(Checkpoint())
    found.append(DivergenceCheck())
    found += [scheduler] if scheduler is not None else []
    found += [parts.averaging] if parts.averaging is not None else []
    found += list(extra)
    found += [parts.early_stopping] if parts.early_stopping is not None else []
    found += [ProgressBar()] if cfg.trainer.progress_bar else []
    return found


def _statistics(model: torch.nn.Module, probe: torch.Tensor) -> dict[str, float]:
    stats = parameter_stats(model)
    return {**stats, **feature_stats(model, probe)} if hasattr(model, "stem") else stats


def objective(summary: dict[str, Any], metric: str = rec.BEST_VAL_ACC) -> float:
    """The value returned to the sweeper: ``metric`` of the summary, NaN if diverged (the
    sweeper records a non-finite value as a failed trial)."""
    if summary[rec.STATUS] == Status.DIVERGED:
        return math.nan
    value = summary.get(metric)
    return float(value) if value is not None else math.nan


def _finish(run: Run, started: float) -> None:
    """Complete the summary and write summary.json (and curves.png)."""
    summary, rows, cfg = run.summary, run.rows, run.cfg
    last = rows[-1] if rows else {}
    if summary[rec.STATUS] == Status.EARLY_STOPPED:
        summary.update({rec.STOPPED_EARLY: True, rec.STOP_EPOCH: summary[rec.EPOCHS_RUN]})
    summary.update(
        {
            rec.WALL_TIME_S: time.perf_counter() - started,
            rec.FINAL_TRAIN_ACC: last.get(rec.TRAIN_ACC),
            rec.FINAL_VAL_ACC: last.get(rec.VAL_ACC, None if rows else summary[rec.BEST_VAL_ACC]),
            rec.FINAL_TRAIN_LOSS: last.get(rec.TRAIN_LOSS),
            rec.FINAL_VAL_LOSS: last.get(rec.VAL_LOSS),
            rec.CONFIG: OmegaConf.to_container(cfg, resolve=True),
        }
    )
    summary[rec.OBJECTIVE] = objective(summary, cfg.optimized_metric)
    if cfg.trainer.save_curves:
        artifacts.plot_curves(rows, run.out_dir / rec.CURVES_FILE, _techniques(cfg))
    rec.write_summary(run.out_dir / rec.SUMMARY_FILE, summary)


def _report_end(run: Run) -> None:
    s = run.summary
    if run.epochs == 0:
        log.info(
            "trainer.epochs=0: nothing trained; val_acc of the untrained model %.4f (%.1fs)",
            s[rec.BEST_VAL_ACC],
            s[rec.WALL_TIME_S],
        )
        return
    if s[rec.STATUS] != Status.DIVERGED and s[rec.BEST_VAL_ACC] <= 1.1 / _num_classes(run):
        log.warning(
            "accuracy stayed at chance level (%.3f): the model did not learn", s[rec.BEST_VAL_ACC]
        )
    log.info(
        "best val_acc %.4f at epoch %s (%s, %d epochs, %.1fs)",
        s[rec.BEST_VAL_ACC],
        s[rec.BEST_EPOCH],
        s[rec.STATUS],
        s[rec.EPOCHS_RUN],
        s[rec.WALL_TIME_S],
    )


def _model_name(model: torch.nn.Module) -> str:
    if isinstance(model, LeNet5):
        return "LeNet-5" + (" padded to 32x32" if model.c1.padding != (0, 0) else "")
    return type(model).__name__


def _num_classes(run: Run) -> int:
    last = [m for m in run.model.modules() if isinstance(m, torch.nn.Linear)]
    return last[-1].out_features if last else 10


def _techniques(cfg: DictConfig) -> str:
    """``optimizer=sgd lr=0.1 regularizer=none ...`` for the log and the plot title."""
    parts = []
    for group in GROUPS:
        if group in cfg and group not in ("model", "logger"):  # in the log line's other words
            parts.append(f"{group}={group_choice(cfg, group)}")
        if group == "optimizer" and cfg.optimizer.get("lr") is not None:
            parts.append(f"lr={cfg.optimizer.lr:g}")
    return " ".join(parts)
