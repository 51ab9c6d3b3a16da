"""Optimizers (exercise 3) and the learning-rate scheduler (exercise 6) from config."""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch import nn

from .regularizers import weight_decay


def build_optimizer(
    model: nn.Module, opt_cfg: DictConfig, reg_cfg: DictConfig, graphable: bool = False
) -> torch.optim.Optimizer:
    """SGD / Adam / AdamW; ``regularizer=l2`` becomes the optimizer's ``weight_decay``.

    ``graphable`` (CUDA graphs): the learning rate is a device tensor the captured step
    reads, and the fused kernels are used, so a scheduler's change reaches the graph.
    On the CPU the fused kernels are used too (one kernel for all parameters: less
    per-step overhead than the default per-parameter loop; same update).
    """
    params = model.parameters()
    device = next(model.parameters()).device
    lr = torch.tensor(float(opt_cfg.lr), device=device) if graphable else float(opt_cfg.lr)
    extra = {"fused": True} if graphable or device.type == "cpu" else {}
    wd = weight_decay(reg_cfg)
    name = opt_cfg.name
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=float(opt_cfg.momentum), nesterov=bool(opt_cfg.nesterov),
            weight_decay=wd, **extra,
        )  # fmt: skip
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        betas = tuple(float(b) for b in opt_cfg.betas)
        return cls(params, lr=lr, betas=betas, eps=float(opt_cfg.eps), weight_decay=wd, **extra)
    raise ValueError(f"optimizer.name: unknown optimizer {name!r} (sgd, adam, adamw)")


def build_scheduler(
    optimizer: torch.optim.Optimizer, sched_cfg: DictConfig
) -> torch.optim.lr_scheduler.ReduceLROnPlateau | None:
    """``ReduceLROnPlateau`` on the validation loss, or None for scheduler=none."""
    if sched_cfg.name == "none":
        return None
    if sched_cfg.name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=float(sched_cfg.factor),
            patience=int(sched_cfg.patience), threshold=float(sched_cfg.threshold),
            threshold_mode="abs", min_lr=float(sched_cfg.min_lr),
        )  # fmt: skip
    raise ValueError(f"scheduler.name: unknown scheduler {sched_cfg.name!r} (none, plateau)")


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])
