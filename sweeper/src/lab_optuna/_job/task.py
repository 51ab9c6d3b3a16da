"""The job side of a trial: which trial this job is, its heartbeats, its ``trial.json``.

The sweeper wraps the app's task function in ``TaskAsTrial``; in whatever process the launcher
runs it (the sweeper's own, a joblib worker, a SLURM node), the job finds its trial from its
own Hydra config — the study in ``hydra.sweeper.storage``/``study_name``, the trial number in
``hydra.job.num`` — so the app declares nothing. ``current_trial()`` hands it to the app.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from lab_optuna import names
from lab_optuna._job import trial_json
from lab_optuna._loop import slot_overrides
from lab_optuna._loop.budget import past_deadline
from lab_optuna._loop.console import route_optuna_logging
from lab_optuna._loop.verdicts import TrialFailed, of_exception, of_return
from lab_optuna._storage.connect import make_storage
from lab_optuna._storage.heartbeat import job_heartbeat

log = logging.getLogger(__name__)

_current: optuna.trial.Trial | None = None
_checkpoint_dir: Path | None = None
#: In-memory studies of this process (``storage: null``), for jobs run in-process.
LIVE_STUDIES: dict[str, tuple[optuna.Study, Any]] = {}


def current_trial() -> optuna.trial.Trial | None:
    """The Optuna trial this Hydra job runs, or None outside a ``lab_optuna`` sweep."""
    return _current


def checkpoint_dir() -> Path | None:
    """The folder where this trial saves its state to be continued, or None outside a sweep.

    The same for every attempt of a trial (a job requeued by the cluster, a continuation
    after its job died): an app that saves there after each epoch and resumes from what it
    finds loses at most the epoch it was in. The folder may not exist yet."""
    return _checkpoint_dir


class TaskAsTrial:
    """The app's task function, run as the Optuna trial numbered ``hydra.job.num``."""

    def __init__(self, task_function: Callable[[DictConfig], Any]) -> None:
        self.task_function = task_function

    def __call__(self, cfg: DictConfig) -> Any:
        global _current, _checkpoint_dir
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.get()
        route_optuna_logging()
        trial, storage, trial_id = attach(hc.sweeper, int(hc.job.num))
        out = Path(hc.runtime.output_dir)
        job = {
            "number": int(hc.job.num),
            "study": hc.sweeper.study_name,
            "params": dict(trial.params) if trial else {},
            "host": f"{socket.gethostname()}:{os.getpid()}",
            "job_id": _cluster_job_id(),
            **slot_overrides.record_of(trial),  # slot, slot_overrides (with slot_overrides)
        }
        if trial is not None and not _running(trial, storage, trial_id):
            raise TrialFailed(f"trial {trial.number} had already ended: this attempt did not run")
        trial_json.write(out, job, TrialState.RUNNING)
        _current, _checkpoint_dir = trial, _lineage_dir(trial, out)
        try:
            with job_heartbeat(storage, trial_id):
                if trial is not None:  # the sweeper stops beating for it from now on
                    trial.set_user_attr(names.HOST, job["host"])
                value = self.task_function(cfg)
        except Exception as e:
            verdict = of_exception(e)
            trial_json.write(out, job, verdict.state, reason=verdict.reason)
            raise
        finally:
            _current, _checkpoint_dir = None, None
        verdict = of_return(value, _n_objectives(hc.sweeper))
        trial_json.write(out, job, verdict.state, values=verdict.values)
        return value


def _running(trial: optuna.trial.Trial, storage: Any, trial_id: int) -> bool:
    """False for a trial that ended meanwhile (a cluster job restarted after its trial was
    failed as stale and continued elsewhere must not run it twice)."""
    return storage.get_trial(trial_id).state == TrialState.RUNNING


def _lineage_dir(trial: optuna.trial.Trial | None, out: Path) -> Path | None:
    """The trial's checkpoint folder: inherited from its lineage, else set here (first
    attempt), as an absolute path so that every attempt finds it from any working dir."""
    if trial is None:
        return None
    known = trial.user_attrs.get(names.CHECKPOINT_DIR)
    if known:
        return Path(known)
    folder = out.resolve() / names.CHECKPOINT_SUBDIR
    trial.set_user_attr(names.CHECKPOINT_DIR, str(folder))
    return folder


def _cluster_job_id() -> str | None:
    """The SLURM job running this trial (array jobs as ``<array>_<task>``), if any."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID")


def attach(sweeper_cfg: DictConfig, number: int) -> tuple[optuna.trial.Trial | None, Any, int]:
    """(trial numbered ``number``, its storage, its id), or (None, None, -1) if unreachable."""
    name = sweeper_cfg.get("study_name")
    url = sweeper_cfg.get("storage")
    if url:
        storage = make_storage(
            str(url),
            sweeper_cfg.get("heartbeat_interval"),
            sweeper_cfg.get("grace_period"),
            retry_s=sweeper_cfg.get("storage_retry_s"),
        )
        study = optuna.load_study(study_name=name, storage=storage, pruner=_pruner(sweeper_cfg))
    elif name in LIVE_STUDIES:  # an in-memory study of this very process
        study, storage = LIVE_STUDIES[name]
    else:
        log.warning("trial %d: its in-memory study is in another process; no pruning", number)
        return None, None, -1
    study_id = storage.get_study_id_from_name(study.study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    return JobTrial(study, trial_id), storage, trial_id


class JobTrial(optuna.trial.Trial):
    """The job's ``optuna.trial.Trial``; a Ctrl-C arriving while it writes to the storage
    is held until the write is done (a SQLite write cut in half keeps its lock, and every
    later write — the sweeper recording the interrupted trial — would wait for it)."""

    def report(self, value: float, step: int) -> None:
        """Optuna's ``report``; a step the trial already holds (a continuation of an app that
        started again from an earlier step) keeps its first value, without a warning."""
        with sigint_deferred(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The reported value is ignored because")
            super().report(value, step)

    def should_prune(self) -> bool:
        with sigint_deferred():
            if past_deadline(self):  # timeout_prune: the sweep's time budget is spent
                return True
            return super().should_prune()

    def set_user_attr(self, key: str, value: Any) -> None:
        with sigint_deferred():
            super().set_user_attr(key, value)


@contextlib.contextmanager
def sigint_deferred() -> Iterator[None]:
    """Hold a Ctrl-C until the block has run, then act on it as the previous handler would."""
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
            elif previous == signal.SIG_DFL:
                raise KeyboardInterrupt


def _pruner(sweeper_cfg: DictConfig) -> optuna.pruners.BasePruner:
    from hydra.utils import instantiate

    node = sweeper_cfg.get("pruner")
    return instantiate(node) if node else optuna.pruners.NopPruner()


def _n_objectives(sweeper_cfg: DictConfig) -> int:
    direction = sweeper_cfg.get("direction")
    if OmegaConf.is_list(direction) or isinstance(direction, (list, tuple)):
        return len(direction)
    return 1
