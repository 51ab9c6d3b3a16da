"""LeNet-5's training step with the backward pass written out (the CPU fast path).

At batch 64 on a CPU a LeNet-5 step takes ~1.6-1.8 ms, and about a tenth of it is framework
overhead: recording the autograd graph, running its engine, wrapping every layer in
``nn.Module`` calls. ``ExplicitBackwardStep`` runs the same forward with
``torch.nn.functional`` under ``no_grad`` and then the chain rule by hand, layer by layer,
calling the very ATen gradient kernels autograd would call (``convolution_backward``,
``max_pool2d_with_indices_backward``, ``threshold_backward``, ``native_batch_norm_backward``,
the cross-entropy pair). The gradients land in ``p.grad`` and ``optimizer.step()`` runs as
usual, so every optimizer, weight decay (L2) and scheduler works unchanged; an L1 loss term
adds ``coef * sign(w)``. ``benchmarks/epoch_speed.py`` measures the result; tests compare it with
autograd.

One exact rewrite saves work: ReLU's backward mask is applied to the pooled gradient (a
quarter of the elements) instead of the conv output's: max-pooling sends each gradient to
one input, and that input is > 0 exactly when the pooled value is.

What it supports is declared in ``_check_supported``: ``LeNet5`` (the sheet's or the padded
32x32 one) with or without BatchNorm (batch statistics in train mode, running statistics
updated as ``nn.BatchNorm2d`` does) and dropout (same random draws as ``F.dropout`` on the
CPU), every parameter trainable; the criterion ``nn.CrossEntropyLoss()`` with its defaults
(no label smoothing, no class weights); the loss terms in ``SUPPORTED_LOSS_TERMS`` (L1); any
input transform (augmentation runs before the forward and needs no gradient). Anything else
raises ``Unsupported`` and the caller uses the autograd step (``run.make_step`` logs why).
A parameter frozen after the step was built gets no gradient (as with autograd).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .engine import TrainStep, Transform
from .model import LeNet5
from .regularizers import L1Penalty, LossTerm

aten = torch.ops.aten
_K2 = [2, 2]  # max-pool kernel and stride
_ZERO2, _ONE2 = [0, 0], [1, 1]  # padding, dilation (and conv stride)


#: Loss terms whose gradient the explicit step adds itself.
SUPPORTED_LOSS_TERMS: tuple[type[LossTerm], ...] = (L1Penalty,)


class Unsupported(ValueError):
    """The model, criterion or a loss term has a part the explicit backward does not implement."""


def _dropout(x: torch.Tensor, layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``F.dropout`` as ATen runs it on the CPU (same draws), returning its scaled mask."""
    if not isinstance(layer, nn.Dropout) or not layer.training or layer.p == 0:
        return x, None
    keep = 1.0 - layer.p
    mask = torch.empty_like(x).bernoulli_(keep).div_(keep)
    return x * mask, mask


def _conv_backward(g: torch.Tensor, inp: torch.Tensor, conv: nn.Conv2d, input_grad: bool):
    """Gradients of a stride-1, zero-padded convolution: (input or None, weight, bias)."""
    return aten.convolution_backward(
        g,
        inp,
        conv.weight,
        [conv.out_channels],
        _ONE2,
        list(conv.padding),
        _ONE2,
        False,
        _ZERO2,
        1,
        [input_grad, True, True],
    )


def _check_loss(criterion: nn.Module, loss_terms: Sequence[LossTerm]) -> None:
    """Raise ``Unsupported`` unless the loss is plain cross-entropy plus supported terms."""
    plain = (
        type(criterion) is nn.CrossEntropyLoss
        and criterion.weight is None
        and criterion.label_smoothing == 0
        and criterion.reduction == "mean"
        and criterion.ignore_index == -100
    )
    if not plain:
        settings = {k: getattr(criterion, k, None) for k in ("label_smoothing", "reduction")}
        shown = ", ".join(f"{k}={v}" for k, v in settings.items() if v is not None)
        raise Unsupported(
            f"criterion {type(criterion).__name__}({shown}); it implements plain cross-entropy only"
        )
    for term in loss_terms:
        if type(term) not in SUPPORTED_LOSS_TERMS:
            raise Unsupported(f"loss term {type(term).__name__}")


