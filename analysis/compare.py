"""Derived tables: ranking, per-choice comparisons, early stopping, parameter statistics."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from optuna.trial import TrialState

from analysis.columns import param_columns
from analysis.trial_states import trial_state
from lenet_lab import record
from lenet_lab.groups import GROUPS
from lenet_lab.record import FINISHED

OUTCOME_ORDER: tuple[TrialState, ...] = (
    TrialState.COMPLETE,
    TrialState.PRUNED,
    TrialState.FAIL,
    TrialState.RUNNING,
)
STAT_PREFIXES: tuple[str, ...] = ("param_", "feat_")


def finished(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials that ran to their normal end and have an objective value."""
    return trials[trials[record.STATUS].isin(FINISHED) & trials[record.BEST_VAL_ACC].notna()]


def ranked(trials: pd.DataFrame, top: int | None = None) -> pd.DataFrame:
    """Trials sorted by best_val_acc (finished ones; all valued ones if none finished)."""
    pool = finished(trials)
    if pool.empty:
        pool = trials[trials[record.BEST_VAL_ACC].notna()]
    out = pool.sort_values(
        [record.BEST_VAL_ACC, record.WALL_TIME_S], ascending=[False, True], kind="stable"
    )
    return out if top is None else out.head(top)


def best_index(trials: pd.DataFrame) -> Any | None:
    """Index label of the best trial, or None when no trial has a value."""
    top = ranked(trials, 1)
    return None if top.empty else top.index[0]


def outcome_counts(trials: pd.DataFrame) -> dict[str, int]:
    """Trials per Optuna state (``complete``, ``pruned``, ``fail``, ``running``)."""
    outcomes = trials[record.STATUS].map(trial_state)  # any other word counts as FAIL
    return {k.name.lower(): int((outcomes == k).sum()) for k in OUTCOME_ORDER}


def varied_columns(trials: pd.DataFrame) -> list[str]:
    """Parameter columns taking at least two distinct values."""
    return [c for c in param_columns(trials) if trials[c].dropna().nunique() >= 2]


def constant_params(trials: pd.DataFrame) -> dict[str, Any]:
    """Parameter columns with exactly one value across all trials that set them."""
    out = {}
    for col in param_columns(trials):
        values = trials[col].dropna().unique()
        if len(values) == 1:
            out[col] = values[0]
    return out


def _is_numeric(series: pd.Series) -> bool:
    values = series.dropna()
    return bool(len(values)) and all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
        for v in values
    )


# Presets that bundle many settings: the `study` column already tells the phases apart.
NOT_COMPARED = {"hparams_search"}


def comparable_columns(trials: pd.DataFrame, max_levels: int = 12) -> list[str]:
    """Columns worth a per-choice comparison: varied groups and other discrete parameters.

    Known groups (optimizer, regularizer, …) and non-numeric parameters qualify with 2 to
    ``max_levels`` distinct values; numeric ones only when values repeat (grid-like), so a
    continuous Optuna learning rate is not split into one "group" per trial.
    """
    out = []
    for col in varied_columns(trials):
        if col in NOT_COMPARED:
            continue
        values = trials[col].dropna()
        levels = values.nunique()
        if levels > max_levels:
            continue
        if col in GROUPS or not _is_numeric(values) or levels <= len(values) / 2:
            out.append(col)
    return out


def comparisons_by_study(trials: pd.DataFrame) -> list[tuple[Any, str, pd.DataFrame]]:
    """``(study, column, table)`` for every comparable column *within* each study.

    A choice is only compared among trials of one study, where the other parameters were
    searched or pinned alike: phase 1's random learning rates never meet phase 2's pinned
    best in one mean.
    """
    out = []
    for study, sub in trials.groupby("study", sort=False, dropna=False):
        if finished(sub).empty:
            continue
        for column in comparable_columns(sub):
            out.append((study, column, compare_by(sub, column)))
    return out


