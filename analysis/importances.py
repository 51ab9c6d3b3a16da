"""A sweep's ``importances.csv`` (written by the sweeper) as two tables.

The file's columns and its evaluators (names and order, the main one first) are the
sweeper's (``lab_optuna.names.IMPORTANCE_COLUMNS``, ``IMPORTANCE_EVALUATORS``); files
written before it named evaluators have ``param, importance`` only and read as one
evaluator, ``importance``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.readers import read_csv
from lab_optuna.names import IMPORTANCE_COLUMNS, IMPORTANCE_EVALUATORS

PARAM, IMPORTANCE, EVALUATOR, OBJECTIVE = IMPORTANCE_COLUMNS


def _evaluators(found: pd.Series) -> list[str]:
    """The evaluators in ``found``: the sweeper's in its order, then any other in file order."""
    present = list(dict.fromkeys(found))
    return [e for e in IMPORTANCE_EVALUATORS if e in present] + [
        e for e in present if e not in IMPORTANCE_EVALUATORS
    ]


def read_importances(path: Path) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """``(main, table)`` from an ``importances.csv``: ``param, importance`` of the main
    evaluator (objective 0), most important first; and ``param`` (with ``objective`` before it
    when there are several) then one column per evaluator. None, None when the file is
    missing, empty or has no ``param, importance`` columns."""
    imp = read_csv(path)
    if imp is None or imp.empty or not {PARAM, IMPORTANCE} <= set(imp.columns):
        return None, None
    imp = imp.copy()
    imp[IMPORTANCE] = pd.to_numeric(imp[IMPORTANCE], errors="coerce")
    if EVALUATOR not in imp.columns:
        imp[EVALUATOR] = IMPORTANCE
    imp[EVALUATOR] = imp[EVALUATOR].astype(str)
    objective = pd.to_numeric(imp.get(OBJECTIVE, 0), errors="coerce")
    imp[OBJECTIVE] = pd.Series(objective, index=imp.index).fillna(0).astype(int)
    evaluators = _evaluators(imp[EVALUATOR])
    first = imp[(imp[EVALUATOR] == evaluators[0]) & (imp[OBJECTIVE] == imp[OBJECTIVE].min())]
    main = first[[PARAM, IMPORTANCE]].sort_values(IMPORTANCE, ascending=False, ignore_index=True)
    keys = [OBJECTIVE, PARAM] if imp[OBJECTIVE].nunique() > 1 else [PARAM]
    wide = imp.pivot_table(index=keys, columns=EVALUATOR, values=IMPORTANCE, sort=False)
    wide = wide.reindex(columns=evaluators).reset_index()
    wide.columns.name = None
    wide = wide.sort_values(
        [*keys[:-1], evaluators[0]], ascending=[True] * (len(keys) - 1) + [False], ignore_index=True
    )
    return main, wide
