"""The training run: L1, early stopping, plateau, divergence, and train.py end to end."""

from __future__ import annotations

import csv
import json
import logging
import math

import pytest
import torch

from conftest import CONF_DIR, compose_config
from lenet_lab import engine, regularizers
from lenet_lab.callbacks import EarlyStopping
from lenet_lab.components import build_components, build_scheduler
from lenet_lab.data import Split
from lenet_lab.model import LeNet5
from lenet_lab.record import METRIC_COLUMNS, Status
from lenet_lab.run import _warn_patience_conflict, objective, train

SUMMARY_KEYS = {
    "best_val_acc",
    "best_epoch",
    "epochs_run",
    "stopped_early",
    "status",
    "n_params",
    "wall_time_s",
    "device",
    "config",
}
QUIET = ("trainer.progress_bar=false", "trainer.device=cpu")


def read_metrics(path):
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def run_inprocess(tmp_path, *overrides):
    """``lenet_lab.run.train`` on the tiny data (FASHION_MNIST_ROOT set by ``tiny_env``)."""
    cfg = compose_config(
        *QUIET, "trainer.save_curves=false", "trainer.save_samples=false", *overrides
    )
    summary = train(cfg, tmp_path)
    return summary, read_metrics(tmp_path / "metrics.csv")[1]


# --------------------------------------------------------------------------- L1 (exercise 5)


def test_l1_parameters_are_the_conv_and_linear_weights():
    for kw in ({}, {"batchnorm": True}, {"dropout": 0.5}):
        model = LeNet5(**kw)
        expected = [
            model.c1.weight,
            model.c2.weight,
            model.f3.weight,
            model.f4.weight,
            model.f5.weight,
        ]
        got = regularizers.l1_parameters(model)
        assert len(got) == 5 and all(a is b for a, b in zip(got, expected))


def test_l1_penalty_is_sum_of_abs_weights():
    model = LeNet5(batchnorm=True)
    independent = sum(
        float(layer.weight.detach().abs().sum().double())
        for layer in (model.c1, model.c2, model.f3, model.f4, model.f5)
    )
    with torch.no_grad():
        penalty = regularizers.l1_penalty(regularizers.l1_parameters(model))
    assert float(penalty) == pytest.approx(independent, rel=1e-5)


def test_training_step_adds_exactly_coef_times_l1():
    """One SGD step (lr 1, no momentum) with and without L1 from the same weights and batch:
    loss + coef·Σ|w| has gradient grad + coef·sign(w) on the conv/linear weights only."""
    coef = 0.001
    torch.manual_seed(0)
    init = LeNet5().state_dict()
    x, y = torch.rand(16, 1, 28, 28), torch.arange(16) % 10

    def one_step(reg):
        model = LeNet5()
        model.load_state_dict(init)
        opt = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.0)
        step = engine.TrainStep(model, opt, loss_terms=reg.loss_terms(model))
        step.run_batch(Split(x, y), torch.arange(16))
        return model, float(step.loss_sum) / 16

    plain, loss_plain = one_step(regularizers.Regularizer())
    with_l1, loss_l1 = one_step(regularizers.L1(coef))
    assert loss_plain == pytest.approx(loss_l1)  # the logged loss is the data term
    for name in ("c1", "c2", "f3", "f4", "f5"):
        w0 = init[f"{name}.weight"]
        delta = getattr(with_l1, name).weight.detach() - getattr(plain, name).weight.detach()
        assert torch.allclose(delta, -coef * torch.sign(w0), atol=2e-6), name
        b_plain, b_l1 = getattr(plain, name).bias, getattr(with_l1, name).bias
        assert torch.allclose(b_plain, b_l1, atol=1e-7), f"{name}.bias is not penalized"


def test_l1_loss_difference_is_coef_times_sum_abs():
    """The training objective with L1 minus without is coef·Σ|w|, Σ taken independently."""
    coef = 0.001
    torch.manual_seed(1)
    model = LeNet5()
    x, y = torch.rand(8, 1, 28, 28), torch.arange(8)
    with torch.no_grad():
        data_term = torch.nn.functional.cross_entropy(model(x), y)
        with_l1 = data_term + coef * regularizers.l1_penalty(regularizers.l1_parameters(model))
        by_hand = sum(
            m.weight.abs().sum()
            for m in model.modules()
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
        )
    assert float(with_l1 - data_term) == pytest.approx(coef * float(by_hand), rel=1e-4)


# --------------------------------------------------------------------------- early stopping


