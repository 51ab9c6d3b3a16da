"""The columns of the trials table: the outcome of each job, then its parameters.

The outcome columns that are summary.json fields keep their names (``lenet_lab.record``);
``sweep_dir``, ``job``, ``trial`` and ``study`` say where a row comes from, ``final_gap`` is
the last epoch's train minus validation accuracy.
"""

from __future__ import annotations

import pandas as pd

from lenet_lab import record

SWEEP_DIR, JOB, TRIAL, STUDY, FINAL_GAP = "sweep_dir", "job", "trial", "study", "final_gap"

#: Leading columns of the trials table; every later column is a parameter.
FIXED_COLUMNS: list[str] = [
    SWEEP_DIR,
    JOB,
    TRIAL,
    STUDY,
    record.STATUS,
    record.BEST_VAL_ACC,
    record.BEST_EPOCH,
    record.EPOCHS_RUN,
    record.MAX_EPOCHS,
    record.STOPPED_EARLY,
    record.WALL_TIME_S,
    FINAL_GAP,
    record.OBJECTIVE,
    record.VAL_SPLIT,
]
#: Key columns that link ``epochs`` rows to their trial.
KEY_COLUMNS: list[str] = [SWEEP_DIR, JOB, TRIAL, STUDY]
#: Columns of integers (nullable) and of floats.
INT_COLUMNS: tuple[str, ...] = (TRIAL, record.BEST_EPOCH, record.EPOCHS_RUN, record.MAX_EPOCHS)
FLOAT_COLUMNS: tuple[str, ...] = (record.BEST_VAL_ACC, record.WALL_TIME_S, FINAL_GAP)


def param_columns(trials: pd.DataFrame) -> list[str]:
    """Parameter columns of a trials table."""
    return [c for c in trials.columns if c not in FIXED_COLUMNS]
