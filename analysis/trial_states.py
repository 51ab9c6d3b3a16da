"""Run status ↔ Optuna trial state, for reading sweeps: the one table of which run status
a trial state reads as.

A completed or early-stopped run is a COMPLETE trial, a pruned one PRUNED, a diverged, failed
or interrupted one a FAIL, a running one RUNNING (``train.py`` states each through the
sweeper's job API). The study is the source of truth for a trial: ``analysis`` reads a job's
status from its trial's state, and counts outcomes of runs without a study by this table.
"""

from __future__ import annotations

from typing import Any

from optuna.trial import TrialState

from lenet_lab.record import Status

#: Each trial state and the run statuses it records; the first one is the status a trial in
#: that state reads as when only its state is known (a WAITING trial has not started yet).
STATES: dict[TrialState, tuple[Status, ...]] = {
    TrialState.COMPLETE: (Status.COMPLETED, Status.EARLY_STOPPED),
    TrialState.PRUNED: (Status.PRUNED,),
    TrialState.FAIL: (Status.FAILED, Status.DIVERGED, Status.INTERRUPTED),
    TrialState.RUNNING: (Status.RUNNING,),
    TrialState.WAITING: (Status.RUNNING,),
}
#: Run status → the trial state a sweep records for it.
TRIAL_STATE: dict[Status, TrialState] = {}
for _state, _statuses in STATES.items():
    for _status in _statuses:
        TRIAL_STATE.setdefault(_status, _state)  # RUNNING: the RUNNING state, not WAITING
del _state, _statuses, _status


def trial_state(status: Any) -> TrialState:
    """The trial state of a run status (a word or a :class:`Status`); FAIL for any other."""
    try:
        return TRIAL_STATE[Status(status)]
    except ValueError:
        return TrialState.FAIL


def state_status(state: Any) -> Status | None:
    """The run status of a trial state or its name (``"PRUNED"`` → pruned); None if not one."""
    try:
        found = state if isinstance(state, TrialState) else TrialState[str(state).strip().upper()]
    except KeyError:
        return None
    return STATES[found][0] if STATES.get(found) else None