@pytest.mark.parametrize(
    ("losses", "patience", "min_delta", "stop_epoch"),
    [
        # improves, then 5 epochs within 0.005 of the best: stops at the 5th of them
        ([1.0, 0.9, 0.898, 0.897, 0.896, 0.8955, 0.895, 0.5], 5, 0.005, 7),
        # slow drift: each step < min_delta but vs the best it accumulates past it
        ([1.0, 0.997, 0.994, 0.991, 0.988, 0.985, 0.982], 2, 0.005, None),
        # rising loss
        ([0.5, 0.6, 0.7, 0.8], 3, 0.0, 4),
        # an improvement resets the count
        ([1.0, 1.0, 1.0, 0.5, 0.6, 0.6, 0.6], 3, 0.005, 7),
        # patience 0: the first epoch without improvement stops
        ([1.0, 0.8, 0.9], 0, 0.0, 3),
        ([1.0, 0.8, 0.6, 0.4], 0, 0.0, None),
    ],
)
def test_early_stopping_on_scripted_losses(losses, patience, min_delta, stop_epoch):
    stopper = EarlyStopping(patience=patience, min_delta=min_delta)
    stopped = None
    for epoch, value in enumerate(losses, start=1):
        if stopper.step(value):
            stopped = epoch
            break
    assert stopped == stop_epoch


def test_early_stopping_in_a_run(tmp_path, tiny_env):
    # min_delta 10: no epoch after the first counts as an improvement
    summary, rows = run_inprocess(
        tmp_path,
        "early_stopping=val_loss",
        "early_stopping.patience=2",
        "early_stopping.min_delta=10",
        "trainer.epochs=6",
    )
    assert summary["status"] == Status.EARLY_STOPPED and summary["stopped_early"] is True
    assert summary["stop_epoch"] == summary["epochs_run"] == 3
    assert len(rows) == 3


# --------------------------------------------------------------------------- plateau scheduler


def plateau(*overrides):
    cfg = compose_config("scheduler=plateau", *overrides)
    opt = build_components(cfg, torch.device("cpu")).optimizer
    callback = build_scheduler(cfg, opt, epochs=10, steps_per_epoch=1)
    return opt, callback


def test_plateau_lowers_lr_on_scripted_losses():
    opt, sched = plateau("scheduler.patience=1", "scheduler.factor=0.5")
    assert (sched.interval, sched.monitor) == ("epoch", "val_loss")
    lrs = []
    for epoch, loss in enumerate([1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.5], start=1):
        sched.on_epoch_end(None, epoch, {"val_loss": loss})
        lrs.append(opt.param_groups[0]["lr"])
    # 2 epochs without improvement (> patience 1) halve the lr; the count restarts
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025])


def test_plateau_respects_min_lr():
    opt, sched = plateau("scheduler.patience=0", "scheduler.min_lr=0.05")
    for _ in range(5):
        sched.scheduler.step(1.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)


def test_plateau_lowers_lr_in_a_run(tmp_path, tiny_env):
    # threshold 100: no val-loss decrease counts, every epoch after the first is a plateau;
    # the lr column is the lr each epoch trained with
    summary, rows = run_inprocess(
        tmp_path,
        "scheduler=plateau",
        "scheduler.patience=0",
        "scheduler.threshold=100",
        "trainer.epochs=4",
    )
    assert summary["status"] == Status.COMPLETED
    lrs = [float(r["lr"]) for r in rows]
    assert lrs == pytest.approx([0.1, 0.1, 0.01, 0.001])


@pytest.mark.parametrize(
    ("sched_patience", "es_patience", "warns"),
    [(5, 5, True), (7, 5, True), (4, 5, True), (3, 5, False), (2, 5, False)],
)
def test_patience_conflict_warning(caplog, sched_patience, es_patience, warns):
    cfg = compose_config(
        "scheduler=plateau",
        f"scheduler.patience={sched_patience}",
        "early_stopping=val_loss",
        f"early_stopping.patience={es_patience}",
    )
    with caplog.at_level(logging.WARNING, logger="lenet_lab.run"):
        _warn_patience_conflict(cfg)
    conflicts = [r for r in caplog.records if "scheduler.patience" in r.getMessage()]
    assert bool(conflicts) == warns
    if warns:
        assert conflicts[0].levelno == logging.WARNING
        assert f"scheduler.patience={sched_patience}" in conflicts[0].getMessage()


def test_patience_conflict_warning_in_a_run(tmp_path, tiny_env, caplog):
    with caplog.at_level(logging.WARNING, logger="lenet_lab.run"):
        run_inprocess(
            tmp_path, "experiment=ex6_plateau", "scheduler.patience=5", "trainer.epochs=1"
        )
    assert any("early stopping will end" in r.getMessage() for r in caplog.records)


