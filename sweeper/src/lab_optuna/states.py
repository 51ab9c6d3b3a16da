"""The sweeper's outcome vocabulary, in one place: how a job's result becomes a trial state.

States are Optuna's own (``TrialState`` names); a job's return value becomes COMPLETE with
its values, or FAIL when it is not a finite number (e.g. a diverged run returning NaN).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from optuna.trial import TrialState

COMPLETE_STATE = TrialState.COMPLETE.name
PRUNED_STATE = TrialState.PRUNED.name
FAIL_STATE = TrialState.FAIL.name

#: Reasons written to a FAIL trial's ``fail_reason`` user attribute.
STALE = "stale: its job stopped sending heartbeats (killed?)"
FAIL_REASON_ATTR = "fail_reason"


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


def finite(values: Sequence[float]) -> bool:
    return all(math.isfinite(v) for v in values)


def job_state(value: Any, n_objectives: int) -> tuple[str, list[float] | None]:
    """(COMPLETE, values) for finite values, else (FAIL, None)."""
    try:
        values = objective_values(value, n_objectives)
    except BadReturn:
        return FAIL_STATE, None
    return (COMPLETE_STATE, values) if finite(values) else (FAIL_STATE, None)


#: Final states of a cluster job that died (from the launcher's error, e.g. submitit's
#: "has not produced any output (state: CANCELLED by 0)"): (reason, re-queue its params?).
JOB_DEATHS = {
    "CANCELLED": (
        "cancelled: its cluster job was cancelled (scancel, or its allocation ended)",
        True,
    ),
    "TIMEOUT": ("time limit: its cluster job exceeded hydra.launcher.timeout_min", False),
    "NODE_FAIL": ("node failure: the node running its cluster job failed", True),
    "PREEMPTED": ("preempted: its cluster job was preempted", True),
    "OUT_OF_MEMORY": ("out of memory: its cluster job exceeded hydra.launcher.mem_gb", False),
    "BOOT_FAIL": ("boot failure: the node of its cluster job did not start", True),
    "DEADLINE": ("deadline: its cluster job reached its deadline", False),
}


def job_death(error: str) -> tuple[str, bool] | None:
    """(reason, re-queue?) when a launcher error says the job died in a final cluster state."""
    if "timed-out" in error:  # submitit: the job got the time limit's warning signal
        return JOB_DEATHS["TIMEOUT"]
    match = re.search(r"state:?\s+([A-Z_]+)", error)
    return JOB_DEATHS.get(match.group(1)) if match else None
