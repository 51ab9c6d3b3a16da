"""Pinning: a later phase fixes an earlier study's best parameters, read from the storage.

The pins a study was run with are kept in its ``pinned`` user attribute, so pinning from
phase 2 also carries what phase 2 had pinned from phase 1 (phase 1 → phase 2 → final).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from .storage import make_storage, redact

PINNED_ATTR = "pinned"  # study user attribute: the pins this study was run with


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
    params = {**study.user_attrs.get(PINNED_ATTR, {}), **best.params}
    return Best(study_name, params, float(best.value), best.number, dict(best.user_attrs))
