"""Parameter importances of a finished phase, with Optuna's own evaluators.

Three evaluators, each over the study's COMPLETE trials, normalised to sum 1 per evaluator:

* ``ped_anova`` — Optuna's default (``PedAnovaImportanceEvaluator``): how much each parameter
  matters for reaching the top 10 % of trials; it also rates conditional parameters (phase 2's
  ``regularizer.coef``, set only for some regularizers);
* ``fanova`` — ``FanovaImportanceEvaluator``: the share of the objective's variance explained
  (random forest), over the parameters every complete trial has;
* ``mean_decrease_impurity`` — ``MeanDecreaseImpurityImportanceEvaluator``: the same forest's
  impurity decrease (cheap; what the project used on optuna 2.10).

``importances.csv`` is long: ``param, importance, evaluator, objective`` (``objective`` is the
index of the study's direction, 0 for a single-objective study; a multi-objective study gets
every evaluator once per objective). Rows come per objective, per evaluator in the order above,
most important first.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from lab_optuna.names import IMPORTANCE_COLUMNS as COLUMNS
from lab_optuna.names import IMPORTANCE_EVALUATORS

log = logging.getLogger(__name__)


def _importance() -> Any:
    """``optuna.importance``, imported only when importances are computed: it imports
    scikit-learn (for fANOVA), seconds at the end of every small sweep otherwise."""
    import optuna.importance

    return optuna.importance


_FACTORIES: dict[str, Callable[[int], Any]] = {
    "ped_anova": lambda seed: _importance().PedAnovaImportanceEvaluator(),
    "fanova": lambda seed: _importance().FanovaImportanceEvaluator(seed=seed),
    "mean_decrease_impurity": lambda seed: _importance().MeanDecreaseImpurityImportanceEvaluator(
        seed=seed
    ),
}
#: Evaluator name -> factory(seed), in ``config.IMPORTANCE_EVALUATORS``' order: the first is
#: Optuna's default and the report's main one.
EVALUATORS: dict[str, Callable[[int], Any]] = {n: _FACTORIES[n] for n in IMPORTANCE_EVALUATORS}
#: Fewer COMPLETE trials than this (with a finite value) give no importances.
MIN_TRIALS = 3


def _targets(study: optuna.Study, evaluator: str) -> list[Callable[[FrozenTrial], float] | None]:
    """One target per objective (None: Optuna's own, single objective).

    PED-ANOVA ranks an explicit target as lower-is-better, so maximised objectives are negated
    for it; the forests (fANOVA, MDI) explain variance and take the values as they are.
    """
    if len(study.directions) == 1:
        return [None]
    out: list[Callable[[FrozenTrial], float] | None] = []
    for i, direction in enumerate(study.directions):
        sign = -1.0 if evaluator == "ped_anova" and direction == StudyDirection.MAXIMIZE else 1.0
        out.append(lambda t, i=i, sign=sign: sign * t.values[i])
    return out


def _usable(study: optuna.Study) -> int:
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sum(1 for t in trials if t.values and all(math.isfinite(v) for v in t.values))


def param_importances(
    study: optuna.Study, seed: int = 0, evaluators: Sequence[str] | None = None
) -> pd.DataFrame:
    """Importances as rows of :data:`COLUMNS` (see the module doc), by ``evaluators`` (names of
    :data:`EVALUATORS`; None: all); an empty frame (with those columns) and a warning when the
    study has fewer than :data:`MIN_TRIALS` complete trials.

    An evaluator that fails (e.g. no parameter shared by all complete trials, which fANOVA and
    MDI need) is skipped with a warning; the others still count.
    """
    n = _usable(study)
    if n < MIN_TRIALS:
        log.warning(
            "parameter importances of study %s not computed: %d complete trial(s), "
            "at least %d needed",
            study.study_name,
            n,
            MIN_TRIALS,
        )
        return pd.DataFrame(columns=COLUMNS)
    frames = []
    chosen = EVALUATORS if evaluators is None else {n: EVALUATORS[n] for n in evaluators}
    for name, make in chosen.items():
        for objective, target in enumerate(_targets(study, name)):
            try:
                with warnings.catch_warnings():  # Optuna's notes on targets and tiny studies
                    warnings.simplefilter("ignore")
                    imp = _importance().get_param_importances(
                        study, evaluator=make(seed), target=target
                    )
            except (RuntimeError, ValueError, ImportError) as e:  # ImportError: the
                log.warning(  # forests need scikit-learn: lab-optuna-sweeper[importance]
                    "parameter importances (%s) of study %s not computed: %s",
                    name,
                    study.study_name,
                    e,
                )
                continue
            frames.append(
                pd.DataFrame(
                    {
                        "param": list(imp),
                        "importance": list(imp.values()),
                        "evaluator": name,
                        "objective": objective,
                    }
                )
            )
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    df = pd.concat(frames, ignore_index=True)[COLUMNS]
    order = {name: i for i, name in enumerate(EVALUATORS)}
    df = df.sort_values(
        ["objective", "evaluator", "importance"],
        key=lambda s: s.map(order) if s.name == "evaluator" else s,
        ascending=[True, True, False],
        kind="stable",
    )
    return df.reset_index(drop=True)


def save_importances(
    study: optuna.Study, path: Path, seed: int = 0, evaluators: Sequence[str] | None = None
) -> pd.DataFrame:
    """Write :func:`param_importances` to ``path`` (CSV) and log one line per parameter."""
    df = param_importances(study, seed=seed, evaluators=evaluators)
    df.to_csv(path, index=False)
    if df.empty:
        return df
    wide = df.pivot_table(
        index=["objective", "param"], columns="evaluator", values="importance", sort=False
    )
    for (objective, param), row in wide.iterrows():
        where = f"objective {objective} " if len(study.directions) > 1 else ""
        scores = "  ".join(
            f"{name} {row[name]:.3f}"
            for name in EVALUATORS
            if name in row.index and not pd.isna(row[name])
        )
        log.info("importance %s%-28s %s", where, param, scores)
    return df
