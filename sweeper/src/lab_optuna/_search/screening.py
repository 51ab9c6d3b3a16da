"""Which parameters a phase searches, chosen by a screening study's measured importances.

``params_from: {study: screen, take: top, count: 4}`` searches the 4 parameters the study
``screen`` found most important (Optuna's default importance evaluator over its complete
trials), each with the distribution it was screened over; ``take: rest`` searches the others
(pin the first phase's best with ``pin_from``). ``share: 0.8`` instead of ``count`` takes the
fewest top parameters whose importances sum to 80 %. Parameters missing from some screened
trials (conditional ones) are left to ``custom_search_space``.
"""

from __future__ import annotations

import logging

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import TrialState

from lab_optuna._keys.config import ParamsFromConf
from lab_optuna._search.pinning import PinError
from lab_optuna._storage.connect import make_storage, redact

log = logging.getLogger(__name__)
MIN_TRIALS = 3


def select(storage_url: str | None, sel: ParamsFromConf) -> dict[str, BaseDistribution]:
    """The distributions this phase searches, picked from the screening study."""
    try:
        study = optuna.load_study(study_name=sel.study, storage=make_storage(storage_url))
    except KeyError:
        raise PinError(
            f"no study {sel.study!r} in {redact(storage_url)}: run its sweep "
            f"first (hydra.sweeper.study_name={sel.study})"
        ) from None
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < MIN_TRIALS:
        raise PinError(
            f"study {sel.study!r} has {len(complete)} complete trial(s): at least "
            f"{MIN_TRIALS} are needed to rank its parameters"
        )
    importances = optuna.importance.get_param_importances(study)
    ranked = list(importances)
    if sel.count is not None:
        n_top = min(sel.count, len(ranked))
    else:
        total, n_top = 0.0, 0
        while n_top < len(ranked) and total < float(sel.share) - 1e-9:
            total += importances[ranked[n_top]]
            n_top += 1
    chosen = ranked[:n_top] if sel.take == "top" else ranked[n_top:]
    dists = {name: complete[-1].distributions[name] for name in chosen}
    log.info(
        "params from study %r (%s %s of %s by importance): %s",
        sel.study,
        sel.take,
        n_top,
        len(ranked),
        ", ".join(f"{k} ({importances[k]:.2f})" for k in chosen) or "-",
    )
    return dists
