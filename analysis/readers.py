"""Readers of a sweep's files that never raise: a missing, empty or garbled file is None
(or an empty frame), and the small value helpers the loaders share."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from lenet_lab import record

#: A direct subdirectory of a sweep holding one of these is a job directory.
JOB_MARKERS: tuple[str, ...] = (".hydra", record.SUMMARY_FILE, record.METRICS_FILE)


def read_yaml(path: Path) -> Any:
    """The YAML document at ``path``, or None."""
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None


def read_json(path: Path) -> Any:
    """The JSON document at ``path``, or None."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def read_csv(path: Path) -> pd.DataFrame | None:
    """The CSV table at ``path`` (bad lines skipped), or None."""
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path, on_bad_lines="skip")
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.EmptyDataError):
        return None


def dig(tree: Any, dotted: str) -> Any:
    """``tree["a"]["b"]`` for ``"a.b"``; None where a level is missing."""
    for part in dotted.split("."):
        if not isinstance(tree, dict):
            return None
        tree = tree.get(part)
    return tree


def natural_key(name: str) -> list[Any]:
    """Sort key ordering ``trial_2`` before ``trial_10``."""
    return [(0, int(t)) if t.isdigit() else (1, t) for t in re.split(r"(\d+)", name) if t]


def num(value: Any) -> float | None:
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
    df = read_csv(path)
    if df is None or df.empty:
        return pd.DataFrame()
    for col in df.columns:
        converted = pd.to_numeric(df[col], errors="coerce")
        if converted.notna().any() or df[col].isna().all():
            df[col] = converted.astype(float)
    if record.EPOCH not in df.columns:
        df.insert(0, record.EPOCH, range(1, len(df) + 1))
    return df.reset_index(drop=True)


def find_job_dirs(sweep_dir: Path) -> list[Path]:
    """Direct subdirectories holding ``.hydra/``, ``summary.json`` or ``metrics.csv``."""
    jobs = [
        p
        for p in sweep_dir.iterdir()
        if p.is_dir() and any((p / marker).exists() for marker in JOB_MARKERS)
    ]
    return sorted(jobs, key=lambda p: natural_key(p.name))
