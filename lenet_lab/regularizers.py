"""Regularizers of exercise 5: L2 (optimizer weight decay), L1 (loss term), dropout (model)."""

from __future__ import annotations

import torch
from torch import nn


def l1_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Weights the L1 term penalizes: conv and linear weights only.

    Biases and BatchNorm scale/shift are excluded (the usual convention: they do not
    add capacity the way weights do, and shrinking them only shifts activations).
    """
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def l1_penalty(params: list[torch.Tensor]) -> torch.Tensor:
    """Σ|w| over ``params`` (multiply by the coefficient yourself)."""
    return torch.stack([p.abs().sum() for p in params]).sum()


def weight_decay(reg_cfg) -> float:
    """Optimizer ``weight_decay`` implied by the regularizer config (L2 only)."""
    return float(reg_cfg.coef) if reg_cfg.name == "l2" else 0.0


def l1_coef(reg_cfg) -> float:
    """Coefficient of the L1 loss term (0 unless regularizer=l1)."""
    return float(reg_cfg.coef) if reg_cfg.name == "l1" else 0.0


def dropout_p(reg_cfg) -> float:
    """Dropout rate the model is built with (0 unless regularizer=dropout)."""
    return float(reg_cfg.p) if reg_cfg.name == "dropout" else 0.0
