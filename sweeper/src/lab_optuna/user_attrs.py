"""Names of the user attributes the sweeper writes (Optuna's ``user_attrs``), spelled once.

A dashboard, ``study_trials.csv`` (``user_attrs_<name>``) and a later phase read them.
"""

#: Trial: why it is FAIL (an exception, a non-finite objective, a dead job, an interrupt).
FAIL_REASON = "fail_reason"
#: Trial: ``host:pid`` of the process running its job (set once the job runs).
HOST = "host"
#: Trial: ``host:pid`` of the sweeper that asked it, written right after its first beat: a
#: RUNNING trial without it (nor a beat) whose sweeper died right after ``ask`` goes stale.
SWEEPER = "sweeper"
#: Trial: ``time.time()`` of its job's last beat (journal storages; databases keep their own).
BEAT = "heartbeat_at"
#: Retried trial: the number of the first trial of its lineage.
RETRY_OF = "retry_of"
#: Retried trial: attempts in a row of its lineage that made no progress (max_retry caps it).
RETRIES = "retries"
#: Retried trial: which attempt of its lineage it is (the first trial is attempt 1).
ATTEMPT = "attempt"
#: Retried trial: why the previous attempt died.
RETRY_REASON = "retry_reason"
#: Retried trial: the last step the previous attempt reported (its values are inherited).
CONTINUED_FROM_STEP = "continued_from_step"
#: Trial: the folder every attempt of its lineage saves its state in (``checkpoint_dir()``).
CHECKPOINT_DIR = "checkpoint_dir"
#: Trial: the slot index it ran in (with ``hydra.sweeper.slot_overrides``).
SLOT = "slot"
#: Trial: ``{key: value}`` its slot added to its overrides.
SLOT_OVERRIDES = "slot_overrides"
#: Study: the pins it was run with (a later phase pinning from it pins them too).
PINNED = "pinned"
#: Trial: the warm-start point it was queued for (``enqueue``/``enqueue_from``), as JSON.
WARM_START = "warm_start"
#: Trial: FAIL without running: the number of the trial that runs the same warm-start point.
DUPLICATE_OF = "duplicate_of"
#: Trial: with ``timeout_prune``, the sweep's deadline (epoch seconds): pruned after it.
DEADLINE = "deadline"

#: Trial attributes of one attempt (its job), not carried to a retry.
PER_ATTEMPT = (SWEEPER, HOST, FAIL_REASON, BEAT, DEADLINE, SLOT, SLOT_OVERRIDES)