def test_no_conflict_warning_without_both():
    for overrides in (
        ["scheduler=plateau", "scheduler.patience=9"],
        ["early_stopping=val_loss", "early_stopping.patience=0"],
    ):
        cfg = compose_config(*overrides)
        _warn_patience_conflict(cfg)  # reads no missing key


# --------------------------------------------------------------------------- divergence


def test_divergence_is_one_signal_a_status_and_no_objective(run_train):
    proc = run_train("optimizer.lr=1e6", "trainer.epochs=2", *QUIET)
    assert proc.returncode == 0, proc.stderr
    assert "diverged: non-finite training loss" in proc.stdout + proc.stderr
    summary = json.loads((proc.out_dir / "summary.json").read_text())
    assert summary["status"] == Status.DIVERGED
    assert summary["objective"] is None  # NaN, which JSON writes as null
    assert "non-finite" in summary["reason"]
    assert "Traceback" not in proc.stderr


def test_objective_of_a_diverged_summary():
    assert math.isnan(objective({"status": Status.DIVERGED, "best_val_acc": 0.9}))
    assert objective({"status": Status.COMPLETED, "best_val_acc": 0.9}) == 0.9
    assert objective({"status": Status.COMPLETED, "final_val_acc": 0.8}, "final_val_acc") == 0.8


def test_divergence_returns_nan_through_hydra(tmp_path, tiny_env, hydra_inprocess):
    ret = hydra_inprocess("optimizer.lr=1e6", "trainer.epochs=1", *QUIET, run_dir=tmp_path)
    assert math.isnan(ret.return_value)  # the sweeper records a non-finite value as FAIL
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == Status.DIVERGED


# --------------------------------------------------------------------------- end to end


def test_train_py_end_to_end(run_train):
    proc = run_train("trainer.epochs=2", *QUIET)
    assert proc.returncode == 0, proc.stderr
    out = proc.out_dir
    header, rows = read_metrics(out / "metrics.csv")
    assert header == METRIC_COLUMNS
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(math.isfinite(float(r[c])) for r in rows for c in METRIC_COLUMNS)
    summary = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= summary.keys()
    assert summary["status"] == Status.COMPLETED and summary["epochs_run"] == 2
    assert summary["stopped_early"] is False and summary["n_params"] == 44_426
    assert summary["device"] == "cpu"
    assert 0.0 <= summary["best_val_acc"] <= 1.0
    assert summary["best_val_acc"] == max(float(r["val_acc"]) for r in rows)
    assert summary["best_epoch"] in (1, 2)
    assert summary["best_val_acc"] > 0.3, "tiny data is learnable: well above chance (0.1)"
    assert summary["objective"] == summary["best_val_acc"]
    assert summary["config"]["optimizer"]["lr"] == 0.1
    assert summary["config"]["trainer"]["epochs"] == 2
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "samples.png").is_file()
    assert (out / ".hydra" / "config.yaml").is_file()
    model = LeNet5()
    model.load_state_dict(torch.load(out / "best.pt", weights_only=True))  # strict
    val_acc = float(rows[summary["best_epoch"] - 1]["val_acc"])
    assert val_acc == summary["best_val_acc"]


def test_task_function_returns_best_val_acc_through_hydra(tmp_path, tiny_env, hydra_inprocess):
    ret = hydra_inprocess("trainer.epochs=2", *QUIET, run_dir=tmp_path)
    value = ret.return_value
    assert isinstance(value, float) and 0.0 <= value <= 1.0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert value == summary["best_val_acc"] == summary["objective"]
    assert ret.hydra_cfg.hydra.runtime.output_dir == str(tmp_path)


