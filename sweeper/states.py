"""The sweeper's outcome vocabulary, in one place: how a job's result becomes a trial state.

States are Optuna's own (``TrialState`` names); a job's return value becomes COMPLETE with
its values, or FAIL when it is not a finite number (e.g. a diverged run returning NaN).
"""

from __future__ import annotations

import math
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


def job_state(value: Any, n_objectives: int) -> tuple[str, list[float] | None]:
    """(COMPLETE, values) for finite values, else (FAIL, None)."""
    try:
        values = objective_values(value, n_objectives)
    except BadReturn:
        return FAIL_STATE, None
    if all(math.isfinite(v) for v in values):
        return COMPLETE_STATE, values
    return FAIL_STATE, None
