"""The run state: what a callback sees of the run it is in (``callbacks.py``, ``run.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig


@dataclass
class Run:
    """What callbacks see of the run."""

    cfg: DictConfig
    out_dir: Path
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    epochs: int
    steps_per_epoch: int
    summary: dict[str, Any]
    rows: list[dict[str, float]] = field(default_factory=list)
    eval_model: torch.nn.Module | None = None  # set by weight averaging: evaluated instead

    @property
    def evaluated(self) -> torch.nn.Module:
        """The model the validation metrics come from."""
        return self.eval_model if self.eval_model is not None else self.model
