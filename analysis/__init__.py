"""Reporting layer for Hydra/Optuna sweeps of the LeNet-5 lab.

Notebook use::

    from analysis import load_runs, load_epochs
    trials = load_runs(["multirun/phase1", "multirun/phase2"])
    epochs = load_epochs("multirun/phase1")

Command line: ``python -m analysis multirun/<sweep-dir> [...] [--out DIR] [--top 10]``.
"""

from analysis.columns import FIXED_COLUMNS, param_columns
from analysis.compare import best_index, comparable_columns, compare_by, ranked
from analysis.load import AnalysisError, Runs, load_epochs, load_runs, load_sweeps
from analysis.report import ReportResult, best_command, write_report
from analysis.sweep_info import SweepInfo

__all__ = [
    "FIXED_COLUMNS",
    "AnalysisError",
    "ReportResult",
    "Runs",
    "SweepInfo",
    "best_command",
    "best_index",
    "comparable_columns",
    "compare_by",
    "load_epochs",
    "load_runs",
    "load_sweeps",
    "param_columns",
    "ranked",
    "write_report",
]