def test_optimized_metric_picks_the_summary_key(tmp_path, tiny_env, hydra_inprocess):
    ret = hydra_inprocess(
        "trainer.epochs=1", "optimized_metric=final_val_acc", *QUIET, run_dir=tmp_path
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert ret.return_value == summary["final_val_acc"] == summary["objective"]
    assert summary["optimized_metric"] == "final_val_acc"
    with pytest.raises(SystemExit) as exc:  # rejected before any training
        hydra_inprocess("trainer.epochs=1", "optimized_metric=nope", *QUIET, run_dir=tmp_path / "b")
    assert exc.value.code == 2
    assert not (tmp_path / "b" / "summary.json").exists()


def test_zero_epochs_scores_the_untrained_model(tmp_path, tiny_env, caplog):
    with caplog.at_level(logging.INFO, logger="lenet_lab.run"):
        summary, rows = run_inprocess(tmp_path, "trainer.epochs=0")
    assert rows == [] and summary["epochs_run"] == 0 and summary["status"] == Status.COMPLETED
    assert 0.0 <= summary["best_val_acc"] <= 1.0
    assert summary["best_epoch"] == 0  # epoch 0: the untrained model, not None
    said = [r.getMessage() for r in caplog.records]
    assert any(
        "trainer.epochs=0: nothing trained; val_acc of the untrained model" in m for m in said
    )
    assert not any("at epoch None" in m for m in said)


def test_same_seed_same_run(tmp_path, tiny_env):
    a, rows_a = run_inprocess(tmp_path / "a", "trainer.epochs=1", "seed=3")
    b, rows_b = run_inprocess(tmp_path / "b", "trainer.epochs=1", "seed=3")
    assert rows_a[0]["train_loss"] == rows_b[0]["train_loss"]
    assert a["best_val_acc"] == b["best_val_acc"]


PRESETS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_runs_one_epoch(tmp_path, tiny_env, hydra_inprocess, preset):
    ret = hydra_inprocess(
        f"experiment={preset}",
        "trainer.epochs=1",
        *QUIET,
        "trainer.save_samples=false",
        run_dir=tmp_path,
    )
    value = ret.return_value
    assert isinstance(value, float) and 0.0 <= value <= 1.0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == Status.COMPLETED and summary["epochs_run"] == 1
    assert summary["config"]["task_name"] == preset
    header, rows = read_metrics(tmp_path / "metrics.csv")
    assert header == METRIC_COLUMNS and len(rows) == 1
    if preset == "ex7_batchnorm":
        assert summary["n_params"] == 44_438
        # exercise 7.2: the stats before and after the normalization differ
        assert rows[0]["feat_in_mean"] != rows[0]["feat_out_mean"]
    else:
        assert rows[0]["feat_in_mean"] == rows[0]["feat_out_mean"]


# --------------------------------------------------------------------------- CUDA graph


@pytest.mark.cuda
def test_cuda_graph_step_matches_eager_and_follows_the_scheduler(tmp_path, tiny_env):
    """The graphed step trains like the eager one, and ReduceLROnPlateau reaches the graph."""
    common = (
        "trainer.device=cuda",
        "trainer.progress_bar=false",
        "trainer.epochs=3",
        "trainer.save_curves=false",
        "trainer.save_samples=false",
        "scheduler=plateau",
        "scheduler.patience=0",
        "scheduler.threshold=100",
    )
    runs = {}
    for graph in (False, True):
        cfg = compose_config(*common, f"trainer.cuda_graph={str(graph).lower()}")
        summary = train(cfg, tmp_path / str(graph))
        runs[graph] = (summary, read_metrics(tmp_path / str(graph) / "metrics.csv")[1])
    (eager, eager_rows), (graphed, graphed_rows) = runs[False], runs[True]
    assert graphed["status"] == eager["status"] == Status.COMPLETED
    assert [float(r["lr"]) for r in graphed_rows] == pytest.approx([0.1, 0.1, 0.01])
    assert float(graphed_rows[0]["train_loss"]) == pytest.approx(
        float(eager_rows[0]["train_loss"]), rel=1e-3
    )
    assert abs(graphed["best_val_acc"] - eager["best_val_acc"]) < 0.05


def test_a_momentum_cycling_scheduler_keeps_the_step_out_of_a_cuda_graph(caplog):
    """OneCycleLR cycles SGD's momentum every batch; a captured graph would keep the first
    value, so the graph is skipped with one line saying why (CPU check of the decision)."""
    from torch import nn

    from lenet_lab.components import Components
    from lenet_lab.regularizers import Regularizer
    from lenet_lab.run import make_step

    cfg = compose_config("scheduler=onecycle")
    model = LeNet5()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = build_scheduler(cfg, opt, epochs=2, steps_per_epoch=4)
    parts = Components(model, opt, nn.CrossEntropyLoss(), Regularizer())
    data = Split(torch.rand(8, 1, 28, 28), torch.arange(8))
    with caplog.at_level(logging.INFO, logger="lenet_lab.run"):
        step = make_step(parts, data, 4, graphable=True, scheduler=sched)
    assert type(step) is engine.TrainStep
    assert any("cycles momentum" in r.getMessage() for r in caplog.records)


@pytest.mark.slow  # a train.py run of several epochs: make test-all
def test_no_progress_bar_frames_when_output_is_not_a_terminal(run_train):
    """``make train > log``: the bar is for terminals; a captured log gets no \\r frames."""
    proc = run_train("trainer.epochs=2", "trainer.progress_bar=true")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "\r" not in proc.stdout + proc.stderr
    assert "epoch   2/2" in proc.stdout + proc.stderr
