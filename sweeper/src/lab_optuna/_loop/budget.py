"""When a sweep stops starting trials before its ``n_trials``: a time budget and a terminator.

``timeout`` (seconds) starts when this invocation's slot loop starts, not at the study's
first trial: a resumed study gets a fresh budget, and N workers started together on one
storage end together (the same reading as Optuna's own ``study.optimize(timeout=...)``).
After it no new trial starts; running trials finish, or, with ``timeout_prune``, are pruned
at their next ``should_prune()``: the sweeper writes the deadline (epoch seconds) into each
trial's ``deadline`` user attribute, which the job (``trial.JobTrial``) reads.

The terminator (``terminator: {patience: N, min_delta: D}``) stops starting trials once the
study's best value has not improved by more than D over N trials completed since this
invocation started (by any worker). Optuna's ``optuna.terminator`` is not offered: it is
deprecated since Optuna 4.9 (removal in 6.0), its regret bound needs torch and scipy (this
sweeper imports no torch), and its default error evaluator needs cross-validation scores.

``Ended`` says why the loop stopped: ``n_trials``, ``grid``, ``max_total_trials``,
``timeout`` or ``terminator``; ``optimization_results.yaml`` and the console say it.
"""

from __future__ import annotations

import logging
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import TrialState

from lab_optuna import names
from lab_optuna._keys.config import TerminatorConf

log = logging.getLogger(__name__)


@dataclass
class Ended:
    """Why this invocation's loop stopped, and when (seconds since it started)."""

    reason: str = "n_trials"
    elapsed_s: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)

    def results(self) -> dict[str, Any]:
        """The keys ``optimization_results.yaml`` gets."""
        return {"ended": self.reason, "elapsed_s": round(self.elapsed_s, 1), **self.detail}


@dataclass
class Stagnation:
    """Best-value stagnation: no improvement > ``min_delta`` over ``patience`` trials."""

    patience: int
    min_delta: float = 0.0

    def check(self, study: optuna.Study, since: float) -> dict[str, Any] | None:
        """The numbers when it fires (best value, trials since improvement, threshold)."""
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        trials = sorted(trials, key=lambda t: (t.datetime_complete is None, t.datetime_complete))
        sign = 1.0 if study.direction == StudyDirection.MINIMIZE else -1.0
        best: float | None = None
        since_improvement = 0
        for t in trials:
            value = sign * float(t.value)
            if best is None or value < best - self.min_delta:
                since_improvement = 0
            elif t.datetime_complete is not None and t.datetime_complete.timestamp() >= since:
                since_improvement += 1  # only this invocation's trials count: fresh patience
            best = value if best is None else min(best, value)
        if best is None or since_improvement < self.patience:
            return None
        return {
            "best_value": sign * best,
            "trials_since_improvement": since_improvement,
            "patience": self.patience,
            "min_delta": self.min_delta,
        }


def make_terminator(node: TerminatorConf | None) -> Stagnation | None:
    """The terminator of a checked ``hydra.sweeper.terminator`` (None: off)."""
    return None if node is None else Stagnation(node.patience, node.min_delta)


@dataclass
class Budget:
    """This invocation's time budget and terminator; ``started`` is epoch seconds."""

    timeout: float | None = None
    prune: bool = False
    terminator: Stagnation | None = None
    started: float = field(default_factory=time.time)

    @classmethod
    def of(cls, timeout: float | None, prune: bool, terminator: Any) -> Budget:
        return cls(float(timeout) if timeout else None, bool(prune), make_terminator(terminator))

    @property
    def deadline(self) -> float | None:
        return None if self.timeout is None else self.started + self.timeout

    def elapsed(self) -> float:
        return time.time() - self.started

    def mark(self, trial: optuna.Trial) -> None:
        """With ``timeout_prune``, tell the trial's job the deadline (a user attribute)."""
        if self.prune and self.deadline is not None:
            trial.set_user_attr(names.DEADLINE, self.deadline)

    def stop(self, study: optuna.Study, running: int) -> Ended | None:
        """Why no new trial may start now (logged once), or None."""
        if self.deadline is not None and time.time() >= self.deadline:
            then = "are pruned at their next report" if self.prune else "finish"
            log.info(
                "time budget: timeout=%gs reached after %.1f s; no new trial starts "
                "(%d running trial(s) %s)",
                self.timeout,
                self.elapsed(),
                running,
                then,
            )
            stopped = {"timeout": self.timeout, "no_new_trial_after_s": round(self.elapsed(), 1)}
            return Ended("timeout", self.elapsed(), stopped)
        if self.terminator is not None:
            numbers = self.terminator.check(study, self.started)
            if numbers is not None:
                shown = ", ".join(f"{k} {_show(v)}" for k, v in numbers.items())
                log.info("terminator: %s; no new trial starts", shown)
                return Ended("terminator", self.elapsed(), {"terminator": numbers})
        return None


#: Job side: each trial's deadline, read once from its user attributes.
_DEADLINES: weakref.WeakKeyDictionary[optuna.trial.Trial, float | None] = (
    weakref.WeakKeyDictionary()
)


def past_deadline(trial: optuna.trial.Trial) -> bool:
    """Job side: the sweep's ``timeout_prune`` deadline has passed for this trial."""
    if trial not in _DEADLINES:
        deadline = trial.user_attrs.get(names.DEADLINE)
        _DEADLINES[trial] = None if deadline is None else float(deadline)
    deadline = _DEADLINES[trial]
    if deadline is None or time.time() < deadline:
        return False
    log.info("trial %d: past the sweep's deadline (timeout_prune): pruned", trial.number)
    return True


def _show(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
