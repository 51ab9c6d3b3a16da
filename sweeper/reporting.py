"""The job side of a trial: record who it is, report each epoch's val accuracy to Optuna."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import yaml
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def route_optuna_logging() -> None:
    """Optuna's messages through Python logging (Hydra's format, console and log file)
    instead of its own colour handler, whose escape codes end up in captured logs."""
    import optuna

    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()


def trial_params() -> dict[str, str]:
    """This job's overrides as ``key: value`` (the trial's params), sweeper keys left out."""
    from hydra.core.hydra_config import HydraConfig

    params = {}
    for override in HydraConfig.get().overrides.task:
        key, _, value = override.partition("=")
        if not key.startswith(("optuna_trial.", "hydra.")):
            params[key.lstrip("+~")] = yaml.safe_load(value) if value else value
    return params


def trial_hook(cfg: DictConfig, out_dir: Path) -> Callable[[int, dict], None] | None:
    """For an Optuna trial: write ``trial.json`` and return the per-epoch reporter.

    The trial is looked up in the study storage by its number (works for in-process and
    out-of-process launchers alike); the pruner is the sweeper's, rebuilt from this job's
    ``hydra.sweeper.pruner``. Returns None outside an Optuna sweep.
    """
    info = cfg.get("optuna_trial")
    if not info or info.number is None:
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"number": int(info.number), "study": info.study, "params": trial_params()}
    (out_dir / "trial.json").write_text(json.dumps(record, indent=2))
    if not info.storage:
        return None
    import optuna

    route_optuna_logging()
    from .pruners import pruner_from_hydra
    from .storage import make_storage

    study = optuna.load_study(
        study_name=info.study, storage=make_storage(info.storage), pruner=pruner_from_hydra()
    )
    trial_id = study._storage.get_trial_id_from_study_id_trial_number(
        study._study_id, int(info.number)
    )
    trial = optuna.trial.Trial(study, trial_id)

    def report(epoch: int, row: dict) -> None:
        with _sigint_deferred():  # a Ctrl-C never cuts a storage write in half
            trial.report(float(row["val_acc"]), epoch)
            prune = trial.should_prune()
        if prune:
            raise optuna.TrialPruned(f"pruned at epoch {epoch} (val_acc {row['val_acc']:.4f})")

    return report


@contextlib.contextmanager
def _sigint_deferred():
    """Hold a Ctrl-C until the block has run, then act on it as the previous handler would.

    An interrupt in the middle of a SQLite write can leave its transaction open, and then
    every later write to the file (the sweeper recording the interrupted trials) waits for
    the busy timeout.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            if callable(previous):
                previous(signal.SIGINT, None)
            elif previous != signal.SIG_IGN:
                raise KeyboardInterrupt
