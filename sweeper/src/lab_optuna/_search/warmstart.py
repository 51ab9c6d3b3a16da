"""Warm start: known points run first (``enqueue``), or another study's best (``enqueue_from``).

``enqueue: [{x: 1.0, y: 0}, {x: -2.5}]`` queues each dict with Optuna's public
``Study.enqueue_trial(params, skip_if_exists=True)``: the queued trials are the next ones the
loop asks for (they count within ``n_trials``), a dict may hold a subset of the searched keys
(the sampler fills the rest), and a point the study already holds (a resumed sweep) is not
queued again. Keys are the searched keys, dotted as in ``params`` (a nested dict
``{model: {lr: 0.01}}`` means ``model.lr``). Every value is checked against the search space
before any trial: an unknown key or a value outside its distribution is one line.

``enqueue_from: {study: NAME, top: K}`` queues the params (those this study searches, inside
its space) of study NAME's best K complete trials, read from the same storage.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any

import optuna
from omegaconf import DictConfig, ListConfig, OmegaConf
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from lab_optuna import names
from lab_optuna._keys.config import EnqueueFromConf
from lab_optuna._loop.verdicts import DUPLICATE
from lab_optuna._search import space as sp
from lab_optuna._storage.connect import make_storage, redact

log = logging.getLogger(__name__)


class EnqueueError(ValueError):
    """A bad ``enqueue``/``enqueue_from`` entry; one line naming it."""


def points(enqueue: Any, space: Mapping[str, BaseDistribution]) -> list[dict[str, Any]]:
    """The checked points of ``hydra.sweeper.enqueue`` (values in their distribution's type)."""
    if not enqueue:
        return []
    enqueue = _plain(enqueue)
    if not isinstance(enqueue, list):
        raise EnqueueError(
            f"hydra.sweeper.enqueue={enqueue!r}: a list of {{key: value}} dicts, "
            "e.g. [{x: 1.0, y: 0}]"
        )
    checked = []
    for i, point in enumerate(enqueue):
        where = f"hydra.sweeper.enqueue[{i}]"
        if not isinstance(point, dict) or not point:
            raise EnqueueError(f"{where}={point!r}: a non-empty {{key: value}} dict")
        flat = _flatten(point, space)
        checked.append(
            {
                _searched(k, space): checked_value(f"{where}.{k}", v, k, space)
                for k, v in flat.items()
            }
        )
    return checked


def checked_value(where: str, value: Any, key: str, space: Mapping[str, BaseDistribution]) -> Any:
    """``value`` in the type of ``space[key]``; EnqueueError when outside the space."""
    key = _searched(key, space)
    if key not in space:
        searched = ", ".join(space) or "none"
        raise EnqueueError(f"{where}: not a searched key (searched: {searched})")
    dist = space[key]
    outside = EnqueueError(f"{where}={value!r}: outside the search space {sp.describe(dist)}")
    if isinstance(dist, CategoricalDistribution):
        for choice in dist.choices:
            if value == choice and type(value) is type(choice) or _same_number(value, choice):
                return choice
        raise outside
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise outside
    if isinstance(dist, IntDistribution):
        if float(value) != int(value):
            raise outside
        value = int(value)
    else:
        value = float(value)
    assert isinstance(dist, (IntDistribution, FloatDistribution))
    if not dist.low <= value <= dist.high:
        raise outside
    if dist.step is not None and not dist.log:
        steps = (value - dist.low) / dist.step
        if not math.isclose(steps, round(steps), abs_tol=1e-8):
            raise outside
    return value


def queue(study: optuna.Study, pts: list[dict[str, Any]], source: str, storage: Any) -> int:
    """Enqueue ``pts`` (skipping points the study already holds); how many were queued.

    Optuna's ``skip_if_exists`` check and the enqueue are two steps, so two workers starting
    at the same moment may both queue a point. Each queued trial carries its point in the
    ``warm_start`` user attribute; after enqueueing, the lowest-numbered trial of a point is
    kept and any later WAITING one is claimed (``set_trial_state_values`` to RUNNING succeeds
    for one process only) and failed unrun, with ``duplicate_of`` naming the one kept.
    """
    queued = 0
    for point in pts:
        key = json.dumps(point, sort_keys=True)
        before = {t.number for t in _holders(study, key)}
        study.enqueue_trial(point, user_attrs={names.WARM_START: key}, skip_if_exists=True)
        kept = _drop_duplicates(study, storage, key)
        queued += kept is not None and kept not in before
    if pts:
        log.info(
            "warm start (%s): %d point(s) queued to run first, %d already in the study",
            source,
            queued,
            len(pts) - queued,
        )
    return queued


def _holders(study: optuna.Study, key: str) -> list[FrozenTrial]:
    """The trials queued for point ``key`` and not FAIL (a failed one's retry carries the
    point too)."""
    return [
        t
        for t in study.get_trials(deepcopy=False)
        if t.user_attrs.get(names.WARM_START) == key and t.state != TrialState.FAIL
    ]


def _drop_duplicates(study: optuna.Study, storage: Any, key: str) -> int | None:
    """Fail every WAITING trial of point ``key`` but the first; the number of the first."""
    holders = _holders(study, key)
    if not holders:
        return None
    first, *later = sorted(holders, key=lambda t: t.number)
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in later:
        number = trial.number
        if trial.state != TrialState.WAITING:
            continue  # already taken by a worker: it runs (as it would have before)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
        try:
            if not storage.set_trial_state_values(trial_id, TrialState.RUNNING):
                continue  # another process claimed it first
            storage.set_trial_user_attr(trial_id, names.DUPLICATE_OF, first.number)
            storage.set_trial_user_attr(trial_id, names.FAIL_REASON, DUPLICATE)
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # SQLite has no row lock: another process claimed and failed it first
        log.info(
            "warm start: trial %d duplicated trial %d's point; failed unrun", number, first.number
        )
    return first.number


def best_points(
    storage_url: str | None, node: EnqueueFromConf | None, space: Mapping[str, BaseDistribution]
) -> list[dict[str, Any]]:
    """``enqueue_from: {study, top}``: the best ``top`` complete trials' params of that study
    (best first, by its direction), restricted to this study's searched keys and space."""
    if node is None:
        return []
    name, top = node.study, node.top
    if not storage_url:
        raise EnqueueError(
            "hydra.sweeper.enqueue_from: needs a database storage (hydra.sweeper.storage) "
            "holding that study"
        )
    try:
        other = optuna.load_study(study_name=name, storage=make_storage(storage_url))
    except KeyError:
        raise EnqueueError(
            f"hydra.sweeper.enqueue_from.study={name}: no study {name!r} in {redact(storage_url)}"
        ) from None
    if len(other.directions) > 1:
        raise EnqueueError(
            f"hydra.sweeper.enqueue_from.study={name}: several objectives, no single best"
        )
    complete = [
        t
        for t in other.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value is not None and math.isfinite(t.value)
    ]
    maximize = other.direction == StudyDirection.MAXIMIZE
    complete.sort(key=lambda t: float(t.value), reverse=maximize)
    out = []
    for t in complete[:top]:
        point = {}
        for key, value in t.params.items():
            if key not in space:
                continue
            try:
                point[key] = checked_value(key, value, key, space)
            except EnqueueError as e:
                log.warning("enqueue_from %r trial %d: %s; left to the sampler", name, t.number, e)
        if point:
            out.append(point)
    if not complete:
        log.warning("enqueue_from: study %r has no complete trial; nothing queued", name)
    return out


def _searched(key: str, space: Mapping[str, BaseDistribution]) -> str:
    """The space's spelling of ``key`` (a key added with ``+key=...`` is ``+key`` there)."""
    return next((k for k in (key, f"+{key}", f"++{key}") if k in space), key)


def _plain(node: Any) -> Any:
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


def _flatten(point: Mapping[str, Any], space: Mapping[str, BaseDistribution]) -> dict[str, Any]:
    """``{model: {lr: 0.1}}`` → ``{"model.lr": 0.1}`` (a searched key is kept as is)."""
    flat: dict[str, Any] = {}
    for key, value in point.items():
        key = str(key)
        if isinstance(value, dict) and key not in space:
            for sub, v in _flatten(value, {}).items():
                flat[f"{key}.{sub}"] = v
        else:
            flat[key] = value
    return flat


def _same_number(value: Any, choice: Any) -> bool:
    numbers = (int, float)
    return (
        isinstance(value, numbers)
        and isinstance(choice, numbers)
        and not isinstance(value, bool)
        and not isinstance(choice, bool)
        and value == choice
    )
