"""Parameter importances of a finished phase (MeanDecreaseImpurity: fANOVA in optuna 2.10
is broken with numpy 2)."""

from __future__ import annotations

import logging
from pathlib import Path

import optuna
import pandas as pd
from optuna.trial import TrialState

log = logging.getLogger(__name__)


def param_importances(study: optuna.Study, seed: int = 0) -> pd.DataFrame:
    """``param, importance`` rows (sum 1), most important first; empty if too few trials."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return pd.DataFrame(columns=["param", "importance"])
    evaluator = optuna.importance.MeanDecreaseImpurityImportanceEvaluator(seed=seed)
    try:
        imp = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (RuntimeError, ValueError) as e:  # e.g. no parameter shared by all trials
        log.warning("parameter importances not computed: %s", e)
        return pd.DataFrame(columns=["param", "importance"])
    return pd.DataFrame({"param": list(imp), "importance": list(imp.values())})


def save_importances(study: optuna.Study, path: Path) -> pd.DataFrame:
    df = param_importances(study)
    df.to_csv(path, index=False)
    for row in df.itertuples():
        log.info("importance %-28s %.3f", row.param, row.importance)
    return df
