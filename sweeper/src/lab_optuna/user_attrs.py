"""Names of the user attributes the sweeper writes (Optuna's ``user_attrs``), spelled once.

A dashboard, ``study_trials.csv`` (``user_attrs_<name>``) and a later phase read them.
"""

#: Trial: why it is FAIL (an exception, a non-finite objective, a dead job, an interrupt).
FAIL_REASON = "fail_reason"
#: Trial: ``host:pid`` of the process running its job (set once the job runs).
HOST = "host"
#: Retried trial: the number of the first trial of its lineage.
RETRY_OF = "retry_of"
#: Retried trial: how many times its lineage's params were re-queued.
RETRIES = "retries"
#: Retried trial: why the previous attempt died.
RETRY_REASON = "retry_reason"
#: Study: the pins it was run with (a later phase pinning from it pins them too).
PINNED = "pinned"

#: Trial attributes of one attempt (its job), not carried to a retry.
PER_ATTEMPT = (HOST, FAIL_REASON)
