"""Regularizers of exercise 5, built from ``conf/regularizer/*.yaml`` (``_target_``).

A regularizer may change three things, each a method with a do-nothing default:
``model_kwargs`` (dropout: the model's ``dropout``), ``optimizer_kwargs`` (L2: the optimizer's
``weight_decay``) and ``loss_terms`` (L1: ``coef * Σ|w|`` added to the training loss). A new
regularizer is a subclass overriding one of them, plus its YAML.
"""

from __future__ import annotations

from typing import Any

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


class LossTerm:
    """A term added to the training loss: ``term()`` is a scalar tensor of the parameters."""

    def __call__(self) -> torch.Tensor:
        raise NotImplementedError


class L1Penalty(LossTerm):
    """``coef * Σ|w|`` over ``params``; its gradient is ``coef * sign(w)`` (0 at w == 0)."""

    def __init__(self, coef: float, params: list[nn.Parameter]):
        self.coef, self.params = float(coef), list(params)

    def __call__(self) -> torch.Tensor:
        return self.coef * l1_penalty(self.params)


def _non_negative(name: str, value: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return float(value)


class Regularizer:
    """No regularization (the baseline); the base of the others."""

    def model_kwargs(self) -> dict[str, Any]:
        return {}

    def optimizer_kwargs(self) -> dict[str, Any]:
        return {}

    def loss_terms(self, model: nn.Module) -> list[LossTerm]:
        return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in vars(self).items())})"


class L2(Regularizer):
    """L2: the optimizer's ``weight_decay`` (decoupled for AdamW)."""

    def __init__(self, coef: float = 0.01):
        self.coef = _non_negative("coef", coef)

    def optimizer_kwargs(self) -> dict[str, Any]:
        return {"weight_decay": self.coef}


class L1(Regularizer):
    """L1: ``coef * Σ|w|`` over the conv and linear weights added to the training loss (the
    logged ``train_loss`` stays the data term, so runs with and without L1 compare)."""

    def __init__(self, coef: float = 0.001):
        self.coef = _non_negative("coef", coef)

    def loss_terms(self, model: nn.Module) -> list[LossTerm]:
        return [L1Penalty(self.coef, l1_parameters(model))] if self.coef else []


class Dropout(Regularizer):
    """Dropout between C1 and C2 and between F3 and F4, rate ``p``."""

    def __init__(self, p: float = 0.5):
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p < 1:
            raise ValueError(f"p must be in [0, 1), got {p!r}")
        self.p = float(p)

    def model_kwargs(self) -> dict[str, Any]:
        return {"dropout": self.p}
