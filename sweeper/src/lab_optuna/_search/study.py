"""The study a sweep adds trials to: its storage, sampler and pruner, created or loaded.

The sampler's randomness depends on (seed, trial number), not on process history.

A plain ``TPESampler(seed=s)`` restarts its random stream in every process, so a resumed
study (or a second worker) replays the start-up points of the first run. ``PerTrialSeed``
wraps any sampler config and, before each trial (Optuna's public ``before_trial`` hook),
builds a fresh sampler seeded from (seed, trial number): runs stay reproducible while every
trial gets its own draw. Samplers that read their position from the study (grid, QMC) are
left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from hydra.utils import instantiate
from omegaconf import OmegaConf
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, GridSampler, QMCSampler
from optuna.trial import FrozenTrial, TrialState

from lab_optuna._job.task import LIVE_STUDIES
from lab_optuna._keys.settings import Settings, SettingsError
from lab_optuna._loop.continuation import RetryStale
from lab_optuna._search import space as sp
from lab_optuna._storage.connect import make_storage
from lab_optuna._storage.urls import redact

log = logging.getLogger(__name__)

#: Trials that count towards the study's size (``max_total_trials``, the grid's points).
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


def open_study(settings: Settings, space: dict[str, BaseDistribution]) -> tuple[optuna.Study, Any]:
    """(study, storage): the study ``study_name`` in ``storage``, created if new."""
    if settings.storage:
        storage = make_storage(
            settings.storage,
            settings.heartbeat_interval,
            settings.grace_period,
            RetryStale(settings.max_retry),
            settings.storage_retry_s,
        )
    else:
        storage = optuna.storages.InMemoryStorage()
    sampler = _sampler(settings, space)
    pruner = instantiate(settings.pruner) if settings.pruner else optuna.pruners.NopPruner()
    try:
        study = optuna.create_study(
            study_name=settings.study_name,
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            directions=settings.directions,
            load_if_exists=True,
        )
    except ValueError as e:  # e.g. a stored study with other directions
        raise SettingsError(f"study {settings.study_name!r}: {e}") from None
    _check_directions(settings, study)
    if not settings.storage:  # in-process jobs find it here
        LIVE_STUDIES[study.study_name] = (study, storage)
    return study, storage


def _check_directions(settings: Settings, study: optuna.Study) -> None:
    """SettingsError (one line) when the study was created for other directions than
    ``hydra.sweeper.direction``: Optuna loads an existing study with its own directions and
    ignores the ones asked for, so the sweep would optimize the other way without a word."""
    stored = [d.name.lower() for d in study.directions]
    if stored == settings.directions:
        return
    where = redact(settings.storage) if settings.storage else "memory"
    created = stored[0] if len(stored) == 1 else f"[{', '.join(stored)}]"
    asked = (
        settings.directions[0]
        if len(settings.directions) == 1
        else f"[{', '.join(settings.directions)}]"
    )
    raise SettingsError(
        f"study {study.study_name!r} in {where} was created to {created}; "
        f"hydra.sweeper.direction={asked} differs (use another study_name, or the study's "
        "direction)"
    )


def _is_grid(settings: Settings) -> bool:
    return str(settings.sampler and settings.sampler.get("_target_")).endswith("GridSampler")


def _sampler(settings: Settings, space: dict[str, BaseDistribution]) -> optuna.samplers.BaseSampler:
    node = (
        OmegaConf.to_container(settings.sampler, resolve=True)
        if settings.sampler
        else {"_target_": "optuna.samplers.TPESampler"}
    )
    target = str(node.get("_target_", ""))
    seed = node.pop("seed", None)
    if target.endswith("GridSampler"):
        node["search_space"] = sp.grid(space)
    try:
        make = instantiate(node, _partial_=True, _convert_="all")
        return build_sampler(make, seed, settings.reseed_per_trial)
    except Exception as e:  # e.g. a key this sampler does not take
        raise SettingsError(f"hydra.sweeper.sampler ({target}): {str(e).splitlines()[0]}") from None


def trials_to_run(
    settings: Settings, study: optuna.Study, space: dict[str, BaseDistribution]
) -> int:
    """``n_trials``, capped for the grid sampler by the grid's points not yet run."""
    n = settings.n_trials
    if _is_grid(settings):
        left = sp.grid_size(sp.grid(space)) - len(study.get_trials(deepcopy=False, states=COUNTED))
        if left < n:
            log.info(
                "grid sampler: %d of the grid's points left to run (n_trials=%d)", max(left, 0), n
            )
        n = max(min(n, left), 0)
    return n


def room_left(settings: Settings, study: optuna.Study) -> int:
    """Trials the study may still add under ``max_total_trials`` (1 when unbounded)."""
    if not settings.max_total_trials:
        return 1
    return settings.max_total_trials - len(study.get_trials(deepcopy=False, states=COUNTED))


# ---------------------------------------------------------------- per-trial seeds
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
