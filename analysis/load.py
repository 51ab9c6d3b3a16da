"""Read Hydra multirun sweep directories into pandas tables: the public entry points.

One row per job (trial) with the outcome from ``summary.json`` (or what ``metrics.csv``
shows when the run never finished) plus every overridden parameter as its own column
(``columns.py``). The files are read by ``readers.py`` (any file), ``sweep_info.py`` (the
sweep's own files), ``jobs.py`` (a job directory).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.columns import (
    FIXED_COLUMNS,
    FLOAT_COLUMNS,
    INT_COLUMNS,
    KEY_COLUMNS,
    STUDY,
    TRIAL,
    param_columns,
)
from analysis.jobs import load_job, study_only_rows
from analysis.readers import find_job_dirs
from analysis.sweep_info import (
    MULTIRUN_FILE,
    STUDY_TRIALS_FILE,
    SweepInfo,
    read_sweep_info,
    study_states,
)
from lab_optuna import names
from lenet_lab import record
from lenet_lab.groups import GROUPS


class AnalysisError(Exception):
    """A user-facing problem with the input (missing/empty sweep dir, unwritable output).

    The message is a single line that names the offending path; the CLI prints it and
    exits with status 2.
    """


PathLike = str | os.PathLike[str]

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


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
    if jobs or (path / STUDY_TRIALS_FILE).is_file():
        return jobs
    nested = sorted(p.name for p in path.iterdir() if (p / MULTIRUN_FILE).is_file())
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
    for col in INT_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").round().astype("Int64")
    for col in FLOAT_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    df[record.STOPPED_EARLY] = df[record.STOPPED_EARLY].astype("boolean")
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
        states = study_states(sweep)
        seen: set[int] = set()
        studies: Counter[str] = Counter()
        for job in jobs:
            row, p, d, metrics = load_job(job, sweep, states)
            sweep.is_optuna |= (job / names.TRIAL_JSON).is_file()
            rows.append(row)
            params.append(p)
            details.append(d)
            studies[row[STUDY]] += 1
            if row[TRIAL] is not None:
                seen.add(row[TRIAL])
            if not metrics.empty:
                key = pd.DataFrame({k: [row[k]] * len(metrics) for k in KEY_COLUMNS})
                epoch_frames.append(pd.concat([key, metrics], axis=1))
        if studies:
            sweep.study_name = studies.most_common(1)[0][0]
        study = sweep.study
        if sweep.is_optuna:
            for row, p, d in study_only_rows(sweep, seen, study):
                rows.append(row)
                params.append(p)
                details.append(d)
    trials = _finish_trials(rows, params)
    epochs = (
        pd.concat(epoch_frames, ignore_index=True)
        if epoch_frames
        else pd.DataFrame(columns=[*KEY_COLUMNS, record.EPOCH])
    )
    epochs[TRIAL] = pd.to_numeric(epochs[TRIAL], errors="coerce").astype("Int64")
    return Runs(trials=trials, epochs=epochs, sweeps=sweeps, details=pd.DataFrame(details))


def load_runs(dirs: PathLike | Iterable[PathLike]) -> pd.DataFrame:
    """One row per trial/job across the given sweep dirs (see :data:`FIXED_COLUMNS`)."""
    return load_sweeps(dirs).trials


def load_epochs(dirs: PathLike | Iterable[PathLike]) -> pd.DataFrame:
    """All ``metrics.csv`` rows of the given sweep dirs, keyed by sweep_dir/job/trial/study."""
    return load_sweeps(dirs).epochs
