"""train.py's side of a sweep: the pruning reporter and what the trial is told, on a real
in-memory Optuna trial (``optuna.create_study().ask()``) and real training on tiny data."""

from __future__ import annotations

import math
import sys

import optuna
import pytest

from conftest import REPO_ROOT, compose_config
from lab_optuna import TrialFailed
from lenet_lab.record import Status
from lenet_lab.run import train

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
from train import PruningReporter, to_sweeper  # noqa: E402

QUIET = (
    "trainer.progress_bar=false",
    "trainer.device=cpu",
    "trainer.save_samples=false",
    "trainer.save_curves=false",
    "trainer.save_checkpoint=false",
)


def run_with_trial(tmp_path, pruner, *overrides):
    study = optuna.create_study(direction="maximize", pruner=pruner)
    trial = study.ask()
    summary = train(
        compose_config(*QUIET, *overrides), tmp_path, callbacks=[PruningReporter(trial)]
    )
    return study, trial, summary


def test_reporter_reports_every_epoch_and_a_finished_trial_gets_its_record(tmp_path, tiny_env):
    study, trial, summary = run_with_trial(tmp_path, optuna.pruners.NopPruner(), "trainer.epochs=3")
    assert summary["status"] == Status.COMPLETED
    value = to_sweeper(summary, trial)
    assert value == summary["objective"] == summary["best_val_acc"]
    study.tell(trial, value)
    (frozen,) = study.trials
    assert sorted(frozen.intermediate_values) == [1, 2, 3]
    assert max(frozen.intermediate_values.values()) == summary["best_val_acc"]
    assert frozen.user_attrs == {
        "best_epoch": summary["best_epoch"],
        "epochs_run": 3,
        "val_split": "test",
        "resumed_from": [],
    }


def test_a_pruned_run_writes_its_summary_and_the_trial_is_pruned(tmp_path, tiny_env):
    # every val_acc is below 2.0: the pruner stops the run after its first epoch
    pruner = optuna.pruners.ThresholdPruner(lower=2.0)
    study, trial, summary = run_with_trial(tmp_path, pruner, "trainer.epochs=5")
    assert summary["status"] == Status.PRUNED and summary["epochs_run"] == 1
    assert summary["reason"].startswith("pruned at epoch 1")
    assert (tmp_path / "summary.json").is_file()
    with pytest.raises(optuna.TrialPruned, match="pruned at epoch 1"):
        to_sweeper(summary, trial)


def test_a_diverged_run_fails_its_trial_with_the_reason(tmp_path, tiny_env):
    study, trial, summary = run_with_trial(
        tmp_path, optuna.pruners.NopPruner(), "optimizer.lr=1e6", "trainer.epochs=2"
    )
    assert summary["status"] == Status.DIVERGED
    with pytest.raises(TrialFailed, match="^diverged: non-finite training loss"):
        to_sweeper(summary, trial)
    assert math.isnan(to_sweeper(summary, None))  # outside a lab_optuna sweep: NaN
