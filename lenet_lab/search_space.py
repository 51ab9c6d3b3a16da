"""Conditional parameters for the sweeper's ``custom_search_space`` hook (phase 2).

Only the chosen regularizer's coefficient (or dropout rate) is sampled, and the plateau
scheduler's factor/patience only when the plateau scheduler is in effect.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

Trial = Any  # an optuna.trial.Trial (duck-typed: lenet_lab imports nothing of Optuna)

# Ranges (log scale for coefficients), centred on the lab sheet's values.
REGULARIZER_SPACE = {
    "l2": ("regularizer.coef", 1e-5, 1e-1, True),
    "l1": ("regularizer.coef", 1e-6, 1e-2, True),
    "dropout": ("regularizer.p", 0.05, 0.6, False),
}


def _effective(trial: Trial, cfg: DictConfig, key: str, default: str) -> str:
    """A group's choice: sampled, else pinned/fixed (user attrs), else the config default."""
    return str(trial.params.get(key, trial.user_attrs.get(key, default)))


def phase2_conditional(cfg: DictConfig, trial: Trial) -> None:
    reg = _effective(trial, cfg, "regularizer", "none")
    if reg in REGULARIZER_SPACE and not _fixed(trial, REGULARIZER_SPACE[reg][0]):
        name, low, high, log = REGULARIZER_SPACE[reg]
        trial.suggest_float(name, low, high, log=log)
    if _effective(trial, cfg, "scheduler", "none") == "plateau":
        if not _fixed(trial, "scheduler.factor"):
            trial.suggest_float("scheduler.factor", 0.05, 0.7, log=True)
        if not _fixed(trial, "scheduler.patience"):
            trial.suggest_int("scheduler.patience", 0, 4)


def _fixed(trial: Trial, key: str) -> bool:
    return key in trial.user_attrs or key in trial.params
