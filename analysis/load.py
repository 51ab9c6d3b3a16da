"""Read Hydra multirun sweep directories into pandas tables.

One row per job (trial) with the outcome from ``summary.json`` (or what ``metrics.csv``
shows when the run never finished) plus every overridden parameter as its own column.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from optuna.trial import TrialState

from analysis.errors import AnalysisError
from analysis.overrides import parse_overrides
from lenet_lab import record
from lenet_lab.record import FINISHED, Status

PathLike = str | os.PathLike[str]

#: Leading columns of the trials table; every later column is a parameter.
FIXED_COLUMNS: list[str] = [
    "sweep_dir",
    "job",
    "trial",
    "study",
    "status",
    "best_val_acc",
    "best_epoch",
    "epochs_run",
    "max_epochs",
    "stopped_early",
    "wall_time_s",
    "final_gap",
    "objective",
    "val_split",
]
#: Key columns that link ``epochs`` rows to their trial.
KEY_COLUMNS: list[str] = ["sweep_dir", "job", "trial", "study"]
#: Config groups whose chosen option is always filled in from ``.hydra/config.yaml``.
GROUPS: tuple[str, ...] = (
    "optimizer",
    "regularizer",
    "normalization",
    "scheduler",
    "early_stopping",
)
#: A trial's Optuna state (``trial.json``'s ``state``, ``study_trials.csv``) as a run status,
#: for jobs without a readable ``summary.json`` and trials without a job dir.
STATE_STATUS: dict[TrialState, Status] = {
    TrialState.COMPLETE: Status.COMPLETED,
    TrialState.PRUNED: Status.PRUNED,
    TrialState.FAIL: Status.FAILED,
    TrialState.RUNNING: Status.RUNNING,
    TrialState.WAITING: Status.RUNNING,
}
JOB_MARKERS: tuple[str, ...] = (".hydra", record.SUMMARY_FILE, "metrics.csv")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INT_COLUMNS = ("trial", "best_epoch", "epochs_run", "max_epochs")
_FLOAT_COLUMNS = ("best_val_acc", "wall_time_s", "final_gap")


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


@dataclass
class Runs:
    """Everything loaded from one or more sweep dirs."""

    trials: pd.DataFrame
    epochs: pd.DataFrame
    sweeps: list[SweepInfo]
    #: Per trials-row extras, same index as ``trials``: ``overrides`` (list), ``reason``, ``path``.
    details: pd.DataFrame

    @property
    def param_columns(self) -> list[str]:
        """The parameter columns of ``trials`` (everything after :data:`FIXED_COLUMNS`)."""
        return param_columns(self.trials)


def param_columns(trials: pd.DataFrame) -> list[str]:
    """Parameter columns of a trials table."""
    return [c for c in trials.columns if c not in FIXED_COLUMNS]


# --------------------------------------------------------------------------- small readers


def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _read_csv(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path, on_bad_lines="skip")
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.EmptyDataError):
        return None


def _dig(tree: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(tree, dict):
            return None
        tree = tree.get(part)
    return tree


def _natural_key(name: str) -> list[Any]:
    return [(0, int(t)) if t.isdigit() else (1, t) for t in re.split(r"(\d+)", name) if t]


def _num(value: Any) -> float | None:
    """A finite-or-inf float, or None for missing/non-numeric values."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def read_metrics(path: Path) -> pd.DataFrame:
    """Read a ``metrics.csv``; missing/empty/garbled files give an empty frame."""
    df = _read_csv(path)
    if df is None or df.empty:
        return pd.DataFrame()
    for col in df.columns:
        converted = pd.to_numeric(df[col], errors="coerce")
        if converted.notna().any() or df[col].isna().all():
            df[col] = converted.astype(float)
    if "epoch" not in df.columns:
        df.insert(0, "epoch", range(1, len(df) + 1))
    return df.reset_index(drop=True)


def find_job_dirs(sweep_dir: Path) -> list[Path]:
    """Direct subdirectories holding ``.hydra/``, ``summary.json`` or ``metrics.csv``."""
    jobs = [
        p
        for p in sweep_dir.iterdir()
        if p.is_dir() and any((p / marker).exists() for marker in JOB_MARKERS)
    ]
    return sorted(jobs, key=lambda p: _natural_key(p.name))