def compare_by(trials: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per-choice table over finished trials, best mean first.

    Columns: ``n`` (finished trials), ``mean_best_val_acc``, ``max_best_val_acc``,
    ``mean_best_epoch``, ``mean_epochs_run``, ``mean_final_gap`` and ``n_other`` (trials with
    that choice that did not finish normally). Trials of several studies are never pooled:
    the index is then ``(study, choice)``, each study's choices best first.
    """
    if trials["study"].nunique(dropna=False) > 1:
        parts = {
            study: compare_by(sub, column)
            for study, sub in trials.groupby("study", sort=False, dropna=False)
            if sub[column].notna().any()
        }
        return pd.concat(parts, names=["study", column])
    ok = finished(trials)
    table = ok.groupby(column, sort=False, dropna=True).agg(
        n=(record.BEST_VAL_ACC, "size"),
        mean_best_val_acc=(record.BEST_VAL_ACC, "mean"),
        max_best_val_acc=(record.BEST_VAL_ACC, "max"),
        mean_best_epoch=(record.BEST_EPOCH, lambda s: s.astype(float).mean()),
        mean_epochs_run=(record.EPOCHS_RUN, lambda s: s.astype(float).mean()),
        mean_final_gap=("final_gap", "mean"),
    )
    rest = trials.loc[~trials.index.isin(ok.index)]
    other = rest.groupby(column, sort=False, dropna=True).size()
    table = table.reindex(table.index.union(other.index, sort=False))
    table["n"] = table["n"].fillna(0).astype(int)
    table["n_other"] = other.reindex(table.index).fillna(0).astype(int)
    table.index.name = column
    return table.sort_values("mean_best_val_acc", ascending=False, na_position="last")


def early_stopping_summary(trials: pd.DataFrame) -> dict[str, Any]:
    """Epochs run vs budget and, when both kinds exist, stopped-early vs full-length runs."""
    ran = trials[trials[record.EPOCHS_RUN].notna()]
    out: dict[str, Any] = {"n": len(ran)}
    if ran.empty:
        return out
    budgets = sorted(int(b) for b in ran[record.MAX_EPOCHS].dropna().unique())
    out["budgets"] = budgets
    out["mean_epochs_run"] = float(ran[record.EPOCHS_RUN].astype(float).mean())
    with_budget = ran[ran[record.MAX_EPOCHS].notna() & (ran[record.MAX_EPOCHS] > 0)]
    if not with_budget.empty:
        frac = with_budget[record.EPOCHS_RUN].astype(float) / with_budget[record.MAX_EPOCHS].astype(
            float
        )
        out["mean_budget_fraction"] = float(frac.mean())
    stopped = trials[record.STOPPED_EARLY].fillna(False).astype(bool)
    out["n_stopped_early"] = int(stopped.sum())
    ok = finished(trials)
    flag = ok[record.STOPPED_EARLY].fillna(False).astype(bool)
    if flag.any() and (~flag).any():
        table = (
            ok.assign(stopped_early=flag)
            .groupby(record.STOPPED_EARLY)
            .agg(
                n=(record.BEST_VAL_ACC, "size"),
                mean_best_val_acc=(record.BEST_VAL_ACC, "mean"),
                mean_epochs_run=(record.EPOCHS_RUN, lambda s: s.astype(float).mean()),
                mean_wall_time_s=(record.WALL_TIME_S, "mean"),
            )
        )
        out["table"] = table
        out["acc_delta"] = float(
            table.loc[True, "mean_best_val_acc"] - table.loc[False, "mean_best_val_acc"]
        )
    return out


def lr_varying_keys(epochs: pd.DataFrame) -> list[tuple[str, str]]:
    """(sweep_dir, job) of runs whose learning rate changes between epochs."""
    if epochs.empty or "lr" not in epochs.columns:
        return []
    lr = epochs[np.isfinite(epochs["lr"].astype(float))]
    counts = lr.groupby(["sweep_dir", "job"], sort=False)["lr"].nunique()
    return [key for key, n in counts.items() if n >= 2]


def run_epochs(epochs: pd.DataFrame, sweep_dir: Any, job: Any) -> pd.DataFrame:
    """The metrics rows of one run, sorted by epoch."""
    if epochs.empty:
        return epochs
    mask = (epochs["sweep_dir"] == sweep_dir) & (epochs["job"] == job)
    return epochs[mask].sort_values("epoch")


def stats_summary(run: pd.DataFrame) -> pd.DataFrame:
    """First/last epoch values of the ``param_*``/``feat_*`` columns of one run."""
    cols = [c for c in run.columns if c.startswith(STAT_PREFIXES)]
    rows = []
    for col in cols:
        values = run[["epoch", col]].dropna()
        if values.empty:
            continue
        first, last = float(values[col].iloc[0]), float(values[col].iloc[-1])
        rows.append(
            {
                "stat": col,
                "first_epoch": int(values["epoch"].iloc[0]),
                "first": first,
                "last_epoch": int(values["epoch"].iloc[-1]),
                "last": last,
                "change": last - first if math.isfinite(last - first) else float("nan"),
            }
        )
    return pd.DataFrame(
        rows, columns=["stat", "first_epoch", "first", "last_epoch", "last", "change"]
    )


def approx_importances(trials: pd.DataFrame, params: list[str]) -> pd.DataFrame:
    """Fallback importances (no importances.csv): share of objective variance explained.

    For each parameter the correlation ratio (eta2) of best_val_acc over its values —
    categorical values as groups, numeric ones in up to 5 quantile bins — normalised to sum 1.
    """
    ok = finished(trials)
    y = ok[record.BEST_VAL_ACC].astype(float)
    total = float(((y - y.mean()) ** 2).sum())
    scores: dict[str, float] = {}
    for col in params:
        x = ok[col]
        mask = x.notna()
        if mask.sum() < 3 or x[mask].nunique() < 2 or total <= 0:
            continue
        groups = x[mask]
        if _is_numeric(groups) and groups.nunique() > 5:
            groups = pd.qcut(groups.astype(float).rank(method="first"), 5, labels=False)
        yy = y[mask]
        between = float((yy.groupby(groups).transform("mean") - yy.mean()).pow(2).sum())
        scores[col] = between / total
    s = sum(scores.values())
    rows = [{"param": k, "importance": v / s if s > 0 else 0.0} for k, v in scores.items()]
    df = pd.DataFrame(rows, columns=["param", "importance"])
    return df.sort_values("importance", ascending=False, ignore_index=True)
