"""A sweep's SLURM jobs: which are back in the queue (requeued: the sweeper beats for their
trials meanwhile), and cancelling them when the sweep is interrupted (Ctrl-C or SIGTERM).

The launcher (hydra-submitit-launcher) returns nothing until its jobs end, so the job ids
are found the public way: a started job wrote its id into its ``trial.json`` (``job_id``);
a job still queued has no ``trial.json`` yet, but submitit keeps its submission in
``<submitit_folder>/<job id>/<job id>_submitted.pkl``, whose arguments hold the job's
number (= the trial number, ``initial_job_idx``). Each is cancelled through submitit
(``SlurmJob(folder, job_id).cancel()``, i.e. ``scancel <id>``). Other launchers (Hydra's
basic one, joblib, submitit's local executor) are left alone: their jobs end with this
process.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from lab_optuna._job import trial_json

log = logging.getLogger(__name__)

SUBMITTED = "_submitted.pkl"
#: How long to wait for a submission in flight when a trial's job is not found at first.
SUBMITTING_S = 2.0


def is_slurm(config: DictConfig) -> bool:
    """Whether the sweep launches through hydra-submitit-launcher's SLURM launcher."""
    target = OmegaConf.select(config, "hydra.launcher._target_", default="") or ""
    return str(target).endswith("SlurmLauncher")


def job_ids(config: DictConfig, numbers: Iterable[int], since: float) -> dict[int, str]:
    """Trial number -> SLURM job id for the jobs of ``numbers``: from their ``trial.json``,
    else (still queued) from submitit's submissions written after ``since`` (epoch s)."""
    numbers = set(numbers)
    ids = _started(config, numbers)
    missing = numbers - set(ids)
    if missing:
        ids.update(_queued(config, missing, since))
    return ids


def _started(config: DictConfig, numbers: Iterable[int]) -> dict[int, str]:
    """Trial number -> SLURM job id of the jobs of ``numbers`` that started (``trial.json``)."""
    found = {n: trial_json.record_of(config, n).get("job_id") for n in numbers}
    return {n: str(job) for n, job in found.items() if job}


def _queued(config: DictConfig, numbers: set[int], since: float) -> dict[int, str]:
    """Job ids of submissions of trial ``numbers`` in the submitit folder."""
    import submitit

    folder = _submitit_folder(config)
    if folder is None:
        return {}
    base = Path(folder.split("%", 1)[0])
    found: dict[int, str] = {}
    for pickle in base.glob(f"*/*{SUBMITTED}"):
        try:
            if pickle.stat().st_mtime < since:
                continue
            job_id = pickle.name[: -len(SUBMITTED)]
            submission = submitit.SlurmJob(folder=folder, job_id=job_id).submission()
            number = int(submission.args[2])  # the launcher's (overrides, key, job_num, ...)
        except Exception:  # noqa: BLE001 - an unreadable or foreign submission: not ours
            continue
        if number in numbers:
            found[number] = job_id
    return found


def _submitit_folder(config: DictConfig) -> str | None:
    try:
        return str(OmegaConf.select(config, "hydra.launcher.submitit_folder"))
    except Exception:  # noqa: BLE001 - an interpolation that does not resolve here
        return None


#: squeue states of a job waiting to run again (requeued after a time limit, a preemption or
#: ``scontrol requeue``), its process gone: its trial must not go stale meanwhile.
WAITING = frozenset(
    {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "SUSPENDED"}
)


def queued_again(config: DictConfig, numbers: Iterable[int]) -> set[int]:
    """The trials of ``numbers`` whose started SLURM job waits in the queue to run again."""
    if not is_slurm(config):
        return set()
    ids = {job: n for n, job in _started(config, numbers).items()}
    if not ids:
        return set()
    try:
        out = subprocess.run(
            ["squeue", "-h", "-o", "%i %T", "-j", ",".join(ids)],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    found = (line.split() for line in out.splitlines())
    return {ids[job] for job, state, *_ in found if job in ids and state in WAITING}


def cancel(config: DictConfig, numbers: Iterable[int], since: float) -> list[str]:
    """Cancel the SLURM jobs of trials ``numbers`` (launched after ``since``); their ids."""
    if not is_slurm(config):
        return []
    import submitit

    folder = _submitit_folder(config) or "."
    numbers = set(numbers)
    ids = job_ids(config, numbers, since)
    if numbers - set(ids):  # a submission may be in flight (sbatch running): look once more
        time.sleep(SUBMITTING_S)
        ids.update(_queued(config, numbers - set(ids), since))
    for job_id in ids.values():
        try:
            submitit.SlurmJob(folder=folder, job_id=job_id).cancel(check=False)
        except Exception as e:  # noqa: BLE001 - e.g. scancel missing: say so, go on
            log.warning("could not cancel SLURM job %s: %s", job_id, e)
    if ids:
        log.warning(
            "cancelled %d SLURM job(s) of this sweep still running or queued: %s",
            len(ids),
            ", ".join(sorted(ids.values())),
        )
    return sorted(ids.values())


def since(started: Iterable[float]) -> float:
    """The wall-clock time (epoch s) before the earliest of monotonic times ``started``,
    with a minute's margin: submissions older than that are not this sweep's."""
    now_mono, now = time.monotonic(), time.time()
    earliest = min(started, default=now_mono)
    return now - (now_mono - earliest) - 60.0
