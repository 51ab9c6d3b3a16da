"""The fast CPU training path against plain reference loops (tiny in-test data, < 30 s)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import compose_config
from lenet_lab import engine, run
from lenet_lab.components import Components, build_optimizer, build_scheduler
from lenet_lab.data import Split
from lenet_lab.model import LeNet5
from lenet_lab.regularizers import Regularizer

SGD = compose_config("optimizer=sgd")  # lr 0.1, momentum 0.9
PLATEAU = compose_config("scheduler=plateau", "scheduler.patience=0")


@pytest.fixture(scope="module")
def tiny() -> Split:
    """150 random images with labels that depend on them (learnable), in [0, 1]."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(150, 1, 28, 28, generator=g)
    x[:, :, 10:18, 10:18] = 0.0  # exact zeros, as in FashionMNIST: ties in the max-pooling
    y = (x[:, 0, :4, :].mean(dim=(1, 2)) * 40).long() % 10
    return Split(x.contiguous(), y)


def fresh_model(seed: int = 0, **kw) -> LeNet5:
    torch.manual_seed(seed)
    return LeNet5(**kw)


def reference_losses(data: Split, batch_size: int, seed: int, epochs: int = 1):
    """The plain loop: model(x), F.cross_entropy, backward, torch.optim.SGD, NCHW batches."""
    model = fresh_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    gen = torch.Generator().manual_seed(seed)
    losses, correct = [], []
    for _ in range(epochs):
        perm = torch.randperm(len(data), generator=gen)
        for start in range(0, len(data), batch_size):
            idx = perm[start : start + batch_size]
            x, y = data.x[idx], data.y[idx]
            opt.zero_grad()
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            loss.backward()
            opt.step()
            losses.append((loss.item(), len(idx)))
            correct.append(int((logits.argmax(1) == y).sum()))
    return model, losses, correct


def project_step(channels_last: bool | None = None) -> tuple[LeNet5, engine.TrainStep]:
    """The step as ``run.train`` builds it on the CPU (``graphable`` is False there)."""
    model = fresh_model()
    opt = build_optimizer(SGD, model, Regularizer(), graphable=False)
    parts = Components(model, opt, nn.CrossEntropyLoss(), Regularizer())
    step = run.make_step(parts, None, 16, graphable=False)
    assert type(step) is engine.TrainStep
    if channels_last is not None:
        step.channels_last = channels_last
    return model, step


@pytest.mark.parametrize("channels_last", [None, False])
def test_fast_step_follows_the_reference_loss_trajectory(tiny, channels_last):
    """Batch by batch (40 steps, same seed, same randperm order, last batch partial), the
    project's step gives the reference loop's losses, predictions and final weights."""
    ref_model, ref_losses, ref_correct = reference_losses(tiny, 16, seed=3, epochs=4)
    model, step = project_step(channels_last)
    assert step.channels_last is (channels_last is None)  # CPU default: channels-last
    gen = torch.Generator().manual_seed(3)
    got_losses, got_correct = [], []
    for _ in range(4):
        perm = torch.randperm(len(tiny), generator=gen)
        for start in range(0, len(tiny), 16):
            step.reset()
            idx = perm[start : start + 16]
            step.run_batch(tiny, idx)
            got_losses.append((step.loss_sum.item() / len(idx), len(idx)))
            got_correct.append(step.correct.item())
    assert len(got_losses) == 4 * math.ceil(150 / 16) == 40
    assert [n for _, n in got_losses] == [n for _, n in ref_losses]
    ref = torch.tensor([v for v, _ in ref_losses])
    got = torch.tensor([v for v, _ in got_losses])
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)
    assert ref[-5:].mean() < ref[:5].mean()  # it does learn, so the trajectory means something
    assert sum(a != b for a, b in zip(got_correct, ref_correct)) <= 1  # argmax near-ties only
    for (name, p), q in zip(model.named_parameters(), ref_model.parameters()):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-4, atol=1e-5, msg=name)


def test_train_epoch_matches_the_reference_epoch(tiny):
    """``train_epoch``: same order from the generator, 10 steps (last one of 6 images), mean
    loss weighted by batch size, and accuracy, as the reference loop computes them."""
    _, ref_losses, ref_correct = reference_losses(tiny, 16, seed=5)
    model, step = project_step()
    res = engine.train_epoch(step, tiny, 16, torch.Generator().manual_seed(5))
    assert len(ref_losses) == 10 and ref_losses[-1][1] == 150 - 9 * 16
    mean = sum(v * n for v, n in ref_losses) / 150
    assert res.loss == pytest.approx(mean, rel=1e-5)
    assert abs(res.acc - sum(ref_correct) / 150) <= 1 / 150
    assert model.training


