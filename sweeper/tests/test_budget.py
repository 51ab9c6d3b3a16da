"""The time budget (``timeout``, ``timeout_prune``) and the terminator, on the toy app run as
a real subprocess: when the sweep stops starting trials, and what it says about it."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from conftest import results, sweep

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'optuna.db'}"


def test_a_4_second_budget_stops_a_sweep_of_slow_trials_on_time(tmp_path, db):
    proc = sweep(
        tmp_path,
        f"hydra.sweeper.storage={db}",
        "hydra.sweeper.n_trials=50",
        "hydra.sweeper.timeout=4",
        "sleep=1.5",
    )
    trials = optuna.load_study(study_name="sphere", storage=db).trials
    assert 2 <= len(trials) <= 4, len(trials)  # 4 s / 1.5 s: 3 trials start, not 50
    assert all(t.state == TrialState.COMPLETE for t in trials)  # the running one finished
    span = (trials[-1].datetime_complete - trials[0].datetime_start).total_seconds()
    assert span <= 4 + 1.5 + 1.0, span  # the budget plus one trial
    out = results(tmp_path)
    assert out["ended"] == "timeout" and out["timeout"] == 4
    assert out["no_new_trial_after_s"] >= 4 and out["elapsed_s"] <= 4 + 1.5 + 1.0
    assert "time budget: timeout=4s reached" in proc.stdout
    assert "ended: timeout after" in proc.stdout


def test_timeout_prune_prunes_a_running_trial_at_its_next_report(tmp_path, db):
    proc = sweep(
        tmp_path,
        f"hydra.sweeper.storage={db}",
        "hydra.sweeper.n_trials=5",
        "hydra.sweeper.timeout=2",
        "hydra.sweeper.timeout_prune=true",
        "steps=10",
        "step_sleep=1",
    )
    trials = optuna.load_study(study_name="sphere", storage=db).trials
    assert len(trials) == 1 and trials[0].state == TrialState.PRUNED
    assert 1 <= len(trials[0].intermediate_values) <= 4  # pruned at its report after 2 s
    deadline = trials[0].user_attrs["deadline"]  # what the job read: epoch seconds
    assert abs(deadline - trials[0].datetime_start.timestamp() - 2) < 1.0
    assert "ended: timeout after" in proc.stdout


@pytest.mark.slow  # waits out a slow trial: --all
def test_without_timeout_prune_a_running_trial_finishes(tmp_path, db):
    sweep(
        tmp_path,
        f"hydra.sweeper.storage={db}",
        "hydra.sweeper.n_trials=5",
        "hydra.sweeper.timeout=1",
        "steps=3",
        "step_sleep=1",
    )
    trials = optuna.load_study(study_name="sphere", storage=db).trials
    assert len(trials) == 1 and trials[0].state == TrialState.COMPLETE
    assert len(trials[0].intermediate_values) == 3
    assert results(tmp_path)["ended"] == "timeout"


@pytest.mark.slow  # several sweeps: make test-all
def test_the_terminator_stops_a_stagnant_sweep_with_its_numbers(tmp_path, db):
    proc = sweep(
        tmp_path,
        f"hydra.sweeper.storage={db}",
        "hydra.sweeper.n_trials=20",
        "x=choice(0)",
        "y=choice(0)",
        "hydra.sweeper.terminator={patience:3,min_delta:0.01}",
    )
    trials = optuna.load_study(study_name="sphere", storage=db).trials
    assert len(trials) == 4  # the best at trial 0, then 3 trials without improvement
    line = next(ln for ln in proc.stdout.splitlines() if "terminator:" in ln)
    assert "best_value 0" in line and "trials_since_improvement 3" in line
    assert "min_delta 0.01" in line
    out = results(tmp_path)
    assert out["ended"] == "terminator"
    assert out["terminator"]["trials_since_improvement"] == 3


@pytest.mark.slow  # several sweeps: make test-all
def test_a_resumed_stagnant_study_gets_fresh_patience(tmp_path, db):
    args = (
        f"hydra.sweeper.storage={db}",
        "hydra.sweeper.n_trials=20",
        "x=choice(0)",
        "y=choice(0)",
        "hydra.sweeper.terminator={patience:2}",
    )
    sweep(tmp_path, *args)
    sweep(tmp_path, *args)
    assert len(optuna.load_study(study_name="sphere", storage=db).trials) == 3 + 2


def test_ended_says_n_trials_otherwise(tmp_path):
    sweep(tmp_path, "hydra.sweeper.n_trials=2", "hydra.sweeper.timeout=600")
    assert results(tmp_path)["ended"] == "n_trials"


@pytest.mark.parametrize(
    "override, message",
    [
        ("hydra.sweeper.timeout=-1", "hydra.sweeper.timeout=-1: seconds > 0"),
        ("hydra.sweeper.timeout=soon", "hydra.sweeper.timeout='soon': seconds > 0"),
        ("hydra.sweeper.timeout_prune=maybe", "hydra.sweeper.timeout_prune='maybe': true or"),
        (
            "hydra.sweeper.terminator={patience:0}",
            "hydra.sweeper.terminator.patience=0: an integer >= 1",
        ),
        (
            "hydra.sweeper.terminator={patience:2,min_delta:-1}",
            "hydra.sweeper.terminator.min_delta=-1: a number >= 0",
        ),
        (
            "hydra.sweeper.terminator={wait:2}",
            "hydra.sweeper.terminator.wait: not a key of the hydra.sweeper.terminator",
        ),
    ],
)
def test_bad_budget_settings_are_one_line_before_any_trial(tmp_path, override, message):
    proc = sweep(tmp_path, "hydra.sweeper.n_trials=2", override, check=False)
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "0").exists()
