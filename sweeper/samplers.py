"""A TPE sampler whose randomness depends on (seed, trial number), not on process history.

A plain ``TPESampler(seed=s)`` restarts its random stream in every process, so resuming a
study (or a second worker) replays the start-up points of the first run. Reseeding from the
trial number keeps runs reproducible while every trial gets its own random draw.
"""

from __future__ import annotations

import numpy as np
from optuna.samplers import TPESampler


class TrialSeededTPESampler(TPESampler):
    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self._base_seed = seed

    def infer_relative_search_space(self, study, trial):
        # Called once per trial when it is created, before any parameter is sampled.
        if self._base_seed is not None:
            seed = (self._base_seed * 1_000_003 + trial.number) % 2**32
            self._rng = np.random.RandomState(seed)
            self._random_sampler._rng = np.random.RandomState(seed)
        return super().infer_relative_search_space(study, trial)
