"""The searched parameters of an Optuna sweep as plot axes, and its objective per trial.

The trials and their values are ``study_trials.csv`` (``params_<name>``, ``value`` or
``values_0`` for the first of several objectives, ``state``). Whether an axis is categorical
or log-scaled comes from the sweep's search space, ``hydra.sweeper.params`` (``multirun.yaml``
or else a job's ``.hydra/hydra.yaml``), read with the sweeper's own grammar
(``lab_optuna._search.space``); a parameter missing there (pinned, screened) is numeric when all its
values are numbers, linear.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from optuna.distributions import BaseDistribution, CategoricalDistribution

from analysis.readers import dig, find_job_dirs, read_yaml
from analysis.sweep_info import SweepInfo
from lab_optuna._search.space import SearchSpaceError, from_overrides

PARAM_PREFIX = "params_"
COMPLETE = "COMPLETE"


@dataclass
class Axis:
    """One parameter as an axis: numeric (``low``..``high``, maybe log) or categorical."""

    name: str
    categorical: bool
    log: bool = False
    low: float = 0.0
    high: float = 1.0
    levels: list[str] = field(default_factory=list)

    def scale(self, values: pd.Series) -> np.ndarray:
        """``values`` placed on [0, 1]: levels evenly spaced, numbers by (log) range; NaN
        where a value is missing or not on the axis."""
        if self.categorical:
            index = {level: i for i, level in enumerate(self.levels)}
            pos = values.map(lambda v: index.get(_level(v), np.nan)).astype(float)
            return pos.to_numpy() / max(1, len(self.levels) - 1)
        x = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
        lo, hi = self.low, self.high
        if self.log:
            x, lo, hi = np.log10(np.where(x > 0, x, np.nan)), np.log10(lo), np.log10(hi)
        return (x - lo) / (hi - lo) if hi > lo else np.where(np.isnan(x), np.nan, 0.5)

    def range_label(self) -> str:
        """``low..high`` of a numeric axis (``(log)`` when log-scaled)."""
        return f"{self.low:.3g}..{self.high:.3g}" + (" (log)" if self.log else "")


def _level(value: Any) -> str:
    """A categorical value as a label (``128`` and ``128.0`` read back from CSV alike)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def sweeper_config(info: SweepInfo) -> dict[str, Any]:
    """``hydra.sweeper`` of the sweep: ``multirun.yaml``'s, or else the first job's."""
    if info.sweeper_config.get("params"):
        return info.sweeper_config
    try:
        jobs = find_job_dirs(info.path)
    except OSError:
        return info.sweeper_config
    for job in jobs[:1]:
        node = dig(read_yaml(job / ".hydra" / "hydra.yaml"), "hydra.sweeper")
        if isinstance(node, dict):
            return node
    return info.sweeper_config


def declared_space(config: dict[str, Any]) -> dict[str, BaseDistribution]:
    """The distributions of ``hydra.sweeper.params``; a key the grammar rejects is left out."""
    params = config.get("params")
    space: dict[str, BaseDistribution] = {}
    if not isinstance(params, dict):
        return space
    for key, value in params.items():
        try:
            space.update(from_overrides([f"{key}={value}"])[0])
        except (SearchSpaceError, ValueError):
            continue
    return space


def searched(study_trials: pd.DataFrame | None) -> list[str]:
    """Parameter names of ``study_trials.csv`` with at least one value, in file order."""
    if study_trials is None:
        return []
    return [
        c[len(PARAM_PREFIX) :]
        for c in study_trials.columns
        if c.startswith(PARAM_PREFIX) and study_trials[c].notna().any()
    ]


def objective(study_trials: pd.DataFrame) -> pd.Series:
    """Each trial's value (the first objective's when there are several), NaN without one."""
    column = "value" if "value" in study_trials.columns else "values_0"
    if column not in study_trials.columns:
        return pd.Series(np.nan, index=study_trials.index)
    return pd.to_numeric(study_trials[column], errors="coerce").astype(float)


def complete(study_trials: pd.DataFrame) -> pd.Series:
    """True for COMPLETE trials with a finite value (the coloured ones)."""
    states = study_trials.get("state", pd.Series(COMPLETE, index=study_trials.index))
    return (states.astype(str).str.upper() == COMPLETE) & np.isfinite(objective(study_trials))


def axis_for(name: str, values: pd.Series, dist: BaseDistribution | None) -> Axis:
    """The axis of parameter ``name`` with observed ``values`` and declared ``dist``."""
    present = values.dropna()
    numbers = pd.to_numeric(present, errors="coerce")
    is_bool = present.map(lambda v: isinstance(v, (bool, np.bool_))).any()
    if isinstance(dist, CategoricalDistribution) or numbers.isna().any() or is_bool:
        declared = (
            [_level(c) for c in dist.choices] if isinstance(dist, CategoricalDistribution) else []
        )
        seen = [_level(v) for v in present]
        levels = list(
            dict.fromkeys(declared + (seen if declared else sorted(set(seen), key=seen.index)))
        )
        return Axis(name, categorical=True, levels=levels)
    low = [float(numbers.min())] if len(numbers) else []
    high = [float(numbers.max())] if len(numbers) else []
    log = bool(getattr(dist, "log", False))
    if dist is not None:
        low.append(float(dist.low))  # type: ignore[attr-defined]
        high.append(float(dist.high))  # type: ignore[attr-defined]
    return Axis(
        name, categorical=False, log=log, low=min(low, default=0.0), high=max(high, default=1.0)
    )


def axes(
    study_trials: pd.DataFrame, space: dict[str, BaseDistribution], names: list[str]
) -> list[Axis]:
    """An :class:`Axis` per parameter in ``names`` (``study_trials.csv`` columns)."""
    return [axis_for(n, study_trials[PARAM_PREFIX + n], space.get(n)) for n in names]


def most_important(
    importances: pd.DataFrame | None, params: list[str], n: int = 2
) -> tuple[list[str], bool]:
    """The ``n`` most important of ``params`` by an importances table (``param,
    importance``), topped up in ``params`` order; True when the table chose them all."""
    ranked: list[str] = []
    if importances is not None and not importances.empty:
        table = importances.sort_values("importance", ascending=False, kind="stable")
        ranked = [str(p) for p in table["param"] if str(p) in params]
    chosen = list(dict.fromkeys(ranked))[:n]
    from_table = len(chosen) == n
    chosen += [p for p in params if p not in chosen][: n - len(chosen)]
    return chosen, from_table