def _check_supported(model: nn.Module) -> None:
    """Raise ``Unsupported`` unless ``model`` is the ``LeNet5`` the backward is written for.

    That is: the sheet's layers (stride 1, no padding, biases; 2x2/2 max-pooling), dropout
    and BatchNorm as ``LeNet5`` builds them, C1 zero-padded or not, contiguous trainable
    parameters (fused optimizers read ``p.grad`` in ``p``'s memory order), and nothing that
    only ``model(x)`` or autograd would run: module or global hooks, tensor hooks on
    parameters, parametrizations.
    """
    if type(model) is not LeNet5:
        raise Unsupported(f"explicit backward is written for LeNet5, not {type(model)}")
    module_hooks = (
        "_forward_hooks",
        "_forward_pre_hooks",
        "_backward_hooks",
        "_backward_pre_hooks",
    )
    if any(getattr(torch.nn.modules.module, "_global" + h, None) for h in module_hooks):
        raise Unsupported("global module hooks are registered; only model(x) runs them")
    for name, mod in model.named_modules():
        if any(getattr(mod, h, None) for h in module_hooks):
            raise Unsupported(f"module {name or 'model'} has hooks, which only autograd runs")
        if nn.utils.parametrize.is_parametrized(mod):
            raise Unsupported(f"module {name} is parametrized")
    plain_conv = dict(stride=(1, 1), dilation=(1, 1), groups=1, padding_mode="zeros")
    for name in ("c1", "c2"):
        conv = getattr(model, name)
        if (
            type(conv) is not nn.Conv2d
            or conv.bias is None
            or any(getattr(conv, k) != v for k, v in plain_conv.items())
            or not isinstance(conv.padding, tuple)  # "same"/"valid" strings
            or (name == "c2" and conv.padding != (0, 0))
        ):
            raise Unsupported(f"{name} is not a plain convolution with bias: {conv}")
    for name in ("f3", "f4", "f5"):
        if type(getattr(model, name)) is not nn.Linear or getattr(model, name).bias is None:
            raise Unsupported(f"{name} is not a linear layer with bias")
    pool = model.pool
    if (
        type(pool) is not nn.MaxPool2d
        or pool.kernel_size != 2
        or pool.stride != 2
        or pool.padding != 0
        or pool.dilation != 1
        or pool.ceil_mode
    ):
        raise Unsupported(f"explicit backward assumes 2x2 max-pooling with stride 2: {pool}")
    for name in ("drop_conv", "drop_fc"):
        if type(getattr(model, name)) not in (nn.Dropout, nn.Identity):
            raise Unsupported(f"{name} is {getattr(model, name)}, not nn.Dropout")
    norm = model.norm
    if type(norm) is not nn.Identity and not (
        type(norm) is nn.BatchNorm2d and norm.affine and norm.track_running_stats
    ):
        raise Unsupported(f"unsupported normalization layer {norm}")
    for name, p in model.named_parameters():
        if p._backward_hooks or getattr(p, "_post_accumulate_grad_hooks", None):
            raise Unsupported(f"parameter {name} has gradient hooks, which only autograd runs")
        if not p.is_contiguous():
            raise Unsupported(f"parameter {name} is not contiguous")
        if not p.requires_grad:
            raise Unsupported(f"parameter {name} is frozen")