# --------------------------------------------------------------------------- sweep level


def read_sweep_info(sweep_dir: Path, label: str | None = None) -> SweepInfo:
    """Read the sweep-level files (multirun.yaml, Optuna results, importances, pinned…)."""
    info = SweepInfo(path=sweep_dir, label=label or sweep_dir.name)
    multirun = _read_yaml(sweep_dir / "multirun.yaml")
    sweeper = _dig(multirun, "hydra.sweeper")
    if isinstance(sweeper, dict):
        info.sweeper_config = sweeper
        info.sweeper = str(sweeper.get("_target_") or "") or None
    task = _dig(multirun, "hydra.overrides.task")
    if isinstance(task, list):
        info.task_overrides = [str(t) for t in task]
    results = _read_yaml(sweep_dir / "optimization_results.yaml")
    info.results = results if isinstance(results, dict) else None
    results = info.results or {}
    for name in (
        results.get("study_name"),
        info.sweeper_config.get("study_name"),
        results.get("name"),
    ):
        if _real_name(name) and name != "optuna":  # the plugin always writes name: optuna
            info.study_name = str(name)
            break
    info.importances, info.importance_table = read_importances(sweep_dir / "importances.csv")
    pinned = _read_yaml(sweep_dir / "pinned.yaml")
    info.pinned = pinned if isinstance(pinned, dict) else None
    info.study_trials = _read_csv(sweep_dir / "study_trials.csv")
    info.is_optuna = bool(
        info.results is not None
        or info.study_trials is not None
        or info.importances is not None
        or "optuna" in (info.sweeper or "").lower()
    )
    return info


def read_importances(path: Path) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """``(main, table)`` from an ``importances.csv`` (see :class:`SweepInfo`); None, None when
    the file is missing, empty or has no ``param, importance`` columns.

    The sweeper writes ``param, importance, evaluator, objective`` rows (one evaluator after
    the other, the default first); older files have ``param, importance`` only.
    """
    imp = _read_csv(path)
    if imp is None or imp.empty or not {"param", "importance"} <= set(imp.columns):
        return None, None
    imp = imp.copy()
    imp["importance"] = pd.to_numeric(imp["importance"], errors="coerce")
    if "evaluator" not in imp.columns:
        imp["evaluator"] = "importance"
    imp["evaluator"] = imp["evaluator"].astype(str)
    objective = pd.to_numeric(imp.get("objective", 0), errors="coerce")
    imp["objective"] = pd.Series(objective, index=imp.index).fillna(0).astype(int)
    evaluators = list(dict.fromkeys(imp["evaluator"]))
    first = imp[(imp["evaluator"] == evaluators[0]) & (imp["objective"] == imp["objective"].min())]
    main = first[["param", "importance"]].sort_values(
        "importance", ascending=False, ignore_index=True
    )
    keys = ["objective", "param"] if imp["objective"].nunique() > 1 else ["param"]
    wide = imp.pivot_table(index=keys, columns="evaluator", values="importance", sort=False)
    wide = wide.reindex(columns=evaluators).reset_index()
    wide.columns.name = None
    wide = wide.sort_values(
        [*keys[:-1], evaluators[0]], ascending=[True] * (len(keys) - 1) + [False], ignore_index=True
    )
    return main, wide


def _real_name(value: Any) -> bool:
    """True for a usable name (not empty/None/null or an unresolved ``${…}``)."""
    return value is not None and str(value) not in ("", "None", "null") and "${" not in str(value)


def state_status(state: Any) -> Status | None:
    """The run status of an Optuna state name (``"PRUNED"`` → pruned); None if not one."""
    try:
        return STATE_STATUS[TrialState[str(state).strip().upper()]]
    except KeyError:
        return None


def _study_states(info: SweepInfo) -> dict[int, str]:
    st = info.study_trials
    if st is None or "number" not in st.columns or "state" not in st.columns:
        return {}
    out: dict[int, str] = {}
    for number, state in zip(st["number"], st["state"], strict=False):
        n = _num(number)
        if n is not None and isinstance(state, str):
            out[int(n)] = state.strip().upper()
    return out


