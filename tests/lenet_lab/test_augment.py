"""Augmentation of whole batches (conf/augmentation/): flips and shifts per image, and runs
that use them (the training step applies the transform before its forward)."""

from __future__ import annotations

import logging

import pytest
import torch

from conftest import compose_config
from lenet_lab.augment import Compose, HFlip, Shift
from lenet_lab.record import Status
from lenet_lab.run import train

QUIET = (
    "trainer.progress_bar=false",
    "trainer.device=cpu",
    "trainer.save_samples=false",
    "trainer.save_curves=false",
    "trainer.save_checkpoint=false",
)


def images(n: int = 64) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def test_hflip_mirrors_each_image_or_leaves_it():
    x = images()
    torch.manual_seed(0)
    out = HFlip(0.5)(x)
    flipped = [torch.equal(o, i.flip(2)) for o, i in zip(out, x)]
    kept = [torch.equal(o, i) for o, i in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 16 < sum(flipped) < 48  # about half, drawn per image
    assert torch.equal(HFlip(0.0)(x), x) and torch.equal(HFlip(1.0)(x), x.flip(3))


def test_shift_moves_each_image_by_at_most_n_pixels_with_background_fill():
    x = torch.zeros(200, 1, 28, 28)
    x[:, :, 10:18, 10:18] = 1.0  # a bright square on black
    torch.manual_seed(0)
    out = Shift(2)(x)
    assert out.shape == x.shape
    assert torch.all(out.sum(dim=(1, 2, 3)) == 64)  # the square moved whole, nothing wrapped
    rows = out[:, 0].amax(2).nonzero()
    tops = torch.stack([rows[rows[:, 0] == i, 1].min() for i in range(200)])
    assert set((tops - 10).tolist()) == {-2, -1, 0, 1, 2}  # every shift in range occurs
    assert torch.equal(Shift(0)(x), x)


def test_shift_fills_with_the_normalized_background():
    x = (torch.zeros(8, 1, 28, 28) - 0.286) / 0.353  # black, standardized
    out = Shift(3)(x)
    assert torch.allclose(out, x)


def test_compose_applies_in_order():
    x = images(4)
    torch.manual_seed(5)
    out = Compose([HFlip(1.0), Shift(0)])(x)
    assert torch.equal(out, x.flip(3))


@pytest.mark.parametrize("option", ["hflip", "shift", "hflip_shift"])
def test_runs_with_augmentation_train_and_learn(tmp_path, tiny_env, caplog, option):
    with caplog.at_level(logging.INFO, logger="lenet_lab.run"):
        summary = train(
            compose_config(
                *QUIET,
                f"augmentation={option}",
                "optimizer=adam",
                "optimizer.lr=0.003",
                "trainer.epochs=3",
            ),
            tmp_path,
        )
    assert summary["status"] == Status.COMPLETED
    assert summary["training_step"] == "TrainStep"
    losses = [
        float(line.split(",")[1])
        for line in (tmp_path / "metrics.csv").read_text().splitlines()[1:]
    ]
    assert losses[-1] < losses[0] and summary["best_val_acc"] > 0.15  # it still learns