def test_channels_last_batches_are_views_with_the_same_values(tiny):
    x = tiny.x[3:19]
    cl = engine.to_channels_last(x)
    assert cl.data_ptr() == x.data_ptr() and torch.equal(cl, x)
    assert cl.is_contiguous(memory_format=torch.channels_last)
    three = torch.rand(4, 3, 5, 5)
    torch.testing.assert_close(engine.to_channels_last(three), three, rtol=0, atol=0)
    model = fresh_model().eval()
    with torch.no_grad():
        torch.testing.assert_close(model(cl), model(x), rtol=1e-5, atol=1e-6)


def test_tensor_lr_fused_optimizer_matches_float_lr_and_follows_the_scheduler(tiny):
    """``graphable=True`` (tensor lr, fused; here on the CPU) trains like the float-lr SGD,
    and ReduceLROnPlateau changes that tensor in place, which the next steps use."""
    models, opts = {}, {}
    for kind, graphable in (("float", False), ("tensor", True), ("control", True)):
        models[kind] = fresh_model()
        opts[kind] = build_optimizer(SGD, models[kind], Regularizer(), graphable)
    # the reference: torch's default (per-parameter loop) SGD with a float lr
    opts["float"] = torch.optim.SGD(models["float"].parameters(), lr=0.1, momentum=0.9)
    lr_tensor = opts["tensor"].param_groups[0]["lr"]
    assert torch.is_tensor(lr_tensor) and opts["tensor"].defaults["fused"]
    scheds = {k: build_scheduler(PLATEAU, opts[k], 3, 1).scheduler for k in ("float", "tensor")}

    def train(n_steps: int) -> None:
        for kind, model in models.items():
            step = engine.TrainStep(model, opts[kind])
            gen = torch.Generator().manual_seed(11)
            for _ in range(n_steps):
                step.run_batch(tiny, torch.randperm(len(tiny), generator=gen)[:16])

    def max_diff(a: str, b: str) -> float:
        return max(
            float((p.detach() - q.detach()).abs().max())
            for p, q in zip(models[a].parameters(), models[b].parameters())
        )

    train(12)
    for p, q in zip(models["float"].parameters(), models["tensor"].parameters()):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-5, atol=1e-6)
    assert max_diff("tensor", "control") == 0.0
    ptr = lr_tensor.data_ptr()
    for sched in scheds.values():
        sched.step(1.0)  # best so far
        sched.step(2.0)  # worse, patience 0: lr * 0.1
    assert opts["tensor"].param_groups[0]["lr"] is lr_tensor and lr_tensor.data_ptr() == ptr
    assert lr_tensor.item() == pytest.approx(0.01, rel=1e-6)
    assert opts["float"].param_groups[0]["lr"] == pytest.approx(0.01)
    train(12)
    for p, q in zip(models["float"].parameters(), models["tensor"].parameters()):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-5, atol=1e-6)
    assert max_diff("tensor", "control") > 1e-3  # the control kept lr 0.1: it went elsewhere


def test_evaluate_matches_a_per_sample_reference(tiny):
    model = fresh_model(seed=2)
    model.train()  # evaluate must switch to eval mode itself
    with torch.no_grad():
        model.eval()
        per_sample = [
            (
                F.cross_entropy(model(tiny.x[i : i + 1]), tiny.y[i : i + 1]).item(),
                int(model(tiny.x[i : i + 1]).argmax(1).item() == tiny.y[i].item()),
            )
            for i in range(len(tiny))
        ]
    ref_loss = sum(v for v, _ in per_sample) / len(tiny)
    ref_acc = sum(c for _, c in per_sample) / len(tiny)
    model.train()
    for batch_size, cl in ((7, None), (1000, None), (64, False)):
        res = engine.evaluate(model, tiny, batch_size, channels_last=cl)
        assert res.loss == pytest.approx(ref_loss, rel=1e-5)
        assert res.acc == pytest.approx(ref_acc)
        assert not model.training


@pytest.mark.parametrize("check_every", [1, 4, 0])
def test_divergence_raises(tiny, check_every):
    model, step = project_step()
    with torch.no_grad():
        model.f5.bias.fill_(float("nan"))
    with pytest.raises(engine.DivergedError, match="non-finite training loss"):
        engine.train_epoch(step, tiny, 16, torch.Generator().manual_seed(0), check_every)


def test_divergence_is_caught_at_the_first_checked_batch(tiny):
    model, step = project_step()
    bad = Split(tiny.x.clone(), tiny.y)
    bad.x[:] = float("inf")
    with pytest.raises(engine.DivergedError, match="at batch 1$"):
        engine.train_epoch(step, bad, 16, torch.Generator().manual_seed(0), check_every=1)
