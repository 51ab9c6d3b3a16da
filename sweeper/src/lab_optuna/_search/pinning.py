"""Pinning: a later phase fixes an earlier study's best parameters, read from the storage.

The pins a study was run with are kept in its ``pinned`` user attribute, so pinning from
phase 2 also carries what phase 2 had pinned from phase 1 (phase 1 → phase 2 → final).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from lab_optuna import names
from lab_optuna._loop.console import show_value
from lab_optuna._storage.connect import make_storage, redact

log = logging.getLogger(__name__)


class PinError(RuntimeError):
    """The study cannot be pinned (missing, no completed trial, several objectives)."""


@dataclass
class Best:
    """What a later phase pins from study ``study``: its best trial's params with the pins
    that trial ran with, and the trial's value, number and user attributes."""

    study: str
    params: dict[str, Any]
    value: float
    number: int
    user_attrs: dict[str, Any]


def best_of(storage_url: str | None, study_name: str) -> Best:
    hint = f"run its sweep first (hydra.sweeper.study_name={study_name})"
    try:
        study = optuna.load_study(study_name=study_name, storage=make_storage(storage_url))
    except KeyError:
        raise PinError(f"no study {study_name!r} in {redact(storage_url)}: {hint}") from None
    if len(study.directions) > 1:
        raise PinError(f"study {study_name!r} has several objectives: no single best to pin")
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise PinError(
            f"study {study_name!r} in {redact(storage_url)} has no completed trial to pin: {hint}"
        )
    best = study.best_trial
    params = {**study.user_attrs.get(names.PINNED, {}), **best.params}
    return Best(study_name, params, float(best.value), best.number, dict(best.user_attrs))


def pins(
    storage_url: str | None,
    pin_from: str,
    pin_user_attrs: Mapping[str, str],
    taken: Iterable[str],
) -> dict[str, Any]:
    """The best params of study ``pin_from`` (with the pins it ran with, and the best
    trial's user attributes named by ``pin_user_attrs``), minus the ``taken`` keys (those
    this phase searches or sets, and ``pin_exclude``)."""
    best = best_of(storage_url, pin_from)
    params = dict(best.params)
    for key, attr in pin_user_attrs.items():
        if attr not in best.user_attrs:
            where = f"trial {best.number} of study {best.study!r}"
            raise PinError(
                f"hydra.sweeper.pin_user_attrs.{key}={attr}: {where} has no user attribute {attr!r}"
            )
        params[str(key)] = best.user_attrs[attr]
    taken = set(taken)
    pinned = {k: v for k, v in params.items() if k.lstrip("+") not in taken}
    log.info(
        "pinned from study %r (best trial %d, value %s): %s",
        best.study,
        best.number,
        show_value(best.value),
        ", ".join(f"{k}={v}" for k, v in pinned.items()) or "-",
    )
    return pinned
