"""Phase 2 pins phase 1's best parameters, read from the study storage."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from .storage import make_storage, redact


class PinError(RuntimeError):
    """Phase 1 cannot be pinned (missing study or no completed trial)."""


def best_params(storage_url: str | None, study_name: str) -> tuple[dict[str, Any], float, int]:
    """Best trial's params, value and number of study ``study_name``."""
    hint = f"run `python train.py -m hparams_search={study_name}` first"
    try:
        study = optuna.load_study(study_name=study_name, storage=make_storage(storage_url))
    except KeyError:
        raise PinError(f"no study {study_name!r} in {redact(storage_url)}: {hint}") from None
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise PinError(
            f"study {study_name!r} in {redact(storage_url)} has no completed trial to pin: {hint}"
        )
    best = study.best_trial
    return dict(best.params), float(best.value), best.number
