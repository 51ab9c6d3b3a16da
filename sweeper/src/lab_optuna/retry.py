"""Re-queue the params of trials whose job died (stale heartbeat, cancelled, timed out).

The retry is a new WAITING trial with the same params; its lineage is in user attributes
(``retry_of``: the first trial's number, ``retry_reason``, ``retries``), so a dashboard or
``study_trials.csv`` shows it. At most ``max_retry`` retries per lineage.
"""

from __future__ import annotations

import logging

import optuna
from optuna.trial import FrozenTrial, TrialState

from . import user_attrs
from .outcomes import STALE

log = logging.getLogger(__name__)


def requeue(study: optuna.Study, trial: FrozenTrial, reason: str, max_retry: int) -> bool:
    """Enqueue ``trial``'s params again unless its lineage used ``max_retry``; True if so."""
    retries = int(trial.user_attrs.get(user_attrs.RETRIES, 0))
    if retries >= max_retry or not trial.params:
        log.warning(
            "trial %d: %s; not re-queued (%d retries, max_retry=%d)",
            trial.number,
            reason,
            retries,
            max_retry,
        )
        return False
    attrs = {k: v for k, v in trial.user_attrs.items() if k not in user_attrs.PER_ATTEMPT}
    attrs[user_attrs.RETRY_OF] = int(trial.user_attrs.get(user_attrs.RETRY_OF, trial.number))
    attrs[user_attrs.RETRY_REASON] = reason
    attrs[user_attrs.RETRIES] = retries + 1
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs=attrs,
        )
    )
    log.warning(
        "trial %d: %s; its params are re-queued (retry %d of %d)",
        trial.number,
        reason,
        retries + 1,
        max_retry,
    )
    return True


class RetryStale:
    """Optuna's ``heartbeat_stale_trial_callback``: re-queue a stale trial's params."""

    def __init__(self, max_retry: int) -> None:
        self.max_retry = max_retry

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        requeue(study, trial, STALE, self.max_retry)
