"""Continue trials whose job died (stale heartbeat, cancelled, timed out, preempted,
interrupted): the continuation is a new WAITING trial with the same params that keeps the
intermediate values already reported (the pruner sees one unbroken curve: Optuna's
``RetryFailedTrialCallback(inherit_intermediate_values=True)`` semantics, built from the same
public pieces) and the lineage's checkpoint folder (``checkpoint_dir`` user attribute, the
job API's ``checkpoint_dir()``): an app that saved its state there continues from it, one
that saved nothing starts again. The lineage is in user attributes (``retry_of``: the first
trial's number, ``attempt``, ``retry_reason``, ``continued_from_step``: the last step reported
before; ``retries``: attempts in a row that made no progress), so a dashboard or
``study_trials.csv`` shows it. An attempt that made progress is always continued; at most
``max_retry`` in a row without progress.
"""

from __future__ import annotations

import logging

import optuna
from optuna.trial import FrozenTrial, TrialState

from lab_optuna import names
from lab_optuna._loop.verdicts import STALE

log = logging.getLogger(__name__)


def requeue(study: optuna.Study, trial: FrozenTrial, reason: str, max_retry: int) -> bool:
    """Continue ``trial`` in a new attempt; True if queued. An attempt that reported a step
    beyond the ones it inherited made progress and is always continued (a trial longer than a
    cluster's time limit finishes across attempts); ``max_retry`` caps the attempts in a row
    that made none (an app that reports nothing counts every one)."""
    retries = int(trial.user_attrs.get(names.RETRIES, 0))
    inherited = trial.user_attrs.get(names.CONTINUED_FROM_STEP)
    last_step = max(trial.intermediate_values, default=None)
    progressed = last_step is not None and (inherited is None or last_step > inherited)
    if progressed:
        retries = 0  # a fresh allowance: only attempts in a row that made no progress count
    if not trial.params and names.HOST not in trial.user_attrs:
        log.warning(
            "trial %d: %s; not continued (it died before its params were set)", trial.number, reason
        )
        return False  # its sweeper died in the ask: nothing of it ran
    if retries >= max_retry:
        log.warning(
            "trial %d: %s; not continued (%d attempts in a row without progress, max_retry=%d)",
            trial.number,
            reason,
            retries,
            max_retry,
        )
        return False
    per_attempt = (*names.PER_ATTEMPT, names.WARM_START)  # queued once: the first
    attrs = {k: v for k, v in trial.user_attrs.items() if k not in per_attempt}
    attrs[names.RETRY_OF] = int(trial.user_attrs.get(names.RETRY_OF, trial.number))
    attrs[names.RETRY_REASON] = reason
    attrs[names.RETRIES] = retries + 1
    attrs[names.ATTEMPT] = int(trial.user_attrs.get(names.ATTEMPT, 1)) + 1
    attrs[names.CONTINUED_FROM_STEP] = last_step
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs=attrs,
            intermediate_values=dict(trial.intermediate_values),
        )
    )
    log.warning(
        "trial %d: %s; continued by a new trial (attempt %d%s)",
        trial.number,
        reason,
        attrs[names.ATTEMPT],
        f", after step {last_step}" if last_step is not None else ", from the start",
    )
    return True


class RetryStale:
    """Optuna's ``heartbeat_stale_trial_callback``: continue a stale trial."""

    def __init__(self, max_retry: int) -> None:
        self.max_retry = max_retry

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        requeue(study, trial, STALE, self.max_retry)
