"""The explicit-backward CPU step against autograd, for every option of the lab (< 20 s)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import compose_config
from lenet_lab import engine, run
from lenet_lab.components import Components
from lenet_lab.data import Split
from lenet_lab.explicit_step import ExplicitBackwardStep, Unsupported
from lenet_lab.model import LeNet5
from lenet_lab.record import Status
from lenet_lab.regularizers import L1, LossTerm, Regularizer


@pytest.fixture(scope="module")
def tiny() -> Split:
    """150 learnable random images with exact-zero patches (ties in the max-pooling)."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(150, 1, 28, 28, generator=g)
    x[:, :, 8:20, 8:20] = 0.0
    y = (x[:, 0, :4, :].mean(dim=(1, 2)) * 40).long() % 10
    return Split(x.contiguous(), y)


def make_optimizer(name: str, model: nn.Module) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, fused=True)
    if name == "sgd_l2_nesterov":
        return torch.optim.SGD(
            model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01, fused=True
        )
    cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    return cls(model.parameters(), lr=3e-3, weight_decay=0.01, fused=True)


def train_pair(data: Split, model_kw: dict, opt: str, l1: float, steps: int, mode: str = "train"):
    """The autograd step and the explicit one from the same weights, batches and RNG state."""
    out = []
    for cls in (engine.TrainStep, ExplicitBackwardStep):
        torch.manual_seed(0)
        model = LeNet5(**model_kw)
        step = cls(model, make_optimizer(opt, model), loss_terms=L1(l1).loss_terms(model))
        model.train(mode == "train")
        torch.manual_seed(7)  # the dropout draws
        gen = torch.Generator().manual_seed(3)
        losses = []
        for _ in range(steps):
            idx = torch.randperm(len(data), generator=gen)[: 16 + len(losses) % 7]  # sizes vary
            step.reset()
            step.run_batch(data, idx)
            losses.append(step.loss_sum.item() / len(idx))
        out.append((model, losses, step.correct.item()))
    return out


CASES = [
    ({}, "sgd", 0.0),
    ({}, "sgd", 1e-3),  # L1
    ({}, "sgd_l2_nesterov", 0.0),  # L2 as weight decay
    ({"dropout": 0.5}, "sgd", 0.0),
    ({}, "adam", 0.0),
    ({"batchnorm": True}, "adamw", 0.0),
    ({"batchnorm": True, "dropout": 0.3}, "sgd", 1e-3),
    ({"padding": 2}, "adamw", 1e-3),  # LeCun's padded 32x32 LeNet-5
]


@pytest.mark.parametrize(("model_kw", "opt", "l1"), CASES, ids=str)
def test_explicit_step_trains_exactly_like_autograd(tiny, model_kw, opt, l1):
    """25 steps (batch sizes 16-22): the same loss at every step, the same number of correct
    predictions in the last batch, and the same weights and BatchNorm running statistics
    (up to float summation order), for every regularizer, normalization and optimizer."""
    (ref, ref_losses, ref_correct), (got, got_losses, got_correct) = train_pair(
        tiny, model_kw, opt, l1, steps=25
    )
    assert ref_losses[-1] < ref_losses[0]  # it learns, so the comparison means something
    torch.testing.assert_close(got_losses, ref_losses, rtol=1e-5, atol=1e-6)
    assert got_correct == ref_correct
    ref_state, got_state = ref.state_dict(), got.state_dict()
    assert ref_state.keys() == got_state.keys()
    for key, value in ref_state.items():
        torch.testing.assert_close(got_state[key], value, rtol=1e-5, atol=1e-6, msg=key)
    if model_kw.get("batchnorm"):
        assert int(got_state["norm.num_batches_tracked"]) == 25
        assert not torch.equal(got_state["norm.running_mean"], torch.zeros(6))


