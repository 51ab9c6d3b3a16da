"""One training step and one epoch over device-resident tensors.

The step keeps its running loss sum and correct count in device tensors, so an epoch needs a
single host sync at its end (plus a finiteness check every ``check_every`` steps, which on
the CPU is a plain read of a scalar, not a sync).

On the CPU the batches are fed in channels-last layout (``channels_last``): for the
1-channel images this is a free re-striding, and oneDNN then runs the convolutions, ReLUs
and max-pooling of the whole network channels-last (faster kernels, same arithmetic, same
weights; the parameters keep their layout).

On CUDA, ``GraphedTrainStep`` captures forward, backward, optimizer step and those
reductions in one CUDA graph; the learning rate lives in a tensor the graph reads, so
``ReduceLROnPlateau`` (which ``fill_``s that tensor) still takes effect.

A step takes the model, its optimizer, the ``criterion`` (``nn.CrossEntropyLoss`` from
``conf/loss/``), the regularizers' ``loss_terms`` (L1) and the training ``transform``
(``conf/augmentation/``, applied to each training batch on its device).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .data import Split
from .errors import StopTraining
from .record import Status
from .regularizers import LossTerm

Transform = Callable[[torch.Tensor], torch.Tensor]

log = logging.getLogger(__name__)


class DivergedError(StopTraining):
    """The training loss became NaN or infinite."""

    def __init__(self, reason: str):
        super().__init__(Status.DIVERGED, reason)


@dataclass
class EpochResult:
    loss: float  # mean criterion value (the data term, without loss terms such as L1)
    acc: float


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` (N×C×H×W) with channels-last strides; a view, not a copy, when C == 1."""
    if x.dim() != 4:
        return x
    n, c, h, w = x.shape
    if c == 1 and x.is_contiguous():  # same memory order: only the strides change
        return x.as_strided((n, c, h, w), (c * h * w, 1, w * c, c))
    return x.contiguous(memory_format=torch.channels_last)


def _default_channels_last(device: torch.device) -> bool:
    # CPU (oneDNN): measured faster for LeNet-5, training and (2x) evaluation, and its
    # max-pooling kernel is branch-free (the NCHW one slows down as the weights train).
    # CUDA keeps NCHW: not measured there, and the graphed step hides most per-op costs.
    return device.type == "cpu"


class TrainStep:
    """Eager step: forward, criterion (+ loss terms), autograd backward, optimizer step.

    ``criterion`` defaults to ``nn.CrossEntropyLoss()``; ``transform`` (augmentation) maps
    each training batch before the forward. ``channels_last`` (default: on the CPU only)
    feeds each batch channels-last; the values computed are the same as with NCHW batches,
    up to floating-point summation order.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        criterion: nn.Module | None = None,
        loss_terms: Sequence[LossTerm] = (),
        transform: Transform | None = None,
        channels_last: bool | None = None,
    ):
        self.model, self.optimizer = model, optimizer
        self.criterion = criterion if criterion is not None else nn.CrossEntropyLoss()
        self.loss_terms, self.transform = list(loss_terms), transform
        device = next(model.parameters()).device
        self.channels_last = (
            _default_channels_last(device) if channels_last is None else channels_last
        )
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), dtype=torch.long, device=device)

    def reset(self) -> None:
        self.loss_sum.zero_()
        self.correct.zero_()

    def _forward_backward(self, x: torch.Tensor, y: torch.Tensor) -> None:
        logits = self.model(x)
        loss = self.criterion(logits, y)  # log-softmax + NLL: the model outputs raw logits
        total = loss + sum(term() for term in self.loss_terms) if self.loss_terms else loss
        total.backward()
        self.optimizer.step()
        self.loss_sum.add_(loss.detach(), alpha=y.shape[0])
        self.correct.add_((logits.detach().argmax(1) == y).sum())

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self._forward_backward(x, y)

    def batch(self, data: Split, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The training batch ``idx`` of ``data``, transformed (augmented)."""
        x = data.x.index_select(0, idx)
        return (self.transform(x) if self.transform is not None else x), data.y.index_select(0, idx)

    def run_batch(self, data: Split, idx: torch.Tensor) -> None:
        x, y = self.batch(data, idx)
        self(to_channels_last(x) if self.channels_last else x, y)


