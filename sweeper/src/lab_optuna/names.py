"""The names a sweep writes, spelled once: its files, its trials' user attributes, the
columns of ``importances.csv`` and the words a summary counts trial states under.

Public: the sweeper writes with these and any program reading a sweep (the lab's
``analysis``, the benchmarks, a dashboard user) reads with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

# ---------------------------------------------------------------- files
#: A job's record in its output folder: which trial it ran, where, how it ended.
TRIAL_JSON = "trial.json"
#: In a job's output folder: where every attempt of its trial saves its state (first attempt).
CHECKPOINT_SUBDIR = "checkpoint"
#: In the sweep folder: the best params/value (hydra-optuna-sweeper's file) and why it ended.
RESULTS_YAML = "optimization_results.yaml"
#: In the sweep folder: ``study.trials_dataframe()`` (``params_<name>``, ``user_attrs_<name>``).
TRIALS_CSV = "study_trials.csv"
#: In the sweep folder: the parameters' importances, rows of :data:`IMPORTANCE_COLUMNS`.
IMPORTANCES_CSV = "importances.csv"
#: In the sweep folder of a phase that pins: what it pinned.
PINNED_YAML = "pinned.yaml"

# ---------------------------------------------------------------- importances
#: Optuna's importance evaluators the sweeper knows (``importances``), the report's main first.
IMPORTANCE_EVALUATORS = ("ped_anova", "fanova", "mean_decrease_impurity")
#: The columns of ``importances.csv``.
IMPORTANCE_COLUMNS = ["param", "importance", "evaluator", "objective"]

# ---------------------------------------------------------------- user attributes
# Optuna's ``user_attrs``: a dashboard, study_trials.csv (``user_attrs_<name>``) and a later
# phase read them.

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


# ---------------------------------------------------------------- counting trials
#: The word each trial state (its name) is counted under in a summary (the sweep's last line,
#: the benchmarks' JSON).
COUNTED_AS: dict[str, str] = {
    "COMPLETE": "complete",
    "PRUNED": "pruned",
    "FAIL": "failed",
    "RUNNING": "running",
}


def state_counts(trials: Sequence[FrozenTrial]) -> dict[str, int]:
    """``{"complete": n, "pruned": n, "failed": n, "running": n}`` of ``trials``."""
    counts = dict.fromkeys(COUNTED_AS.values(), 0)
    for trial in trials:
        if trial.state.name in COUNTED_AS:
            counts[COUNTED_AS[trial.state.name]] += 1
    return counts
