"""One training step and one epoch over device-resident tensors.

The step keeps its running loss sum and correct count in device tensors, so an epoch needs a
single host sync at its end (plus a cheap finiteness check every ``check_every`` steps).
On CUDA, ``GraphedTrainStep`` captures forward, backward, optimizer step and those
reductions in one CUDA graph; the learning rate lives in a tensor the graph reads, so
``ReduceLROnPlateau`` still takes effect.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .data import Split
from .regularizers import l1_penalty

log = logging.getLogger(__name__)


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class EpochResult:
    loss: float  # mean cross-entropy (the data term, without the L1 penalty)
    acc: float


class TrainStep:
    """Eager step: forward, cross-entropy (+ L1), backward, optimizer step."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        l1_coef: float = 0.0,
        l1_params: list[torch.Tensor] | None = None,
    ):
        self.model, self.optimizer = model, optimizer
        self.l1_coef, self.l1_params = l1_coef, l1_params or []
        device = next(model.parameters()).device
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), dtype=torch.long, device=device)

    def reset(self) -> None:
        self.loss_sum.zero_()
        self.correct.zero_()

    def _forward_backward(self, x: torch.Tensor, y: torch.Tensor) -> None:
        logits = self.model(x)
        loss = F.cross_entropy(logits, y)  # log-softmax + NLL: the model outputs raw logits
        total = loss + self.l1_coef * l1_penalty(self.l1_params) if self.l1_coef else loss
        total.backward()
        self.optimizer.step()
        self.loss_sum += loss.detach() * y.shape[0]
        self.correct += (logits.detach().argmax(1) == y).sum()

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self._forward_backward(x, y)

    def run_batch(self, data: Split, idx: torch.Tensor) -> None:
        self(data.x.index_select(0, idx), data.y.index_select(0, idx))


class GraphedTrainStep(TrainStep):
    """The same step replayed from a CUDA graph for full batches of ``batch_size``.

    Needs an optimizer built with a tensor learning rate and ``fused=True`` (see
    ``optim.build_optimizer``). Warm-up steps needed before capture are undone: parameters,
    buffers and optimizer state are restored, so the graphed run takes exactly the same
    optimizer steps as the eager one. A smaller last batch runs eagerly.
    """

    def __init__(self, model, optimizer, data: Split, batch_size: int, l1_coef=0.0, l1_params=None):
        super().__init__(model, optimizer, l1_coef, l1_params)
        self.data, self.batch_size = data, batch_size
        device = data.x.device
        self.static_idx = torch.arange(batch_size, device=device)
        saved = {k: v.clone() for k, v in model.state_dict().items()}
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):  # warm-up: allocates optimizer state, autotunes kernels
                self.optimizer.zero_grad(set_to_none=True)
                self._graph_body()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            self._graph_body()
        with torch.no_grad():  # undo the warm-up: fresh optimizer state, original weights
            for k, v in model.state_dict().items():
                v.copy_(saved[k])
            for state in self.optimizer.state.values():
                for v in state.values():
                    if torch.is_tensor(v):
                        v.zero_()
        self.reset()

    def _graph_body(self) -> None:
        x = self.data.x.index_select(0, self.static_idx)
        y = self.data.y.index_select(0, self.static_idx)
        self._forward_backward(x, y)

    def run_batch(self, data: Split, idx: torch.Tensor) -> None:
        if data is self.data and idx.shape[0] == self.batch_size:
            self.static_idx.copy_(idx)
            self.graph.replay()
        else:
            self.optimizer.zero_grad(set_to_none=False)  # grads live in the graph's pool
            self._forward_backward(data.x.index_select(0, idx), data.y.index_select(0, idx))


def train_epoch(
    step: TrainStep,
    data: Split,
    batch_size: int,
    generator: torch.Generator,
    check_every: int = 1,
    progress=None,
) -> EpochResult:
    """One pass over ``data`` in a fresh random order; raises ``DivergedError`` on NaN/inf."""
    step.model.train()
    step.reset()
    n = len(data)
    perm = torch.randperm(n, generator=generator).to(data.x.device, non_blocking=True)
    for i, start in enumerate(range(0, n, batch_size)):
        step.run_batch(data, perm[start : start + batch_size])
        if (i + 1) % check_every == 0 and not torch.isfinite(step.loss_sum):
            raise DivergedError(f"non-finite training loss at batch {i + 1}")
        if progress is not None:
            progress.update(1)
    loss_sum, correct = step.loss_sum.item(), step.correct.item()
    if not math.isfinite(loss_sum):
        raise DivergedError("non-finite training loss at the end of the epoch")
    return EpochResult(loss_sum / n, correct / n)


@torch.inference_mode()
def evaluate(model: nn.Module, data: Split, batch_size: int = 1000) -> EpochResult:
    """Mean cross-entropy and accuracy on ``data`` (eval mode, one host sync)."""
    model.eval()
    loss_sum = torch.zeros((), device=data.x.device)
    correct = torch.zeros((), dtype=torch.long, device=data.x.device)
    for start in range(0, len(data), batch_size):
        x, y = data.x[start : start + batch_size], data.y[start : start + batch_size]
        logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    n = max(len(data), 1)
    return EpochResult(loss_sum.item() / n, correct.item() / n)
