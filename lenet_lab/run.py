"""A whole training run from a composed config: read it top to bottom.

``train(cfg, out_dir)`` validates the config, loads the data (once per process), builds
LeNet-5, its optimizer, scheduler and early stopping, trains, and writes the run's
artifacts. It returns the summary; ``train.py`` hands ``best_val_acc`` to the sweeper.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from . import artifacts, callbacks, data, engine, optim, regularizers
from .explicit_step import ExplicitBackwardStep, Unsupported
from .model import LeNet5, count_parameters
from .validation import validate

log = logging.getLogger(__name__)

# Objective returned for a diverged run: finite (a NaN crashes the Optuna sweeper) and
# clearly worse than any real accuracy.
DIVERGED_OBJECTIVE = 0.0

EpochHook = Callable[[int, dict[str, float]], None]


class Interrupted(Exception):
    """Wraps a Ctrl-C so the caller can tell it apart from a crash."""


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)  # drives the batch order only


def build_model(cfg: DictConfig, device: torch.device) -> LeNet5:
    return LeNet5(
        num_classes=int(cfg.model.num_classes),
        dropout=regularizers.dropout_p(cfg.regularizer),
        batchnorm=cfg.normalization.name == "batchnorm",
    ).to(device)


def load_data(cfg: DictConfig, device: torch.device) -> tuple[data.Split, data.Split]:
    source = data.resolve_source(cfg.data.root, bool(cfg.data.download))
    kw = dict(normalize=bool(cfg.data.normalize), mean=float(cfg.data.mean),
              std=float(cfg.data.std), device=device)  # fmt: skip
    train = data.load_split(source, True, cfg.data.train_size, **kw)
    val = data.load_split(source, False, cfg.data.val_size, **kw)
    return train, val


def _warn_patience_conflict(cfg: DictConfig) -> None:
    if cfg.scheduler.name == "none" or cfg.early_stopping.name == "none":
        return
    # ReduceLROnPlateau lowers the lr on the (patience + 1)-th epoch without improvement,
    # early stopping ends the run on its patience-th: the lowered lr must get an epoch.
    if cfg.scheduler.patience + 1 >= cfg.early_stopping.patience:
        log.warning(
            "scheduler.patience=%d >= early_stopping.patience-1=%d: early stopping will end "
            "the run before training with a learning rate ReduceLROnPlateau lowered",
            cfg.scheduler.patience, cfg.early_stopping.patience - 1,
        )  # fmt: skip


def train(cfg: DictConfig, out_dir: Path, on_epoch: EpochHook | None = None) -> dict[str, Any]:
    """Train one model; write artifacts into ``out_dir``; return the summary dict.

    ``on_epoch(epoch, row)`` runs after each epoch (the sweeper reports to Optuna there and
    may raise ``optuna.TrialPruned``). Exceptions are recorded in summary.json, then re-raised.
    """
    device = validate(cfg)  # before any data is read
    started = time.perf_counter()
    if cfg.trainer.get("num_threads"):
        torch.set_num_threads(int(cfg.trainer.num_threads))
    out_dir.mkdir(parents=True, exist_ok=True)
    generator = seed_everything(int(cfg.seed))
    train_set, val_set = load_data(cfg, device)
    for line in data.describe(train_set):
        log.info(line)
    log.info("train %d images, validation %d images, device %s",
             len(train_set), len(val_set), device)  # fmt: skip
    if cfg.trainer.save_samples:
        data.save_samples(train_set, out_dir / "samples.png")

    model = build_model(cfg, device)
    n_params = count_parameters(model)
    log.info("model: LeNet-5 (%s), %s trainable parameters, output = logits (no softmax)",
             _techniques(cfg), f"{n_params:,}")  # fmt: skip
    graphable = device.type == "cuda" and bool(cfg.trainer.cuda_graph)
    optimizer = optim.build_optimizer(model, cfg.optimizer, cfg.regularizer, graphable)
    scheduler = optim.build_scheduler(optimizer, cfg.scheduler)
    stopper = (
        callbacks.EarlyStopping(int(cfg.early_stopping.patience),
                                float(cfg.early_stopping.min_delta))  # fmt: skip
        if cfg.early_stopping.name != "none" else None
    )
    _warn_patience_conflict(cfg)
    l1 = regularizers.l1_coef(cfg.regularizer)
    l1_params = regularizers.l1_parameters(model) if l1 else None
    batch_size = int(cfg.data.batch_size)
    explicit = device.type == "cpu" and bool(cfg.trainer.get("explicit_backward", True))
    step = _make_step(model, optimizer, train_set, batch_size, l1, l1_params, graphable, explicit)
    log.info("training step: %s", type(step).__name__)
    probe = val_set.x[: min(256, len(val_set))]  # fixed batch for the feature statistics

    summary: dict[str, Any] = {
        "status": "running", "best_val_acc": 0.0, "best_epoch": None, "epochs_run": 0,
        "max_epochs": int(cfg.trainer.epochs), "stopped_early": False, "stop_epoch": None,
        "n_params": n_params, "device": str(device), "reason": None,
    }  # fmt: skip
    writer = artifacts.MetricsWriter(out_dir / "metrics.csv")
    epochs = int(cfg.trainer.epochs)
    check_every = 1 if device.type == "cpu" else 100
    bar = _progress_bar(cfg, epochs * math.ceil(len(train_set) / batch_size))
    console = _logs_above(bar)
    console.__enter__()
    try:
        if epochs == 0:  # inspect-only: score the untrained model
            summary["final_val_acc"] = summary["best_val_acc"] = engine.evaluate(
                model, val_set, int(cfg.data.val_batch_size)).acc  # fmt: skip
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            tr = engine.train_epoch(step, train_set, batch_size, generator, check_every, bar)
            va = engine.evaluate(model, val_set, int(cfg.data.val_batch_size))
            lr = optim.current_lr(optimizer)
            row = {"epoch": epoch, "train_loss": tr.loss, "train_acc": tr.acc,
                   "val_loss": va.loss, "val_acc": va.acc, "lr": lr,
                   "seconds": time.perf_counter() - t0, **callbacks.parameter_stats(model),
                   **callbacks.feature_stats(model, probe)}  # fmt: skip
            writer.write(row)
            summary["epochs_run"] = epoch
            log.info("epoch %3d/%d  loss %.4f acc %.4f | val_loss %.4f val_acc %.4f | lr %.3g"
                     " | %.1fs", epoch, epochs, tr.loss, tr.acc, va.loss, va.acc, lr,
                     row["seconds"])  # fmt: skip
            if va.acc > summary["best_val_acc"]:
                summary.update(best_val_acc=va.acc, best_epoch=epoch)
                if cfg.trainer.save_checkpoint:
                    torch.save(model.state_dict(), out_dir / "best.pt")
            if not math.isfinite(va.loss):
                raise engine.DivergedError(f"non-finite validation loss at epoch {epoch}")
            if scheduler is not None:
                scheduler.step(va.loss)
            if on_epoch is not None:
                on_epoch(epoch, row)
            if stopper is not None and stopper.step(va.loss):
                summary.update(stopped_early=True, stop_epoch=epoch)
                log.info("early stopping at epoch %d: val_loss has not improved by %g for %d "
                         "epoch(s) (patience %d)", epoch, stopper.min_delta, stopper.bad_epochs,
                         stopper.patience)  # fmt: skip
                break
        summary["status"] = "early_stopped" if summary["stopped_early"] else "completed"
        if epochs == 0:
            log.info("trainer.epochs=0: no training; val_acc of the untrained model %.4f",
                     summary["best_val_acc"])  # fmt: skip
        elif summary["best_val_acc"] <= 1.1 / int(cfg.model.num_classes):
            log.warning("accuracy stayed at chance level (%.3f): the model did not learn",
                        summary["best_val_acc"])  # fmt: skip
    except engine.DivergedError as e:
        summary.update(status="diverged", reason=str(e))
        log.error("diverged: %s; stopping this run (objective = %s)", e, DIVERGED_OBJECTIVE)
    except KeyboardInterrupt:
        summary.update(status="interrupted", reason="interrupted by the user (Ctrl-C)")
        raise
    except Exception as e:
        pruned = type(e).__name__ == "TrialPruned"
        summary.update(status="pruned" if pruned else "failed", reason=f"{type(e).__name__}: {e}")
        raise
    finally:
        if bar is not None:
            bar.close()
        console.__exit__(None, None, None)
        writer.close()
        rows = writer.rows
        summary.update(
            wall_time_s=time.perf_counter() - started,
            final_train_acc=rows[-1]["train_acc"] if rows else None,
            final_val_acc=rows[-1]["val_acc"] if rows else summary.get("final_val_acc"),
            final_train_loss=rows[-1]["train_loss"] if rows else None,
            final_val_loss=rows[-1]["val_loss"] if rows else None,
            objective=objective(summary),
            config=OmegaConf.to_container(cfg, resolve=True),
        )
        if cfg.trainer.save_curves:
            artifacts.plot_curves(rows, out_dir / "curves.png", _techniques(cfg))
        artifacts.write_summary(out_dir / "summary.json", summary)
    log.info("best val_acc %.4f at epoch %s (%s, %d epochs, %.1fs)", summary["best_val_acc"],
             summary["best_epoch"], summary["status"], summary["epochs_run"],
             summary["wall_time_s"])  # fmt: skip
    return summary


def objective(summary: dict[str, Any]) -> float:
    """The sweep objective: best validation accuracy, or a finite bad value if diverged."""
    if summary["status"] == "diverged":
        return DIVERGED_OBJECTIVE
    return float(summary["best_val_acc"])


def _make_step(model, optimizer, train_set, batch_size, l1, l1_params, graphable, explicit=False):
    """The CUDA-graph step, the explicit-backward CPU step, or the autograd step."""
    if explicit:
        try:
            return ExplicitBackwardStep(model, optimizer, l1, l1_params)
        except Unsupported as e:  # a model it does not implement: autograd does
            log.info("explicit backward unavailable (%s); using autograd", e)
    if graphable and len(train_set) >= batch_size:
        saved = {k: v.clone() for k, v in model.state_dict().items()}
        try:
            return engine.GraphedTrainStep(model, optimizer, train_set, batch_size, l1, l1_params)
        except Exception as e:  # anything the graph cannot hold: fall back to eager
            warnings.warn(f"CUDA graph capture failed ({e}); training eagerly", stacklevel=2)
            model.load_state_dict(saved)
            optimizer.state.clear()
    return engine.TrainStep(model, optimizer, l1, l1_params)


def _techniques(cfg: DictConfig) -> str:
    return (f"optimizer={cfg.optimizer.name} lr={cfg.optimizer.lr:g} "
            f"regularizer={cfg.regularizer.name} normalization={cfg.normalization.name} "
            f"scheduler={cfg.scheduler.name} early_stopping={cfg.early_stopping.name}")  # fmt: skip


def _progress_bar(cfg: DictConfig, total: int):
    if not cfg.trainer.progress_bar or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="batch", leave=False, dynamic_ncols=True)


def _logs_above(bar) -> contextlib.AbstractContextManager:
    """While the bar shows, console log lines are printed above it (not into it)."""
    if bar is None:
        return contextlib.nullcontext()
    from tqdm.contrib.logging import logging_redirect_tqdm

    return logging_redirect_tqdm()
