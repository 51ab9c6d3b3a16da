"""Weight averaging (conf/averaging/): EMA and SWA of the weights are what a run evaluates
and checkpoints; the training itself is unchanged."""

from __future__ import annotations

import csv

import pytest
import torch
from torch import nn

from conftest import compose_config
from lenet_lab import engine
from lenet_lab.callbacks import WeightAveraging
from lenet_lab.errors import ConfigError
from lenet_lab.model import LeNet5
from lenet_lab.run import load_data, train
from lenet_lab.run_state import Run
from lenet_lab.validation import validate

QUIET = (
    "trainer.progress_bar=false",
    "trainer.device=cpu",
    "trainer.save_samples=false",
    "trainer.save_curves=false",
    "optimizer=adam",
    "optimizer.lr=0.003",
    "trainer.epochs=4",
    "seed=5",
)


def column(path, name: str) -> list[float]:
    with path.open() as f:
        return [float(row[name]) for row in csv.DictReader(f)]


def fake_run(model: nn.Module, epochs: int = 1, steps: int = 10) -> Run:
    return Run(None, None, model, None, epochs, steps, {})  # type: ignore[arg-type]


def test_ema_follows_the_warmed_up_decay_after_every_step():
    model = nn.Linear(1, 1, bias=False)
    run = fake_run(model)
    ema = WeightAveraging(decay=0.5)
    ema.on_train_start(run)
    expected = None
    for w in [1.0, 3.0, -2.0, 4.0, 0.5]:
        model.weight.data.fill_(w)
        ema.on_batch_end(run)
        n = ema.averaged.n_averaged.item() - 1  # updates before this one
        d = min(0.5, (1 + n) / (10 + n))
        expected = w if expected is None else d * expected + (1 - d) * w
    assert ema.averaged.module.weight.item() == pytest.approx(expected)
    assert run.evaluated is ema.averaged.module and run.model is model


def test_swa_is_the_mean_of_the_steps_after_start():
    model = nn.Linear(1, 1, bias=False)
    run = fake_run(model, epochs=2, steps=5)  # 10 steps, averaging from step 6 on (start 0.5)
    swa = WeightAveraging(decay=None, start=0.5)
    swa.on_train_start(run)
    for step in range(1, 11):
        model.weight.data.fill_(float(step))
        swa.on_batch_end(run)
        if step == 5:
            assert run.eval_model is None  # before start: the run's own weights
    assert swa.averaged.module.weight.item() == pytest.approx(sum(range(6, 11)) / 5)


@pytest.mark.parametrize("option", ["ema", "swa"])
def test_a_run_evaluates_and_checkpoints_the_averaged_weights(tmp_path, tiny_env, option):
    plain = train(compose_config(*QUIET, "averaging=none"), tmp_path / "none")
    cfg = compose_config(*QUIET, f"averaging={option}")
    averaged = train(cfg, tmp_path / option)
    a, b = tmp_path / "none" / "metrics.csv", tmp_path / option / "metrics.csv"
    assert column(a, "train_loss") == column(b, "train_loss")  # the same training
    assert column(a, "val_loss")[-1] != column(b, "val_loss")[-1]  # another model evaluated
    if option == "swa":  # start 0.75 of 4 epochs: epochs 1-3 evaluate the run's own weights
        assert column(a, "val_loss")[:3] == column(b, "val_loss")[:3]
    model = LeNet5()
    model.load_state_dict(torch.load(tmp_path / option / "best.pt"))  # a plain LeNet-5 file
    _, val = load_data(cfg, validate(cfg))
    assert engine.evaluate(model, val).acc == averaged["best_val_acc"]
    assert "averaging" in plain["choices"] and "averaging" in averaged["choices"]  # recorded


def test_a_bad_decay_is_one_line_naming_the_key(tiny_env):
    with pytest.raises(ConfigError, match=r"averaging.decay must be in \(0, 1\) or null"):
        validate(compose_config(*QUIET, "averaging=ema", "averaging.decay=1.5"))
