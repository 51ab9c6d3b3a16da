"""A job's ``trial.json`` in its output dir: which trial it ran, where, and how it ended.

Its ``state`` is the name of an Optuna ``TrialState`` (RUNNING while the job runs), written
and read only here. The sweeper reads it when interrupted, to keep a finished job's result.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, read_write
from optuna.trial import TrialState

from lab_optuna.names import TRIAL_JSON


def write(out: Path, record: dict[str, Any], state: TrialState, **extra: Any) -> None:
    """Write ``record`` with ``state`` (and ``extra`` fields) to ``out/trial.json``, atomically."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / TRIAL_JSON
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**record, "state": state.name, **extra}, indent=2, default=str))
    tmp.replace(path)


def read(output_dir: str | Path) -> dict[str, Any]:
    """The record in ``output_dir`` ({} if there is none or it is unreadable)."""
    try:
        return json.loads((Path(output_dir) / TRIAL_JSON).read_text())
    except (OSError, ValueError):
        return {}


def state_of(record: dict[str, Any]) -> TrialState | None:
    """The record's state (None for a missing or unknown one)."""
    try:
        return TrialState[str(record.get("state"))]
    except KeyError:
        return None


def record_of(config: DictConfig, number: int) -> dict[str, Any]:
    """The record of job ``number`` of the sweep ``config`` (its dir resolved as Hydra would)."""
    try:
        cfg = copy.deepcopy(config)
        with read_write(cfg.hydra.job):
            cfg.hydra.job.num = number  # as the launchers set it for the job
        return read(Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir))
    except Exception:  # noqa: BLE001 - an unreadable record: the trial is marked interrupted
        return {}