def _group_value(config: Any, group: str) -> Any:
    node = config.get(group) if isinstance(config, dict) else None
    if isinstance(node, dict):
        node = node.get("name")
    if node is None or isinstance(node, (dict, list)):
        return None
    return node


# --------------------------------------------------------------------------- job level


def _trial_number(job: Path, trial_json: Any, summary: Any) -> Any:
    candidates = [
        trial_json.get("number") if isinstance(trial_json, dict) else None,
        _dig(summary, "trial.number"),  # summary.json of runs before trial.json existed
    ]
    for value in candidates:
        n = _num(value)
        if n is not None:
            return int(n)
    match = re.fullmatch(r"(?:trial_)?(\d+)", job.name)
    if match:
        return int(match.group(1))
    n = _num(_dig(_read_yaml(job / ".hydra" / "hydra.yaml"), "hydra.job.num"))
    return int(n) if n is not None else None


def _study_name(trial_json: Any, summary: Any) -> str | None:
    for value in (
        trial_json.get("study") if isinstance(trial_json, dict) else None,
        _dig(summary, "trial.study"),
    ):
        if _real_name(value):
            return str(value)
    return None


def _from_metrics(metrics: pd.DataFrame) -> dict[str, Any]:
    """Outcome fields derived from metrics.csv (fallbacks when summary.json is absent)."""
    out: dict[str, Any] = {}
    if metrics.empty:
        return out
    out["epochs_run"] = int(metrics["epoch"].max()) if metrics["epoch"].notna().any() else None
    if "val_acc" in metrics.columns:
        acc = metrics["val_acc"].where(metrics["val_acc"].map(math.isfinite))
        if acc.notna().any():
            idx = acc.idxmax()
            out["best_val_acc"] = float(acc[idx])
            out["best_epoch"] = _num(metrics.loc[idx, "epoch"])
    if "seconds" in metrics.columns and metrics["seconds"].notna().any():
        out["wall_time_s"] = float(metrics["seconds"].sum())
    if {"train_acc", "val_acc"} <= set(metrics.columns):
        # last row with both accuracies (a half-written final line has NaNs)
        both = metrics[["train_acc", "val_acc"]].dropna()
        if not both.empty:
            out["final_gap"] = _num(both["train_acc"].iloc[-1] - both["val_acc"].iloc[-1])
    return out


def load_job(
    job: Path, sweep: SweepInfo, states: dict[int, str]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], pd.DataFrame]:
    """Load one job dir → ``(row, params, details, metrics)``."""
    raw_overrides = _read_yaml(job / ".hydra" / "overrides.yaml")
    overrides = [str(o) for o in raw_overrides] if isinstance(raw_overrides, list) else []
    params, _ = parse_overrides(overrides)
    summary = record.read_summary(job)
    trial_json = _read_json(job / "trial.json")
    trial_json = trial_json if isinstance(trial_json, dict) else None
    config = _read_yaml(job / ".hydra" / "config.yaml")
    if not isinstance(config, dict):
        config = (summary or {}).get(record.CONFIG)
        config = config if isinstance(config, dict) else {}
    for group in GROUPS:
        if group not in params:
            value = _group_value(config, group)
            if value is not None:
                params[group] = value
    trial_params = trial_json.get("params") if isinstance(trial_json, dict) else None
    if not overrides and isinstance(trial_params, dict):
        for key, value in trial_params.items():
            params.setdefault(str(key), value if _is_scalar(value) else str(value))

    metrics = read_metrics(job / "metrics.csv")
    derived = _from_metrics(metrics)
    number = _trial_number(job, trial_json, summary)
    status = job_status(summary, trial_json, states.get(number) if number is not None else None)
    s = summary or {}
    values = (trial_json or {}).get("values")
    if (
        s.get(record.BEST_VAL_ACC) is None
        and "best_val_acc" not in derived
        and status in FINISHED
        and isinstance(values, list)
        and values
    ):
        derived["best_val_acc"] = _num(values[0])  # the objective the sweeper was told

    def pick(key: str) -> Any:
        value = _num(s.get(key))
        return value if value is not None else derived.get(key)

    final_gap = derived.get("final_gap")
    if final_gap is None:
        train, val = _num(s.get(record.FINAL_TRAIN_ACC)), _num(s.get(record.FINAL_VAL_ACC))
        final_gap = train - val if train is not None and val is not None else None
    max_epochs = _num(s.get(record.MAX_EPOCHS))
    if max_epochs is None:
        max_epochs = _num(_dig(config, "trainer.epochs"))
    stopped = s.get(record.STOPPED_EARLY)
    reason = s.get(record.REASON) or (trial_json or {}).get("reason")
    row = {
        "sweep_dir": str(sweep.path),
        "job": job.name,
        "trial": number,
        "study": _study_name(trial_json, summary) or sweep.study,
        "status": str(status),
        "best_val_acc": pick(record.BEST_VAL_ACC),
        "best_epoch": pick(record.BEST_EPOCH),
        "epochs_run": pick(record.EPOCHS_RUN),
        "max_epochs": max_epochs,
        "stopped_early": bool(stopped) if isinstance(stopped, bool) else None,
        "wall_time_s": pick(record.WALL_TIME_S),
        "final_gap": final_gap,
        "objective": _num(s.get(record.OBJECTIVE)),  # the value the sweeper was told
        "val_split": s.get(record.VAL_SPLIT),  # where the objective's images came from
    }
    details = {"overrides": overrides, "reason": reason, "path": str(job)}
    return row, params, details, metrics


