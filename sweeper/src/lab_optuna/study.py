"""The study a sweep adds trials to: its storage, sampler and pruner, created or loaded."""

from __future__ import annotations

import logging
from typing import Any

import optuna
from hydra.utils import instantiate
from omegaconf import OmegaConf
from optuna.distributions import BaseDistribution
from optuna.trial import TrialState

from . import space as sp
from .retry import RetryStale
from .samplers import build_sampler
from .settings import Settings, SettingsError
from .storage import make_storage
from .trial import LIVE_STUDIES
from .urls import redact

log = logging.getLogger(__name__)

#: Trials that count towards the study's size (``max_total_trials``, the grid's points).
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


def open_study(s: Settings, space: dict[str, BaseDistribution]) -> tuple[optuna.Study, Any]:
    """(study, storage): the study ``s.study_name`` in ``s.storage``, created if new."""
    if s.storage:
        storage = make_storage(
            s.storage,
            s.heartbeat_interval,
            s.grace_period,
            RetryStale(s.max_retry),
            s.storage_retry_s,
        )
    else:
        storage = optuna.storages.InMemoryStorage()
    sampler = _sampler(s, space)
    pruner = instantiate(s.pruner) if s.pruner else optuna.pruners.NopPruner()
    try:
        study = optuna.create_study(
            study_name=s.study_name,
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            directions=s.directions,
            load_if_exists=True,
        )
    except ValueError as e:  # e.g. a stored study with other directions
        raise SettingsError(f"study {s.study_name!r}: {e}") from None
    _check_directions(s, study)
    if not s.storage:  # in-process jobs find it here
        LIVE_STUDIES[study.study_name] = (study, storage)
    return study, storage


def _check_directions(s: Settings, study: optuna.Study) -> None:
    """SettingsError (one line) when the study was created for other directions than
    ``hydra.sweeper.direction``: Optuna loads an existing study with its own directions and
    ignores the ones asked for, so the sweep would optimize the other way without a word."""
    stored = [d.name.lower() for d in study.directions]
    if stored == s.directions:
        return
    where = redact(s.storage) if s.storage else "memory"
    created = stored[0] if len(stored) == 1 else f"[{', '.join(stored)}]"
    asked = s.directions[0] if len(s.directions) == 1 else f"[{', '.join(s.directions)}]"
    raise SettingsError(
        f"study {study.study_name!r} in {where} was created to {created}; "
        f"hydra.sweeper.direction={asked} differs (use another study_name, or the study's "
        "direction)"
    )


def _is_grid(s: Settings) -> bool:
    return str(s.sampler and s.sampler.get("_target_")).endswith("GridSampler")


def _sampler(s: Settings, space: dict[str, BaseDistribution]) -> optuna.samplers.BaseSampler:
    node = (
        OmegaConf.to_container(s.sampler, resolve=True)
        if s.sampler
        else {"_target_": "optuna.samplers.TPESampler"}
    )
    target = str(node.get("_target_", ""))
    seed = node.pop("seed", None)
    if target.endswith("GridSampler"):
        node["search_space"] = sp.grid(space)
    try:
        make = instantiate(node, _partial_=True, _convert_="all")
        return build_sampler(make, seed, s.reseed_per_trial)
    except Exception as e:  # e.g. a key this sampler does not take
        raise SettingsError(f"hydra.sweeper.sampler ({target}): {str(e).splitlines()[0]}") from None


def trials_to_run(s: Settings, study: optuna.Study, space: dict[str, BaseDistribution]) -> int:
    """``n_trials``, capped for the grid sampler by the grid's points not yet run."""
    n = s.n_trials
    if _is_grid(s):
        left = sp.grid_size(sp.grid(space)) - len(study.get_trials(deepcopy=False, states=COUNTED))
        if left < n:
            log.info(
                "grid sampler: %d of the grid's points left to run (n_trials=%d)", max(left, 0), n
            )
        n = max(min(n, left), 0)
    return n


def room_left(s: Settings, study: optuna.Study) -> int:
    """Trials the study may still add under ``max_total_trials`` (1 when unbounded)."""
    if not s.max_total_trials:
        return 1
    return s.max_total_trials - len(study.get_trials(deepcopy=False, states=COUNTED))
