"""The sweep-level files of one multirun directory: ``multirun.yaml`` (the sweeper and its
settings), Optuna's ``optimization_results.yaml``, ``importances.csv``, ``pinned.yaml`` and
``study_trials.csv``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.importances import read_importances
from analysis.readers import dig, num, read_csv, read_yaml
from lab_optuna import names

#: The sweep-level files (``trial.json`` and the rest live in the job dirs).
MULTIRUN_FILE = "multirun.yaml"
RESULTS_FILE = names.RESULTS_YAML
IMPORTANCES_FILE = names.IMPORTANCES_CSV
PINNED_FILE = names.PINNED_YAML
STUDY_TRIALS_FILE = names.TRIALS_CSV


@dataclass
class SweepInfo:
    """Sweep-level files of one multirun directory."""

    path: Path
    label: str
    sweeper: str | None = None
    sweeper_config: dict[str, Any] = field(default_factory=dict)
    task_overrides: list[str] = field(default_factory=list)
    results: dict[str, Any] | None = None
    #: ``param, importance`` of the main evaluator (the first in the file), objective 0.
    importances: pd.DataFrame | None = None
    #: ``param`` (and ``objective`` if several) then one column per evaluator, file order.
    importance_table: pd.DataFrame | None = None
    pinned: dict[str, Any] | None = None
    study_trials: pd.DataFrame | None = None
    is_optuna: bool = False
    study_name: str | None = None

    @property
    def study(self) -> str:
        """Study name (Optuna) or the sweep label (plain grid)."""
        return self.study_name or self.label


def read_sweep_info(sweep_dir: Path, label: str | None = None) -> SweepInfo:
    """Read the sweep-level files (multirun.yaml, Optuna results, importances, pinned…)."""
    info = SweepInfo(path=sweep_dir, label=label or sweep_dir.name)
    multirun = read_yaml(sweep_dir / MULTIRUN_FILE)
    sweeper = dig(multirun, "hydra.sweeper")
    if isinstance(sweeper, dict):
        info.sweeper_config = sweeper
        info.sweeper = str(sweeper.get("_target_") or "") or None
    task = dig(multirun, "hydra.overrides.task")
    if isinstance(task, list):
        info.task_overrides = [str(t) for t in task]
    results = read_yaml(sweep_dir / RESULTS_FILE)
    info.results = results if isinstance(results, dict) else None
    results = info.results or {}
    for name in (
        results.get("study_name"),
        info.sweeper_config.get("study_name"),
        results.get("name"),
    ):
        if real_name(name) and name != "optuna":  # the plugin always writes name: optuna
            info.study_name = str(name)
            break
    info.importances, info.importance_table = read_importances(sweep_dir / IMPORTANCES_FILE)
    pinned = read_yaml(sweep_dir / PINNED_FILE)
    info.pinned = pinned if isinstance(pinned, dict) else None
    info.study_trials = read_csv(sweep_dir / STUDY_TRIALS_FILE)
    info.is_optuna = bool(
        info.results is not None
        or info.study_trials is not None
        or info.importances is not None
        or "optuna" in (info.sweeper or "").lower()
    )
    return info


def real_name(value: Any) -> bool:
    """True for a usable name (not empty/None/null or an unresolved ``${…}``)."""
    return value is not None and str(value) not in ("", "None", "null") and "${" not in str(value)


def study_states(info: SweepInfo) -> dict[int, str]:
    """Trial number → Optuna state name (``COMPLETE``...) from ``study_trials.csv``."""
    st = info.study_trials
    if st is None or "number" not in st.columns or "state" not in st.columns:
        return {}
    out: dict[int, str] = {}
    for number, state in zip(st["number"], st["state"], strict=False):
        n = num(number)
        if n is not None and isinstance(state, str):
            out[int(n)] = state.strip().upper()
    return out