def job_status(
    summary: dict[str, Any] | None, trial_json: dict[str, Any] | None, study_state: str | None
) -> Status | str:
    """The run's status: its ``summary.json`` says it; a run that never wrote one (or was
    killed while its summary said running) takes its trial's state (``trial.json``, then the
    study); with neither, it is still running or was killed: :attr:`Status.RUNNING`."""
    status = (summary or {}).get(record.STATUS)
    if status and status != Status.RUNNING:
        return status if isinstance(status, Status) else str(status)
    for state in ((trial_json or {}).get("state"), study_state):
        found = state_status(state) if state else None
        if found is not None and found != Status.RUNNING:
            return found
    return Status.RUNNING


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _study_only_rows(
    sweep: SweepInfo, seen: set[int], study: str
) -> list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """Rows for Optuna trials listed in study_trials.csv that have no job directory."""
    st = sweep.study_trials
    if st is None or "number" not in st.columns:
        return []
    out = []
    param_cols = [c for c in st.columns if c.startswith("params_")]
    for _, rec in st.iterrows():
        n = _num(rec.get("number"))
        if n is None or int(n) in seen:
            continue
        status = state_status(rec.get("state")) or Status.FAILED
        wall = None
        if "datetime_start" in st.columns and "datetime_complete" in st.columns:
            start = pd.to_datetime(rec.get("datetime_start"), errors="coerce")
            end = pd.to_datetime(rec.get("datetime_complete"), errors="coerce")
            if pd.notna(start) and pd.notna(end):
                wall = float((end - start).total_seconds())
        params: dict[str, Any] = {}
        for col in param_cols:
            value = rec.get(col)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            params[col[len("params_") :]] = value.item() if hasattr(value, "item") else value
        row = dict.fromkeys(FIXED_COLUMNS)
        row.update(
            sweep_dir=str(sweep.path),
            job=None,
            trial=int(n),
            study=study,
            status=str(status),
            best_val_acc=_num(rec.get("value")),
            wall_time_s=wall,
        )
        reason = rec.get("user_attrs_fail_reason")
        details = {
            "overrides": [],
            "reason": reason if isinstance(reason, str) else None,
            "path": None,
        }
        out.append((row, params, details))
    return out


# --------------------------------------------------------------------------- public API


def _labels(paths: Sequence[Path]) -> list[str]:
    """Short sweep labels: dir name, ``date/time`` for Hydra's dated dirs, unique."""
    names = [
        f"{p.parent.name}/{p.name}" if _DATE_RE.match(p.parent.name) else (p.name or str(p))
        for p in (q.resolve() for q in paths)
    ]
    counts = Counter(names)
    return [
        f"{p.resolve().parent.name}/{n}" if counts[n] > 1 else n
        for p, n in zip(paths, names, strict=True)
    ]


