"""How a job ends, in one place: the outcomes, the one mapping from a job's return value or
exception to an outcome (its trial state and reason), telling Optuna, and the tally.

A job states its trial's fate one way (the job API, ``lab_optuna``): it returns the objective
(COMPLETE), raises ``TrialPruned`` (PRUNED), raises ``TrialFailed(reason)`` or returns a
non-finite value (FAIL, not a crash), or is interrupted (its trial continues in a new attempt:
``continuation.py``). Any other exception is a crash (FAIL, counted towards
max_failure_rate). States are Optuna's own (``TrialState``); a FAIL's reason is the
``fail_reason`` user attribute.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus
from optuna.trial import FrozenTrial, TrialState

from lab_optuna import names

log = logging.getLogger(__name__)


#: Reason of a trial failed because its job stopped beating.
STALE = "stale: its job stopped sending heartbeats (killed?)"
#: Reason of a warm-start trial another worker queued at the same moment (never run).
DUPLICATE = "duplicate: another worker queued the same warm-start point at the same moment"


@dataclass(frozen=True)
class Verdict:
    """How one job ended: its trial's state (Optuna's ``TrialState``, the one vocabulary of
    outcomes), the reason (empty for COMPLETE), the values (only for COMPLETE), whether it was
    a crash (an exception of the app: counts towards max_failure_rate) and whether its trial
    is to be continued (its job died of something outside the app: a cluster's verdict)."""

    state: TrialState
    reason: str = ""
    values: list[float] | None = None
    crash: bool = False
    resume: bool = False


class TrialFailed(Exception):
    """Raised by a job whose trial failed for a reason of its own (a diverged training run):
    FAIL with that reason, not a crash (it does not count towards max_failure_rate)."""


class BadReturn(ValueError):
    """A job's return value the sweeper cannot read as the objective(s)."""


def objective_values(value: Any, n_objectives: int) -> list[float]:
    """The job's return value as ``n_objectives`` floats (may be NaN/inf); else BadReturn."""
    if n_objectives == 1:
        try:
            return [float(value)]
        except (TypeError, ValueError):
            raise BadReturn(f"the task function must return a number, got {value!r}") from None
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise BadReturn(f"the task function must return {n_objectives} numbers, got {value!r}")
    try:
        values = [float(v) for v in value]
    except (TypeError, ValueError):
        raise BadReturn(f"the task function must return numbers, got {value!r}") from None
    if len(values) != n_objectives:
        raise BadReturn(f"{len(values)} values returned for {n_objectives} directions: {value!r}")
    return values


def of_return(value: Any, n_objectives: int) -> Verdict:
    """The verdict on what the task function returned."""
    try:
        values = objective_values(value, n_objectives)
    except BadReturn as e:
        return Verdict(TrialState.FAIL, str(e), crash=True)
    if not all(math.isfinite(v) for v in values):
        return Verdict(TrialState.FAIL, f"non-finite objective {value!r}")
    return Verdict(TrialState.COMPLETE, values=values)


def of_exception(error: BaseException) -> Verdict:
    """The verdict on what the job (or the launcher running it) raised."""
    if isinstance(error, optuna.TrialPruned):
        return Verdict(TrialState.PRUNED, str(error))
    if isinstance(error, TrialFailed):
        return Verdict(TrialState.FAIL, str(error))
    reason = f"{type(error).__name__}: {error}"
    death = job_death(reason)
    if death is not None:  # the cluster ended the job (scancel, time limit, ...)
        why, rerun = death
        return Verdict(TrialState.FAIL, why, resume=rerun)
    return Verdict(TrialState.FAIL, reason, crash=True)


def of_job(ret: JobReturn, n_objectives: int) -> Verdict:
    """The verdict on one launched job."""
    if ret.status == JobStatus.FAILED:
        # the job's exception (JobReturn.return_value would re-raise it, printing a line)
        return of_exception(ret._return_value)
    return of_return(ret.return_value, n_objectives)


#: Final states of a cluster job that died (from the launcher's error, e.g. submitit's
#: "has not produced any output (state: CANCELLED by 0)"): (reason, continue the trial?).
#: A time limit continues it: each attempt goes on from the last checkpoint.
JOB_DEATHS = {
    "CANCELLED": (
        "cancelled: its cluster job was cancelled (scancel, or its allocation ended)",
        True,
    ),
    "TIMEOUT": ("time limit: its cluster job exceeded hydra.launcher.timeout_min", True),
    "NODE_FAIL": ("node failure: the node running its cluster job failed", True),
    "PREEMPTED": ("preempted: its cluster job was preempted", True),
    "OUT_OF_MEMORY": ("out of memory: its cluster job exceeded hydra.launcher.mem_gb", False),
    "BOOT_FAIL": ("boot failure: the node of its cluster job did not start", True),
    "DEADLINE": ("deadline: its cluster job reached its deadline", False),
}


def job_death(error: str) -> tuple[str, bool] | None:
    """(reason, continue?) when a launcher error says the job died in a final cluster state."""
    if "timed-out" in error:  # submitit: the job got the time limit's warning signal
        return JOB_DEATHS["TIMEOUT"]
    match = re.search(r"state:?\s+([A-Z_]+)", error)
    return JOB_DEATHS.get(match.group(1)) if match else None


# ---------------------------------------------------------------- telling Optuna
def tell_verdict(study: optuna.Study, trial: optuna.Trial, verdict: Verdict) -> FrozenTrial | None:
    """Tell the study ``verdict`` for ``trial``; the trial as stored afterwards."""
    if verdict.state == TrialState.COMPLETE:
        return tell(study, trial, values=verdict.values)
    if verdict.state == TrialState.PRUNED:
        return tell(study, trial, state=TrialState.PRUNED)
    # a non-finite objective keeps a reason the job gave itself
    keep = not verdict.crash and not verdict.resume
    return fail(study, trial, verdict.reason, keep_existing=keep)


def tell(study: optuna.Study, trial: optuna.Trial, **kw: Any) -> FrozenTrial | None:
    """``study.tell``, tolerating a trial already finished (stale) and the grid sampler's
    ``study.stop()``, which Optuna only allows inside ``optimize``."""
    try:
        return study.tell(trial, **kw)
    except RuntimeError as e:
        if "Study.stop" not in str(e):
            raise
    except optuna.exceptions.UpdateFinishedTrialError:  # failed meanwhile (stale)
        log.warning("trial %d had already been marked finished", trial.number)
    return frozen(study, trial)


def fail(
    study: optuna.Study, trial: optuna.Trial, reason: str, keep_existing: bool = False
) -> FrozenTrial | None:
    """Mark ``trial`` FAIL with ``reason`` (unless ``keep_existing`` and it has one)."""
    with contextlib.suppress(Exception):
        stored = frozen(study, trial) if keep_existing else None
        if stored is None or not stored.user_attrs.get(names.FAIL_REASON):
            trial.set_user_attr(names.FAIL_REASON, reason[:500])
    return tell(study, trial, state=TrialState.FAIL)


def frozen(study: optuna.Study, trial: optuna.Trial) -> FrozenTrial | None:
    """The trial as the study stores it now."""
    found = study.get_trials(deepcopy=False)
    return found[trial.number] if trial.number < len(found) else None


# ---------------------------------------------------------------- this invocation's tally
@dataclass
class Tally:
    """This invocation's outcomes."""

    complete: int = 0
    pruned: int = 0
    failed: int = 0  # non-finite objective, dead job, stale, interrupted
    crashed: int = 0  # exceptions: these count towards max_failure_rate
    continued: int = 0  # attempts whose job died, continued by a new attempt (not counted above)
    first_error: str | None = None  # of a crash
    first_failure: str | None = None  # of any trial that did not complete

    @property
    def done(self) -> int:
        return self.complete + self.pruned + self.failed + self.crashed

    def count(self, verdict: Verdict, continued: bool = False) -> None:
        if continued:  # its trial goes on in a new attempt: not an outcome yet
            self.continued += 1
            return
        if verdict.state != TrialState.COMPLETE:
            self.first_failure = self.first_failure or verdict.reason
        if verdict.state == TrialState.COMPLETE:
            self.complete += 1
        elif verdict.state == TrialState.PRUNED:
            self.pruned += 1
        elif verdict.crash:
            self.crashed += 1
            self.first_error = self.first_error or verdict.reason
        else:
            self.failed += 1

    def check_failure_rate(self, max_failure_rate: float, min_trials: int) -> None:
        """SystemExit (one line) when more than ``max_failure_rate`` of the trials crashed."""
        if self.crashed == 0 or self.done < min_trials:
            return
        if self.crashed / self.done > max_failure_rate:
            raise SystemExit(
                f"error: {self.crashed} of {self.done} trials crashed (max_failure_rate="
                f"{max_failure_rate}); first error: {self.first_error}"
            )
