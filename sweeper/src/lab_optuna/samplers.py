"""Samplers whose randomness depends on (seed, trial number), not on process history.

A plain ``TPESampler(seed=s)`` restarts its random stream in every process, so a resumed
study (or a second worker) replays the start-up points of the first run. ``PerTrialSeed``
wraps any sampler config and, before each trial (Optuna's public ``before_trial`` hook),
builds a fresh sampler seeded from (seed, trial number): runs stay reproducible while every
trial gets its own draw. Samplers that read their position from the study (grid, QMC) are
left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, GridSampler, QMCSampler
from optuna.trial import FrozenTrial, TrialState

_STATELESS = (GridSampler, QMCSampler)


def trial_seed(seed: int, number: int) -> int:
    return (int(seed) * 1_000_003 + int(number)) % 2**32


class PerTrialSeed(BaseSampler):
    """``make(seed)`` → a sampler; a new one per trial, seeded from (seed, trial number)."""

    def __init__(self, make: Callable[[int | None], BaseSampler], seed: int) -> None:
        self._make, self._seed = make, int(seed)
        self.inner = make(self._seed)

    def __str__(self) -> str:
        return f"{type(self.inner).__name__} (seed {self._seed}, reseeded per trial)"

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.inner = self._make(trial_seed(self._seed, trial.number))
        self.inner.before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial):
        return self.inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space: dict[str, BaseDistribution]):
        return self.inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name: str, param_distribution):
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state: TrialState, values: Sequence[float] | None):
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()


def build_sampler(make: Callable[..., BaseSampler], seed: Any, per_trial: bool) -> BaseSampler:
    """The sampler of ``make`` (a partial taking ``seed``), reseeded per trial if asked."""
    sampler = make(seed=seed)
    if not per_trial or seed is None or isinstance(sampler, _STATELESS):
        return sampler
    return PerTrialSeed(lambda s: make(seed=s), seed)