def _check_dir(path: Path) -> list[Path]:
    if not path.exists():
        raise AnalysisError(f"{path}: no such directory")
    if not path.is_dir():
        raise AnalysisError(f"{path}: not a directory (expected a Hydra multirun sweep dir)")
    try:
        jobs = find_job_dirs(path)
    except OSError as exc:
        raise AnalysisError(f"{path}: cannot read directory ({exc.strerror})") from exc
    if jobs or (path / "study_trials.csv").is_file():
        return jobs
    nested = sorted(p.name for p in path.iterdir() if (p / "multirun.yaml").is_file())
    hint = f"; it contains sweep dirs ({', '.join(nested[:5])}) - pass those" if nested else ""
    raise AnalysisError(
        f"{path}: no job directories found (subdirs with .hydra/, summary.json or "
        f"metrics.csv){hint}"
    )


def _as_paths(dirs: PathLike | Iterable[PathLike]) -> list[Path]:
    if isinstance(dirs, (str, os.PathLike)):
        return [Path(dirs)]
    paths = [Path(d) for d in dirs]
    if not paths:
        raise AnalysisError("no sweep directory given")
    return paths


def _finish_trials(rows: list[dict[str, Any]], params: list[dict[str, Any]]) -> pd.DataFrame:
    order: list[str] = [g for g in GROUPS if any(g in p for p in params)]
    for p in params:
        order.extend(k for k in p if k not in order)
    renamed = {k: (f"override.{k}" if k in FIXED_COLUMNS else k) for k in order}
    records = []
    for row, p in zip(rows, params, strict=True):
        rec = {c: row.get(c) for c in FIXED_COLUMNS}
        rec.update({renamed[k]: v for k, v in p.items()})
        records.append(rec)
    df = pd.DataFrame.from_records(records, columns=FIXED_COLUMNS + [renamed[k] for k in order])
    for col in _INT_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").round().astype("Int64")
    for col in _FLOAT_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    df["stopped_early"] = df["stopped_early"].astype("boolean")
    return df


def load_sweeps(dirs: PathLike | Iterable[PathLike]) -> Runs:
    """Load one or more sweep dirs into a :class:`Runs` bundle (trials, epochs, sweep info).

    Raises :class:`AnalysisError` for a missing, unreadable or empty directory.
    """
    paths = _as_paths(dirs)
    job_lists = [_check_dir(p) for p in paths]
    rows: list[dict[str, Any]] = []
    params: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    epoch_frames: list[pd.DataFrame] = []
    sweeps: list[SweepInfo] = []
    for path, label, jobs in zip(paths, _labels(paths), job_lists, strict=True):
        sweep = read_sweep_info(path, label)
        sweeps.append(sweep)
        states = _study_states(sweep)
        seen: set[int] = set()
        studies: Counter[str] = Counter()
        for job in jobs:
            row, p, d, metrics = load_job(job, sweep, states)
            sweep.is_optuna |= (job / "trial.json").is_file()
            rows.append(row)
            params.append(p)
            details.append(d)
            studies[row["study"]] += 1
            if row["trial"] is not None:
                seen.add(row["trial"])
            if not metrics.empty:
                key = pd.DataFrame({k: [row[k]] * len(metrics) for k in KEY_COLUMNS})
                epoch_frames.append(pd.concat([key, metrics], axis=1))
        if studies:
            sweep.study_name = studies.most_common(1)[0][0]
        study = sweep.study
        if sweep.is_optuna:
            for row, p, d in _study_only_rows(sweep, seen, study):
                rows.append(row)
                params.append(p)
                details.append(d)
    trials = _finish_trials(rows, params)
    epochs = (
        pd.concat(epoch_frames, ignore_index=True)
        if epoch_frames
        else pd.DataFrame(columns=[*KEY_COLUMNS, "epoch"])
    )
    epochs["trial"] = pd.to_numeric(epochs["trial"], errors="coerce").astype("Int64")
    return Runs(trials=trials, epochs=epochs, sweeps=sweeps, details=pd.DataFrame(details))


def load_runs(dirs: PathLike | Iterable[PathLike]) -> pd.DataFrame:
    """One row per trial/job across the given sweep dirs (see :data:`FIXED_COLUMNS`)."""
    return load_sweeps(dirs).trials


def load_epochs(dirs: PathLike | Iterable[PathLike]) -> pd.DataFrame:
    """All ``metrics.csv`` rows of the given sweep dirs, keyed by sweep_dir/job/trial/study."""
    return load_sweeps(dirs).epochs