class ExplicitBackwardStep(TrainStep):
    """Forward, hand-written backward, ``optimizer.step()`` for ``LeNet5``.

    Dropout and BatchNorm follow the model's mode, as in ``model(x)``; the parameters'
    gradients are those autograd computes (the tests check equality after many steps).
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
        _check_supported(model)
        super().__init__(model, optimizer, criterion, loss_terms, transform, channels_last)
        _check_loss(self.criterion, self.loss_terms)
        self._l1 = {id(p): t.coef for t in self.loss_terms for p in t.params}  # L1Penalty only

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        with torch.no_grad():
            grads = self._forward_backward_explicit(x, y)
            for p, g in grads:
                if not p.requires_grad:  # frozen after the start: autograd leaves p.grad
                    p.grad = None  # None, so the optimizer skips p (no stale gradient)
                    continue
                if id(p) in self._l1:
                    g = g.add(p.sign(), alpha=self._l1[id(p)])  # d/dw coef*|w| (0 at w == 0)
                # a conv weight's gradient comes out channels-last; the fused optimizers
                # walk p and p.grad in memory order, so it must have p's (contiguous) layout
                p.grad = g.contiguous()
        self.optimizer.step()

    def _forward_backward_explicit(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> list[tuple[nn.Parameter, torch.Tensor]]:
        m = self.model
        # ---- forward (as LeNet5.forward, keeping what the backward needs)
        a1 = F.conv2d(x, m.c1.weight, m.c1.bias, padding=m.c1.padding).relu_()  # N×6×24×24
        r1, i1 = F.max_pool2d(a1, 2, 2, return_indices=True)  # N×6×12×12
        if isinstance(m.norm, nn.BatchNorm2d):  # as nn.BatchNorm2d.forward computes it
            bn, factor = m.norm, m.norm.momentum
            if bn.training:
                bn.num_batches_tracked.add_(1)
                if factor is None:  # cumulative moving average
                    factor = 1.0 / int(bn.num_batches_tracked)
            # train mode: batch statistics, and the running statistics updated in place
            n1, bn_mean, bn_invstd = aten.native_batch_norm(
                r1,
                bn.weight,
                bn.bias,
                bn.running_mean,
                bn.running_var,
                bn.training,
                factor or 0.0,
                bn.eps,
            )
        else:
            n1 = r1
        d1, mask1 = _dropout(n1, m.drop_conv)
        a2 = F.conv2d(d1, m.c2.weight, m.c2.bias).relu_()  # N×16×8×8
        r2, i2 = F.max_pool2d(a2, 2, 2, return_indices=True)  # N×16×4×4
        h0 = r2.flatten(1)  # N×256, in NCHW order as the model flattens
        h3 = F.linear(h0, m.f3.weight, m.f3.bias).relu_()
        d3, mask3 = _dropout(h3, m.drop_fc)
        h4 = F.linear(d3, m.f4.weight, m.f4.bias).relu_()
        logits = F.linear(h4, m.f5.weight, m.f5.bias)
        logp = torch.log_softmax(logits, 1)
        loss, total_weight = aten.nll_loss_forward(logp, y, None, 1, -100)  # mean reduction
        self.loss_sum.add_(loss, alpha=y.shape[0])
        self.correct.add_((logits.argmax(1) == y).sum())

        # ---- backward: the chain rule, output to input, with autograd's own kernels
        g = aten.nll_loss_backward(torch.ones_like(loss), logp, y, None, 1, -100, total_weight)
        g = aten._log_softmax_backward_data(g, logp, 1, logp.dtype)  # dL/dlogits
        grads = [(m.f5.weight, g.t().mm(h4)), (m.f5.bias, g.sum(0))]
        g = aten.threshold_backward(g.mm(m.f5.weight), h4, 0)
        grads += [(m.f4.weight, g.t().mm(d3)), (m.f4.bias, g.sum(0))]
        g = g.mm(m.f4.weight)
        if mask3 is not None:
            g = g * mask3
        g = aten.threshold_backward(g, h3, 0)
        grads += [(m.f3.weight, g.t().mm(h0)), (m.f3.bias, g.sum(0))]
        g = aten.threshold_backward(g.mm(m.f3.weight).view(r2.shape), r2, 0)  # ReLU, pooled
        g = aten.max_pool2d_with_indices_backward(g, a2, _K2, _K2, _ZERO2, _ONE2, False, i2)
        g, gw2, gb2 = _conv_backward(g, d1, m.c2, input_grad=True)
        grads += [(m.c2.weight, gw2), (m.c2.bias, gb2)]
        if mask1 is not None:
            g = g * mask1
        if isinstance(m.norm, nn.BatchNorm2d):
            bn = m.norm
            g, g_weight, g_bias = aten.native_batch_norm_backward(
                g,
                r1,
                bn.weight,
                bn.running_mean,
                bn.running_var,
                bn_mean,
                bn_invstd,
                bn.training,
                bn.eps,
                [True, True, True],
            )
            grads += [(bn.weight, g_weight), (bn.bias, g_bias)]
        g = aten.threshold_backward(g, r1, 0)  # ReLU, on the pooled gradient
        g = aten.max_pool2d_with_indices_backward(g, a1, _K2, _K2, _ZERO2, _ONE2, False, i1)
        _, gw1, gb1 = _conv_backward(g, x, m.c1, input_grad=False)  # the images need none
        grads += [(m.c1.weight, gw1), (m.c1.bias, gb1)]
        return grads
