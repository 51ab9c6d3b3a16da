"""Per-epoch helpers of the training loop: early stopping and the lab's statistics."""

from __future__ import annotations

import math

import torch
from torch import nn


class EarlyStopping:
    """Stop when ``value`` has not improved by at least ``min_delta`` for ``patience`` epochs.

    Lower is better (val loss). ``step`` returns True when training should stop: after
    ``patience`` consecutive epochs without improvement (``patience=0``: at the first one).
    """

    def __init__(self, patience: int = 5, min_delta: float = 0.005):
        self.patience, self.min_delta = patience, min_delta
        self.best = math.inf
        self.bad_epochs = 0

    def step(self, value: float) -> bool:
        if value < self.best - self.min_delta:
            self.best, self.bad_epochs = value, 0
            return False  # an improvement never stops training (even with patience 0)
        self.bad_epochs += 1
        return self.bad_epochs >= self.patience


def tensor_stats(t: torch.Tensor, prefix: str) -> dict[str, float]:
    """min/max/mean/std of a tensor as ``{prefix}_min`` … floats."""
    t = t.detach().float().flatten()
    s = torch.stack([t.min(), t.max(), t.mean(), t.std()]).tolist()
    return dict(zip((f"{prefix}_{k}" for k in ("min", "max", "mean", "std")), s, strict=True))


def parameter_stats(model: nn.Module) -> dict[str, float]:
    """Statistics of all parameters concatenated (exercise 5)."""
    return tensor_stats(torch.cat([p.detach().flatten() for p in model.parameters()]), "param")


@torch.no_grad()
def feature_stats(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Stats of features entering (``feat_in``) and leaving (``feat_out``) the normalization
    point on a fixed batch, in eval mode (exercise 7.2; identical when normalization=none)."""
    was_training = model.training
    model.eval()
    before, after = model.stem(x)
    model.train(was_training)
    return {**tensor_stats(before, "feat_in"), **tensor_stats(after, "feat_out")}