def test_eval_mode_step_uses_running_statistics_and_no_dropout(tiny):
    """In eval mode dropout is off and BatchNorm uses (and keeps) its running statistics,
    as in ``model(x)``: the step still matches autograd."""
    (ref, ref_losses, _), (got, got_losses, _) = train_pair(
        tiny, {"batchnorm": True, "dropout": 0.5}, "sgd", 0.0, steps=6, mode="eval"
    )
    torch.testing.assert_close(got_losses, ref_losses, rtol=1e-5, atol=1e-6)
    for key, value in ref.state_dict().items():
        torch.testing.assert_close(got.state_dict()[key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert int(got.norm.num_batches_tracked) == 0
    assert torch.equal(got.norm.running_var, torch.ones(6))


def test_bn_cumulative_average_when_momentum_is_none(tiny):
    models = []
    for cls in (engine.TrainStep, ExplicitBackwardStep):
        torch.manual_seed(0)
        model = LeNet5(batchnorm=True)
        model.norm.momentum = None
        step = cls(model, make_optimizer("sgd", model))
        for i in range(5):
            step.run_batch(tiny, torch.arange(i * 20, i * 20 + 20))
        models.append(model)
    torch.testing.assert_close(models[1].norm.running_mean, models[0].norm.running_mean)
    torch.testing.assert_close(models[1].norm.running_var, models[0].norm.running_var)


def test_gradients_have_the_parameters_layout(tiny):
    """A conv weight's gradient comes out of oneDNN channels-last; fused optimizers read
    p.grad in p's memory order, so the step must hand them over contiguous, like p."""
    torch.manual_seed(0)
    model = LeNet5()
    seen = {}

    class Spy(torch.optim.SGD):
        def step(self, closure=None):
            seen.update({id(p): p.grad.is_contiguous() for p in self.param_groups[0]["params"]})
            return super().step(closure)

    step = ExplicitBackwardStep(model, Spy(model.parameters(), lr=0.1, fused=True))
    assert step.channels_last  # the CPU default: channels-last batches
    step.run_batch(tiny, torch.arange(32))
    assert len(seen) == 10 and all(seen.values())
    # the raw kernel output really is channels-last, so the check above is not vacuous
    grads = dict(step._forward_backward_explicit(engine.to_channels_last(tiny.x[:32]), tiny.y[:32]))
    assert not grads[model.c2.weight].is_contiguous()


class WiderLeNet(LeNet5):
    """A model the explicit backward was not written for."""


def test_a_parameter_frozen_after_the_start_stays_frozen(tiny):
    """Frozen (``requires_grad=False``) after some steps, with momentum: its stale gradient
    is dropped, as autograd's ``zero_grad(set_to_none=True)`` does, so SGD leaves it alone
    (the bug: it kept the last gradient and kept moving); the others still train."""
    finals = []
    for cls in (engine.TrainStep, ExplicitBackwardStep):
        torch.manual_seed(0)
        model = LeNet5()
        step = cls(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, fused=True))
        step.run_batch(tiny, torch.arange(32))
        model.c1.weight.requires_grad_(False)
        frozen = model.c1.weight.detach().clone()
        bias = model.c1.bias.detach().clone()
        for i in range(3):
            step.run_batch(tiny, torch.arange(32 * (i + 1), 32 * (i + 2)))
        assert model.c1.weight.grad is None and torch.equal(model.c1.weight, frozen), cls
        assert not torch.equal(model.c1.bias, bias)
        finals.append(model.state_dict())
    for key, value in finals[0].items():
        torch.testing.assert_close(finals[1][key], value, rtol=1e-5, atol=1e-6, msg=key)


def test_anything_else_falls_back_to_autograd():
    """What only ``model(x)`` or autograd would run (hooks, parametrizations) and layers
    other than the ones ``LeNet5`` builds: such a model gets the autograd step."""
    cases = [(WiderLeNet(), "written for LeNet5, not")]
    model = LeNet5()
    model.f3.register_forward_hook(lambda *args: None)
    cases.append((model, "f3 has hooks"))
    model = LeNet5()
    model.f3.register_full_backward_pre_hook(lambda *args: None)
    cases.append((model, "f3 has hooks"))
    model = LeNet5()
    torch.nn.utils.parametrizations.weight_norm(model.f4)
    cases.append((model, "f4 is parametrized"))
    model = LeNet5()
    model.f5.weight.register_hook(lambda g: g * 0)
    cases.append((model, "f5.weight has gradient hooks"))
    model = LeNet5(dropout=0.5)
    model.drop_conv = nn.Dropout2d(0.5)
    cases.append((model, "drop_conv is Dropout2d"))
    model = LeNet5()
    model.c1 = nn.Conv2d(1, 6, 5, stride=2)
    cases.append((model, "c1 is not a plain convolution"))
    model = LeNet5()
    model.c1.weight.requires_grad_(False)  # frozen from the start
    cases.append((model, "c1.weight is frozen"))
    model = LeNet5()
    model.f5 = nn.Linear(84, 10, bias=False)
    cases.append((model, "f5 is not a linear layer with bias"))
    cases = [(model, None, (), match) for model, match in cases]
    cases.append((LeNet5(), nn.CrossEntropyLoss(label_smoothing=0.1), (), "criterion"))
    cases.append((LeNet5(), nn.MultiMarginLoss(), (), "criterion"))

    class Orthogonality(LossTerm):  # a loss term the explicit step has no gradient for
        def __call__(self):
            return torch.zeros(())

    cases.append((LeNet5(), None, [Orthogonality()], "loss term Orthogonality"))
    for model, criterion, terms, match in cases:
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with pytest.raises(Unsupported, match=match):
            ExplicitBackwardStep(model, opt, criterion, terms)
        parts = Components(
            model, opt, criterion or nn.CrossEntropyLoss(), Regularizer(), list(terms)
        )
        step = run.make_step(parts, None, 16, graphable=False, explicit=True)
        assert type(step) is engine.TrainStep
    handle = torch.nn.modules.module.register_module_forward_hook(lambda *args: None)
    try:
        with pytest.raises(Unsupported, match="global module hooks"):
            ExplicitBackwardStep(LeNet5(), opt)
    finally:
        handle.remove()
    ExplicitBackwardStep(LeNet5(), opt)  # and without them, the plain model is supported


def test_train_uses_the_explicit_step_and_matches_autograd(tmp_path, tiny_env, monkeypatch):
    """``run.train`` on the CPU builds the explicit step unless
    ``trainer.explicit_backward=false``; both runs give the same metrics."""
    built = []
    real = run.make_step

    def spy(*args, **kwargs):
        step = real(*args, **kwargs)
        built.append(type(step))
        return step

    monkeypatch.setattr(run, "make_step", spy)
    results = {}
    for flag in ("true", "false"):
        cfg = compose_config(
            "trainer.device=cpu",
            "trainer.progress_bar=false",
            "trainer.epochs=2",
            "trainer.save_curves=false",
            "trainer.save_samples=false",
            "regularizer=dropout",
            f"trainer.explicit_backward={flag}",
        )
        results[flag] = run.train(cfg, tmp_path / flag)
    assert built == [ExplicitBackwardStep, engine.TrainStep]
    assert results["true"]["status"] == results["false"]["status"] == Status.COMPLETED
    for key in ("final_train_loss", "final_val_loss", "best_val_acc"):
        assert results["true"][key] == pytest.approx(results["false"][key], rel=1e-4), key