class GraphedTrainStep(TrainStep):
    """The same step replayed from a CUDA graph for full batches of ``batch_size``.

    Needs an optimizer built with a tensor learning rate and ``fused=True`` (see
    ``components.build_optimizer``). The warm-up steps needed before capture are undone:
    parameters, buffers, optimizer state and the CUDA RNG state are restored, so the graphed
    run takes exactly the optimizer steps the eager one takes. The graph holds train-mode
    behaviour (dropout, BatchNorm batch statistics and running-stat updates), whatever mode
    the model is in when it replays; the gradients live in the graph's memory pool and each
    replay overwrites them. A smaller last batch (or another split) runs eagerly, zeroing
    those gradients in place instead of freeing them.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        data: Split,
        batch_size: int,
        criterion: nn.Module | None = None,
        loss_terms: Sequence[LossTerm] = (),
        transform: Transform | None = None,
    ):
        super().__init__(model, optimizer, criterion, loss_terms, transform, channels_last=False)
        self.data, self.batch_size = data, batch_size
        device = data.x.device
        if device.type != "cuda" or next(model.parameters()).device != device:
            raise ValueError("GraphedTrainStep needs the model and the data on the same GPU")
        self.static_idx = torch.arange(batch_size, device=device)
        was_training = model.training
        model.train()  # the graph bakes in train-mode dropout / BatchNorm
        try:
            self._capture(device)
        finally:
            model.train(was_training)
        self.reset()

    def _capture(self, device: torch.device) -> None:
        model = self.model
        with torch.cuda.device(device):
            saved = {k: v.clone() for k, v in model.state_dict().items()}
            rng = torch.cuda.get_rng_state(device)
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                for _ in range(3):  # warm-up: allocates optimizer state, picks cuDNN kernels
                    self.optimizer.zero_grad(set_to_none=True)
                    self._graph_body()
            torch.cuda.current_stream(device).wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            self.optimizer.zero_grad(set_to_none=True)  # backward allocates grads in the pool
            with torch.cuda.graph(self.graph):
                self._graph_body()
            with torch.no_grad():  # undo the warm-up: original weights, fresh optimizer state
                for k, v in model.state_dict().items():
                    v.copy_(saved[k])
                for state in self.optimizer.state.values():
                    for v in state.values():
                        if torch.is_tensor(v):
                            v.zero_()  # momentum 0 ≡ first step; Adam restarts at step 0
            torch.cuda.set_rng_state(rng, device)

    def _graph_body(self) -> None:
        self._forward_backward(*self.batch(self.data, self.static_idx))

    def run_batch(self, data: Split, idx: torch.Tensor) -> None:
        if data is self.data and idx.shape[0] == self.batch_size:
            self.static_idx.copy_(idx)
            self.graph.replay()
        else:
            self.optimizer.zero_grad(set_to_none=False)  # keep the grads in the graph's pool
            self._forward_backward(*self.batch(data, idx))


def train_epoch(
    step: TrainStep,
    data: Split,
    batch_size: int,
    generator: torch.Generator,
    check_every: int = 1,
    on_batch: Sequence[Callable[[], None]] = (),
) -> EpochResult:
    """One pass over ``data`` in a fresh random order; raises ``DivergedError`` on NaN/inf.

    The order is ``torch.randperm(len(data), generator=generator)``; batch ``i`` is
    ``perm[i*batch_size:(i+1)*batch_size]`` (the last one may be smaller). Each function of
    ``on_batch`` runs after every optimizer step (a per-batch LR scheduler, the progress bar).
    """
    step.model.train()
    step.reset()
    n = len(data)
    perm = torch.randperm(n, generator=generator).to(data.x.device, non_blocking=True)
    for i, start in enumerate(range(0, n, batch_size)):
        step.run_batch(data, perm[start : start + batch_size])
        # .item() of a CPU scalar is a plain read; on CUDA it is a sync, hence check_every
        if check_every and (i + 1) % check_every == 0 and not math.isfinite(step.loss_sum.item()):
            raise DivergedError(f"non-finite training loss at batch {i + 1}")
        for hook in on_batch:
            hook()
    loss_sum, correct = step.loss_sum.item(), step.correct.item()
    if not math.isfinite(loss_sum):
        raise DivergedError("non-finite training loss at the end of the epoch")
    return EpochResult(loss_sum / n, correct / n)


# On the CPU, evaluation batches above this many images run in chunks of it: the sums are
# the same, and the activations of a 1000-image batch (~14 MB each) are returned to the OS
# by glibc after every batch and page-faulted in again for the next (measured: 10k images
# at batch 1000 take ~0.16 s, in chunks of 256 ~0.08 s, on 2 cores).
CPU_EVAL_CHUNK = 256


@torch.inference_mode()
def evaluate(
    model: nn.Module, data: Split, batch_size: int = 1000, channels_last: bool | None = None
) -> EpochResult:
    """Mean cross-entropy and accuracy on ``data`` (eval mode, one host sync).

    ``batch_size`` only changes the speed; on the CPU it is capped at ``CPU_EVAL_CHUNK``.
    """
    model.eval()
    device = data.x.device
    cl = _default_channels_last(device) if channels_last is None else channels_last
    if device.type == "cpu":
        batch_size = min(batch_size, CPU_EVAL_CHUNK)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    for start in range(0, len(data), batch_size):
        x, y = data.x[start : start + batch_size], data.y[start : start + batch_size]
        logits = model(to_channels_last(x) if cl else x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    n = max(len(data), 1)
    return EpochResult(loss_sum.item() / n, correct.item() / n)
