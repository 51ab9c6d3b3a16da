"""One job directory (a trial) as a row of the trials table, its parameters, its details
and its epochs; and the rows of Optuna trials that left no job directory."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.columns import FINAL_GAP, FIXED_COLUMNS, JOB, STUDY, SWEEP_DIR, TRIAL
from analysis.job_overrides import parse_overrides
from analysis.readers import dig, num, read_json, read_metrics, read_yaml
from analysis.sweep_info import SweepInfo, real_name
from analysis.trial_states import state_status, trial_state
from lab_optuna import names
from lenet_lab import record
from lenet_lab.groups import GROUPS
from lenet_lab.record import FINISHED, Status


def _group_value(config: Any, group: str) -> Any:
    node = config.get(group) if isinstance(config, dict) else None
    if isinstance(node, dict):
        node = node.get("name")
    if node is None or isinstance(node, (dict, list)):
        return None
    return node


def _trial_number(job: Path, trial_json: Any, summary: Any) -> Any:
    candidates = [
        trial_json.get("number") if isinstance(trial_json, dict) else None,
        dig(summary, "trial.number"),  # summary.json of runs before trial.json existed
    ]
    for value in candidates:
        n = num(value)
        if n is not None:
            return int(n)
    match = re.fullmatch(r"(?:trial_)?(\d+)", job.name)
    if match:
        return int(match.group(1))
    n = num(dig(read_yaml(job / ".hydra" / "hydra.yaml"), "hydra.job.num"))
    return int(n) if n is not None else None


def _study_name(trial_json: Any, summary: Any) -> str | None:
    for value in (
        trial_json.get("study") if isinstance(trial_json, dict) else None,
        dig(summary, "trial.study"),
    ):
        if real_name(value):
            return str(value)
    return None


def _from_metrics(metrics: pd.DataFrame) -> dict[str, Any]:
    """Outcome fields derived from metrics.csv (fallbacks when summary.json is absent)."""
    out: dict[str, Any] = {}
    if metrics.empty:
        return out
    out[record.EPOCHS_RUN] = (
        int(metrics[record.EPOCH].max()) if metrics[record.EPOCH].notna().any() else None
    )
    if record.VAL_ACC in metrics.columns:
        acc = metrics[record.VAL_ACC].where(metrics[record.VAL_ACC].map(math.isfinite))
        if acc.notna().any():
            idx = acc.idxmax()
            out[record.BEST_VAL_ACC] = float(acc[idx])
            out[record.BEST_EPOCH] = num(metrics.loc[idx, record.EPOCH])
    if record.SECONDS in metrics.columns and metrics[record.SECONDS].notna().any():
        out[record.WALL_TIME_S] = float(metrics[record.SECONDS].sum())
    if {record.TRAIN_ACC, record.VAL_ACC} <= set(metrics.columns):
        # last row with both accuracies (a half-written final line has NaNs)
        both = metrics[[record.TRAIN_ACC, record.VAL_ACC]].dropna()
        if not both.empty:
            out[FINAL_GAP] = num(both[record.TRAIN_ACC].iloc[-1] - both[record.VAL_ACC].iloc[-1])
    return out


def load_job(
    job: Path, sweep: SweepInfo, states: dict[int, str]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], pd.DataFrame]:
    """Load one job dir → ``(row, params, details, metrics)``."""
    raw_overrides = read_yaml(job / ".hydra" / "overrides.yaml")
    overrides = [str(o) for o in raw_overrides] if isinstance(raw_overrides, list) else []
    params, _ = parse_overrides(overrides)
    summary = record.read_summary(job)
    trial_json = read_json(job / names.TRIAL_JSON)
    trial_json = trial_json if isinstance(trial_json, dict) else None
    config = read_yaml(job / ".hydra" / "config.yaml")
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

    metrics = read_metrics(job / record.METRICS_FILE)
    derived = _from_metrics(metrics)
    number = _trial_number(job, trial_json, summary)
    status = job_status(summary, trial_json, states.get(number) if number is not None else None)
    s = summary or {}
    values = (trial_json or {}).get("values")
    if (
        s.get(record.BEST_VAL_ACC) is None
        and record.BEST_VAL_ACC not in derived
        and status in FINISHED
        and isinstance(values, list)
        and values
    ):
        derived[record.BEST_VAL_ACC] = num(values[0])  # the objective the sweeper was told

    def pick(key: str) -> Any:
        value = num(s.get(key))
        return value if value is not None else derived.get(key)

    final_gap = derived.get(FINAL_GAP)
    if final_gap is None:
        train, val = num(s.get(record.FINAL_TRAIN_ACC)), num(s.get(record.FINAL_VAL_ACC))
        final_gap = train - val if train is not None and val is not None else None
    max_epochs = num(s.get(record.MAX_EPOCHS))
    if max_epochs is None:
        max_epochs = num(dig(config, "trainer.epochs"))
    stopped = s.get(record.STOPPED_EARLY)
    reason = s.get(record.REASON) or (trial_json or {}).get("reason")
    row = {
        SWEEP_DIR: str(sweep.path),
        JOB: job.name,
        TRIAL: number,
        STUDY: _study_name(trial_json, summary) or sweep.study,
        record.STATUS: str(status),
        record.BEST_VAL_ACC: pick(record.BEST_VAL_ACC),
        record.BEST_EPOCH: pick(record.BEST_EPOCH),
        record.EPOCHS_RUN: pick(record.EPOCHS_RUN),
        record.MAX_EPOCHS: max_epochs,
        record.STOPPED_EARLY: bool(stopped) if isinstance(stopped, bool) else None,
        record.WALL_TIME_S: pick(record.WALL_TIME_S),
        FINAL_GAP: final_gap,
        record.OBJECTIVE: num(s.get(record.OBJECTIVE)),  # the value the sweeper was told
        record.VAL_SPLIT: s.get(record.VAL_SPLIT),  # where the objective's images came from
    }
    details = {"overrides": overrides, "reason": reason, "path": str(job)}
    return row, params, details, metrics


def job_status(
    summary: dict[str, Any] | None, trial_json: dict[str, Any] | None, study_state: str | None
) -> Status | str:
    """The run's status. Its ``summary.json`` says how the run ended (completed or early
    stopped, diverged...), but the study is the source of truth for its trial: a trial the
    study holds as FAIL (stale, interrupted) or PRUNED reads so whatever the summary says. A
    run with neither takes its ``trial.json``; with none, it is still running or was killed:
    :attr:`Status.RUNNING`."""
    status = (summary or {}).get(record.STATUS)
    from_study = state_status(study_state) if study_state else None
    if from_study is not None and from_study != Status.RUNNING:
        if status and trial_state(status) == trial_state(from_study):
            return status if isinstance(status, Status) else str(status)  # the finer word
        return from_study
    if status and status != Status.RUNNING:
        return status if isinstance(status, Status) else str(status)
    found = state_status((trial_json or {}).get("state"))
    return found if found is not None else Status.RUNNING


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def study_only_rows(
    sweep: SweepInfo, seen: set[int], study: str
) -> list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """Rows for Optuna trials listed in study_trials.csv that have no job directory."""
    st = sweep.study_trials
    if st is None or "number" not in st.columns:
        return []
    out = []
    param_cols = [c for c in st.columns if c.startswith("params_")]
    for _, trial in st.iterrows():
        n = num(trial.get("number"))
        if n is None or int(n) in seen:
            continue
        status = state_status(trial.get("state")) or Status.FAILED
        wall = None
        if "datetime_start" in st.columns and "datetime_complete" in st.columns:
            start = pd.to_datetime(trial.get("datetime_start"), errors="coerce")
            end = pd.to_datetime(trial.get("datetime_complete"), errors="coerce")
            if pd.notna(start) and pd.notna(end):
                wall = float((end - start).total_seconds())
        params: dict[str, Any] = {}
        for col in param_cols:
            value = trial.get(col)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            params[col[len("params_") :]] = value.item() if hasattr(value, "item") else value
        row = dict.fromkeys(FIXED_COLUMNS)
        row.update(
            {
                SWEEP_DIR: str(sweep.path),
                JOB: None,
                TRIAL: int(n),
                STUDY: study,
                record.STATUS: str(status),
                record.BEST_VAL_ACC: num(trial.get("value")),
                record.WALL_TIME_S: wall,
            }
        )
        reason = trial.get("user_attrs_fail_reason")
        details = {
            "overrides": [],
            "reason": reason if isinstance(reason, str) else None,
            "path": None,
        }
        out.append((row, params, details))
    return out
