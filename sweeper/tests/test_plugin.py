"""The lab_optuna sweeper as any Hydra app uses it: a toy app of a framework user's own
(toy_app/sphere.py, the shape of hydra-optuna-sweeper's example), run as a real
subprocess. These re-express hydra-optuna-sweeper's own test suite (grammar, samplers,
multi-objective, deprecated search_space, custom_search_space, failure rate, persistence)
plus what the project adds (pruning, retries of dead jobs, slots, one-line errors)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from conftest import TOY_APP as APP
from conftest import default_sigint, results, sweep, wait_for
from lab_optuna._search import space

optuna.logging.set_verbosity(optuna.logging.WARNING)


def study_of(url: str, name: str = "sphere") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url)


@pytest.fixture
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'optuna.db'}"


# ---------------------------------------------------------------- the grammar
@pytest.mark.parametrize(
    "override, expected",
    [
        ("key=choice(1,2)", CategoricalDistribution([1, 2])),
        ("key=choice(true, false)", CategoricalDistribution([True, False])),
        ("key=choice('hello', 'world')", CategoricalDistribution(["hello", "world"])),
        ("key=shuffle(range(1,3))", CategoricalDistribution((1, 2))),
        ("key=range(1,3)", IntDistribution(1, 3)),
        ("key=range(1,9,step=2)", IntDistribution(1, 9, step=2)),
        ("key=interval(1, 5)", FloatDistribution(1, 5)),
        ("key=int(interval(1, 5))", IntDistribution(1, 5)),
        ("key=tag(log, interval(1, 5))", FloatDistribution(1, 5, log=True)),
        ("key=tag(log, int(interval(1, 5)))", IntDistribution(1, 5, log=True)),
        ("key=range(0.5, 5.5, step=1)", FloatDistribution(0.5, 5.5, step=1)),
    ],
)
def test_overrides_become_optuna_distributions(override, expected):
    dist = space.from_overrides([override])[0]["key"]
    if isinstance(expected, CategoricalDistribution):  # shuffle() orders at random
        assert sorted(map(str, dist.choices)) == sorted(map(str, expected.choices))
    else:
        assert dist == expected


@pytest.mark.parametrize(
    "node, expected",
    [
        ({"type": "categorical", "choices": [1, 2]}, CategoricalDistribution([1, 2])),
        ({"type": "int", "low": 0, "high": 10}, IntDistribution(0, 10)),
        ({"type": "int", "low": 0, "high": 10, "step": 2}, IntDistribution(0, 10, step=2)),
        ({"type": "int", "low": 1, "high": 100, "log": True}, IntDistribution(1, 100, log=True)),
        ({"type": "float", "low": 0, "high": 1}, FloatDistribution(0, 1)),
        ({"type": "float", "low": 0, "high": 1, "step": 0.1}, FloatDistribution(0, 1, step=0.1)),
        (
            {"type": "float", "low": 1e-4, "high": 1, "log": True},
            FloatDistribution(1e-4, 1, log=True),
        ),
    ],
)
def test_deprecated_search_space_entries(node, expected):
    assert space.from_config("key", node) == expected


def test_deprecated_search_space_bad_type_names_the_key():
    with pytest.raises(space.SearchSpaceError, match=r"search_space.key.type='uniform'"):
        space.from_config("key", {"type": "uniform", "low": 0, "high": 1})


def test_fixed_values_and_later_overrides_win():
    dists, fixed = space.from_overrides(
        ["x=interval(0,1)", "y=choice(1,2)", "y=3", "z=abc", "x=tag(log,interval(0.1,1))"]
    )
    assert dists == {"x": FloatDistribution(0.1, 1, log=True)}
    assert fixed == {"y": "3", "z": "abc"}


def test_reversed_interval_is_one_line_naming_the_key():
    with pytest.raises(space.SearchSpaceError, match=r"^lr: interval\(0.1,0.01\): .*low"):
        space.from_overrides(["lr=interval(0.1,0.01)"])


def test_grid_values_of_choices_and_ranges():
    dists, _ = space.from_overrides(
        ["a=choice(x,y)", "b=range(0,4,step=2)", "c=range(0.5,1.5,step=0.5)"]
    )
    assert space.grid(dists) == {"a": ["x", "y"], "b": [0, 2, 4], "c": [0.5, 1.0, 1.5]}
    with pytest.raises(space.SearchSpaceError, match="grid sampler"):
        space.grid(space.from_overrides(["d=interval(0,1)"])[0])


# ---------------------------------------------------------------- sweeps of the toy app
def test_single_objective_in_memory(tmp_path):
    proc = sweep(tmp_path, "hydra.sweeper.n_trials=8")
    res = results(tmp_path)
    trials = [json.loads((tmp_path / "out" / str(n) / "trial.json").read_text()) for n in range(8)]
    assert [t["number"] for t in trials] == list(range(8))
    assert all(t["state"] == "COMPLETE" for t in trials)
    values = [t["values"][0] for t in trials]
    assert res["best_value"] == min(values)
    best = trials[values.index(min(values))]
    assert res["best_params"] == best["params"]
    assert res["best_value"] == best["params"]["x"] ** 2 + best["params"]["y"] ** 2
    assert "[8/8] trial 7 COMPLETE" in proc.stdout + proc.stderr


def test_command_line_sweep_and_fixed_value(tmp_path):
    sweep(tmp_path, "hydra.sweeper.n_trials=4", "x=interval(0,1)", "y=2")
    csv = (tmp_path / "out" / "study_trials.csv").read_text().splitlines()
    assert "params_x" in csv[0] and "params_y" not in csv[0]  # y fixed, not searched
    for n in range(4):
        record = json.loads((tmp_path / "out" / str(n) / "trial.json").read_text())
        assert 0 <= record["params"]["x"] <= 1
        assert record["values"][0] == pytest.approx(record["params"]["x"] ** 2 + 4)


@pytest.mark.slow  # several sweeps: make test-all
def test_sqlite_resume_adds_trials_without_replays(tmp_path, db):
    sweep(tmp_path, f"hydra.sweeper.storage={db}", "hydra.sweeper.n_trials=3", "x=interval(-5,5)")
    first = [t.params for t in study_of(db).trials]
    sweep(tmp_path, f"hydra.sweeper.storage={db}", "hydra.sweeper.n_trials=3", "x=interval(-5,5)")
    trials = study_of(db).trials
    assert [t.number for t in trials] == list(range(6))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert all(t.params not in first for t in trials[3:]), "the resumed sweep replayed"
    assert sorted(int(p.name) for p in (tmp_path / "out").iterdir() if p.name.isdigit()) == list(
        range(6)
    )  # job dir = trial number: nothing overwritten


SLOW = pytest.mark.slow  # --all: the same path as the kept cases, another option


@pytest.mark.parametrize(
    "sampler", ["tpe", "random", *(pytest.param(s, marks=SLOW) for s in ("cmaes", "qmc", "gp"))]
)
def test_each_sampler_option(tmp_path, sampler):
    sweep(
        tmp_path,
        f"hydra/sweeper/sampler={sampler}",
        "hydra.sweeper.n_trials=3",
        "x=interval(-1,1)",
        "y=interval(-1,1)",
    )
    assert len(results(tmp_path)["best_params"]) == 2


def test_sampler_options_hold_only_their_own_keys(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(APP),
            "hydra/sweeper/sampler=random",
            "--cfg",
            "hydra",
            "-p",
            "hydra.sweeper.sampler",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert yaml.safe_load(proc.stdout) == {"_target_": "optuna.samplers.RandomSampler", "seed": 123}


@pytest.mark.slow  # several sweeps: make test-all
def test_grid_sampler_runs_every_point_once(tmp_path, db):
    sweep(
        tmp_path,
        "hydra/sweeper/sampler=grid",
        f"hydra.sweeper.storage={db}",
        "hydra.sweeper.n_trials=20",
        "x=choice(0,1)",
        "y=range(0,2)",
    )
    points = sorted((t.params["x"], t.params["y"]) for t in study_of(db).trials)
    assert points == [(x, y) for x in (0, 1) for y in (0, 1, 2)]
    proc = sweep(
        tmp_path,
        "hydra/sweeper/sampler=grid",
        f"hydra.sweeper.storage={db}",
        "hydra.sweeper.n_trials=20",
        "x=choice(0,1)",
        "y=range(0,2)",
    )
    assert len(study_of(db).trials) == 6 and "0 of the grid's points left" in proc.stdout


def test_multi_objective_pareto_front(tmp_path, db):
    sweep(
        tmp_path,
        "hydra/sweeper/sampler=nsgaii",
        "hydra.sweeper.sampler.population_size=4",
        "hydra.sweeper.direction=[minimize,minimize]",
        f"hydra.sweeper.storage={db}",
        "hydra.sweeper.n_trials=8",
        "objectives=2",
        "x=interval(-1,3)",
        "y=interval(-1,1)",
    )
    solutions = results(tmp_path)["solutions"]
    best = study_of(db).best_trials
    assert sorted(s["trial"] for s in solutions) == sorted(t.number for t in best)
    for s in solutions:
        assert set(s) >= {"params", "values"} and len(s["values"]) == 2
        others = [t.values for t in study_of(db).trials]
        assert not any(
            o[0] <= s["values"][0] and o[1] <= s["values"][1] and o != s["values"] for o in others
        ), "a Pareto solution is dominated"


def test_deprecated_search_space_key(tmp_path):
    proc = sweep(
        tmp_path,
        "hydra.sweeper.params=null",
        "hydra.sweeper.n_trials=3",
        "+hydra.sweeper.search_space.x={type:float,low:-1,high:1}",
        "+hydra.sweeper.search_space.y={type:categorical,choices:[0,1]}",
    )
    params = results(tmp_path)["best_params"]
    assert -1 <= params["x"] <= 1 and params["y"] in (0, 1), proc.stderr


def test_deprecated_search_space_warns(tmp_path):
    """As hydra-optuna-sweeper: search_space still works, with a UserWarning to move it."""
    proc = sweep(
        tmp_path,
        "hydra.sweeper.params=null",
        "hydra.sweeper.n_trials=1",
        "+hydra.sweeper.search_space.x={type:float,low:-1,high:1}",
    )
    warned = [ln for ln in proc.stderr.splitlines() if "UserWarning:" in ln]
    assert len(warned) == 1, proc.stderr[-2000:]
    assert "hydra.sweeper.search_space is deprecated" in warned[0]
    assert "hydra.sweeper.params" in warned[0]


def test_params_win_over_search_space_with_a_warning(tmp_path):
    """As hydra-optuna-sweeper: with both set, params is the search space and search_space
    is ignored with a UserWarning (no error)."""
    proc = sweep(
        tmp_path,
        "hydra.sweeper.n_trials=2",
        "+hydra.sweeper.search_space.z={type:float,low:0,high:1}",
    )
    warned = [ln for ln in proc.stderr.splitlines() if "UserWarning:" in ln]
    assert len(warned) == 1 and "search_space is ignored" in warned[0], proc.stderr[-2000:]
    assert set(results(tmp_path)["best_params"]) == {"x", "y"}  # the toy app's params


def test_search_space_warnings_in_process():
    from lab_optuna._keys.settings import Settings
    from lab_optuna._search.plan import make_plan

    legacy = {"x": {"type": "int", "low": 0, "high": 3}}
    with pytest.warns(UserWarning, match=r"search_space is deprecated"):
        plan = make_plan(Settings.from_config({"search_space": legacy}), [])
    assert plan.space == {"x": IntDistribution(0, 3)}
    both = {"search_space": legacy, "params": {"y": "choice(1, 2)"}}
    with pytest.warns(UserWarning, match=r"search_space is ignored"):
        plan = make_plan(Settings.from_config(both), [])
    assert plan.space == {"y": CategoricalDistribution([1, 2])}


@pytest.mark.slow  # several sweeps: make test-all
def test_custom_search_space_adds_conditional_params(tmp_path, db):
    sweep(
        tmp_path,
        f"hydra.sweeper.storage={db}",
        "hydra.sweeper.n_trials=8",
        "hydra.sweeper.custom_search_space=sphere.add_z",
        "x=interval(-1,1)",
    )
    for t in study_of(db).trials:
        assert ("z" in t.params) == (t.params["x"] > 0)


@pytest.mark.slow  # several sweeps: make test-all
def test_pins_chain_through_phases(tmp_path, db):
    """b pins a's best x; c pins b's best (y and, through b's record, x), drops y
    (pin_exclude) and fixes z to b's best trial's user attribute x_squared."""
    base = (f"hydra.sweeper.storage={db}", "hydra.sweeper.n_trials=3", "hydra.sweeper.params=null")
    sweep(tmp_path, *base, "hydra.sweeper.study_name=a", "x=interval(-1,1)", "y=0")
    sweep(
        tmp_path,
        *base,
        "hydra.sweeper.study_name=b",
        "hydra.sweeper.pin_from=a",
        "y=interval(-1,1)",
    )
    best_a, best_b = study_of(db, "a").best_trial, study_of(db, "b").best_trial
    assert study_of(db, "b").user_attrs["pinned"] == {"x": best_a.params["x"]}
    assert all(float(t.user_attrs["x"]) == best_a.params["x"] for t in study_of(db, "b").trials)
    sweep(
        tmp_path,
        *base,
        "hydra.sweeper.study_name=c",
        "hydra.sweeper.pin_from=b",
        "hydra.sweeper.pin_exclude=[y]",
        "+hydra.sweeper.pin_user_attrs.z=x_squared",
    )
    pinned = yaml.safe_load((tmp_path / "out" / "pinned.yaml").read_text())
    assert pinned == {"x": best_a.params["x"], "z": best_b.user_attrs["x_squared"]}
    for t in study_of(db, "c").trials:
        assert t.value == pytest.approx(best_a.params["x"] ** 2 + 1)  # y back to its default 1


def test_pinning_a_missing_user_attribute_is_one_line(tmp_path, db):
    base = (f"hydra.sweeper.storage={db}", "hydra.sweeper.n_trials=1")
    sweep(tmp_path, *base, "hydra.sweeper.study_name=a")
    proc = sweep(
        tmp_path,
        *base,
        "hydra.sweeper.study_name=b",
        "hydra.sweeper.pin_from=a",
        "+hydra.sweeper.pin_user_attrs.z=nothing",
        check=False,
    )
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert errors == [
        "error: hydra.sweeper.pin_user_attrs.z=nothing: trial 0 of study 'a' has "
        "no user attribute 'nothing'"
    ], proc.stderr[-2000:]


# ---------------------------------------------------------------- outcomes
def test_crashes_stop_at_the_failure_rate(tmp_path):
    proc = sweep(tmp_path, "error=true", "hydra.sweeper.n_trials=5", check=False)
    assert proc.returncode == 1
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert errors and "simulated failure" in errors[0] and "max_failure_rate=0.0" in errors[0]
    assert "Traceback" not in proc.stderr
    assert (tmp_path / "out" / "0").is_dir() and not (tmp_path / "out" / "1").exists()


def test_crashes_below_the_failure_rate_are_recorded(tmp_path, db):
    sweep(
        tmp_path,
        f"hydra.sweeper.storage={db}",
        "hydra.sweeper.n_trials=8",
        "hydra.sweeper.max_failure_rate=0.9",
        "error=choice(true,false)",
    )
    trials = study_of(db).trials
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert failed and len(trials) == 8
    assert all(t.params["error"] is True for t in failed)
    assert all(t.user_attrs["fail_reason"] == "RuntimeError: simulated failure" for t in failed)


def test_non_finite_results_fail_without_counting_as_crashes(tmp_path, db):
    sweep(
        tmp_path,
        f"hydra.sweeper.storage={db}",
        "hydra.sweeper.n_trials=6",
        "nan=choice(true,false)",
    )  # max_failure_rate 0.0: a crash would stop it
    trials = study_of(db).trials
    assert len(trials) == 6
    for t in trials:
        assert t.state == (TrialState.FAIL if t.params["nan"] else TrialState.COMPLETE)
        if t.params["nan"]:
            assert "non-finite" in t.user_attrs["fail_reason"]


def test_all_trials_failing_exits_non_zero(tmp_path):
    proc = sweep(tmp_path, "nan=true", "hydra.sweeper.n_trials=3", check=False)
    assert proc.returncode == 1 and "all 3 trials of this sweep failed" in proc.stderr


def test_pruning_with_a_pruner_option(tmp_path, db):
    sweep(
        tmp_path,
        f"hydra.sweeper.storage={db}",
        "hydra/sweeper/pruner=median",
        "hydra.sweeper.pruner.n_startup_trials=1",
        "hydra.sweeper.n_trials=10",
        "steps=5",
        "x=choice(0,4)",
        "y=0",
    )
    trials = study_of(db).trials
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned and all(t.params["x"] == 4 for t in pruned)
    assert all(len(t.intermediate_values) < 5 for t in pruned)


def test_max_total_trials_caps_the_study(tmp_path, db):
    proc = sweep(
        tmp_path,
        f"hydra.sweeper.storage={db}",
        "hydra.sweeper.n_trials=5",
        "hydra.sweeper.max_total_trials=2",
    )
    assert len(study_of(db).trials) == 2 and "max_total_trials=2" in proc.stdout


# ---------------------------------------------------------------- bad settings: one line
@pytest.mark.parametrize(
    "override, message",
    [
        ("hydra.sweeper.direction=maximise", "hydra.sweeper.direction='maximise': use minimize"),
        ("hydra.sweeper.n_trials=-2", "hydra.sweeper.n_trials=-2: an integer >= 0"),
        ("x=interval(5,1)", "x: interval(5,1): `low <= high`"),
        ("hydra.sweeper.storage=nonsense", "hydra.sweeper.storage=nonsense: not a database URL"),
        (
            "hydra.sweeper.storage=mysql://u:secret@localhost/db",
            "driver 'MySQLdb' is not installed",
        ),  # noqa: E501
        pytest.param(
            "hydra.sweeper.storage=postgresql://u:secret@127.0.0.1:9/db",
            "u:***@127.0.0.1:9/db: cannot connect",
            marks=SLOW,  # seconds of connection attempts before its one line
        ),
        ("+hydra.sweeper.sampler.bogus=1", "hydra.sweeper.sampler (optuna.samplers.TPESampler)"),
        ("+hydra.sweeper.colour=blue", "hydra.sweeper.colour: not a key of the lab_optuna sweeper"),
        ("hydra.sweeper.importances=[shap]", "importances: 'shap' is not an evaluator (use ped"),
        ("hydra.sweeper.n_jobs=two", "hydra.sweeper.n_jobs='two': an integer"),
        ("hydra.sweeper.async_slots=1", "hydra.sweeper.async_slots=1: true or false"),
        (
            "+hydra.sweeper.enqueue_from={study:s,tops:2}",
            "hydra.sweeper.enqueue_from.tops: not a key of the hydra.sweeper.enqueue_from",
        ),
        ("hydra.sweeper.params_from={take:top}", "hydra.sweeper.params_from.study: missing"),
        (  # hydra-optuna-sweeper's multi-objective sampler, gone from Optuna
            "hydra/sweeper/sampler=motpe",
            "hydra/sweeper/sampler=motpe: Optuna removed MOTPESampler; use "
            "hydra/sweeper/sampler=tpe (it handles several objectives) or nsgaii",
        ),
    ],
)
def test_bad_settings_are_one_line_before_any_trial(tmp_path, override, message):
    proc = sweep(tmp_path, "hydra.sweeper.n_trials=2", override, check=False)
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "secret" not in proc.stderr + proc.stdout
    assert not (tmp_path / "out" / "0").exists()


# ---------------------------------------------------------------- faults and slots
def _popen(tmp: Path, *overrides: str) -> subprocess.Popen:
    cmd = [sys.executable, str(APP), "-m", f"hydra.sweep.dir={tmp / 'out'}", *overrides]
    return subprocess.Popen(
        cmd,
        cwd=tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=default_sigint,
    )


def _states(url: str) -> list[TrialState]:
    try:
        return [t.state for t in study_of(url).trials]
    except KeyError:
        return []


BEATS = ("hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=2")


def _reported(url: str) -> int:
    """Steps the study's first trial has reported (0 before it exists)."""
    try:
        return len(study_of(url).trials[0].intermediate_values)
    except (KeyError, IndexError):
        return 0


@pytest.mark.slow  # several sweeps: make test-all
def test_surviving_worker_reclaims_a_killed_workers_trial(tmp_path, db):
    """Worker A is killed during its trial; worker B, already sweeping, fails it as stale
    before its next trial and runs its params again (lineage in user attributes)."""
    a = _popen(
        tmp_path, f"hydra.sweeper.storage={db}", "hydra.sweeper.n_trials=1", "sleep=60", *BEATS
    )
    try:
        wait_for(lambda: _states(db) == [TrialState.RUNNING], 60, "worker A's trial")
        time.sleep(1.0)  # its job has started beating
    finally:
        a.kill()
        a.communicate()
    proc = sweep(
        tmp_path,
        f"hydra.sweeper.storage={db}",
        "hydra.sweeper.n_trials=2",
        "sleep=choice(3)",
        *BEATS,
    )
    trials = study_of(db).trials
    killed = trials[0]
    (retry,) = [t for t in trials if t.user_attrs.get("retry_of") == 0]
    assert killed.state == TrialState.FAIL
    assert [t.state for t in trials[1:]] == [TrialState.COMPLETE] * 2
    assert retry.params["x"] == killed.params["x"] and retry.params["y"] == killed.params["y"]
    assert retry.user_attrs["retry_of"] == 0 and retry.user_attrs["retries"] == 1
    assert "stale" in retry.user_attrs["retry_reason"]
    assert "continued by a new trial" in proc.stdout


def test_a_killed_workers_trial_continues_from_its_checkpoint(tmp_path, db):
    """Worker A is killed (SIGKILL) part-way through a resumable trial; the next sweep fails
    it as stale and continues it: the same params, the steps reported before kept (one
    unbroken curve for the pruner), the app resuming after its last saved step, in the
    checkpoint folder of the lineage."""
    app = ("checkpoint=true", "steps=10", "step_sleep=0.3")
    a = _popen(tmp_path, f"hydra.sweeper.storage={db}", "hydra.sweeper.n_trials=1", *app, *BEATS)
    try:
        wait_for(lambda: _reported(db) >= 4, 60, "4 steps reported")
    finally:
        a.kill()
        a.communicate()
    before = dict(study_of(db).trials[0].intermediate_values)
    time.sleep(2.5)  # past the grace period: the killed job's trial is stale
    proc = sweep(tmp_path, f"hydra.sweeper.storage={db}", "hydra.sweeper.n_trials=1", *app, *BEATS)
    killed, continued = study_of(db).trials
    assert killed.state == TrialState.FAIL and "stale" in continued.user_attrs["retry_reason"]
    assert continued.state == TrialState.COMPLETE and continued.params == killed.params
    assert continued.user_attrs["retry_of"] == 0
    assert continued.user_attrs["continued_from_step"] == max(before)
    lost = len(before) - continued.user_attrs["resumed_at"]
    assert 0 <= lost <= 1  # at most the step it was in when killed
    assert sorted(continued.intermediate_values) == list(range(10))
    assert all(continued.intermediate_values[k] == v for k, v in before.items())
    folder = Path(killed.user_attrs["checkpoint_dir"])
    assert continued.user_attrs["checkpoint_dir"] == str(folder)
    assert folder == (tmp_path / "out" / "0" / "checkpoint").resolve()
    assert (folder / "next_step.json").read_text() == "10"
    assert "continued by a new trial" in proc.stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=SLOW)])
def test_a_signal_keeps_finished_trials_and_marks_the_running_one(tmp_path, db, signum):
    """SIGTERM (what SLURM sends when an allocation ends) is handled like Ctrl-C: the finished
    trial stays COMPLETE, the running one is FAIL naming the signal, resuming is explained."""
    seeded = optuna.create_study(study_name="sphere", storage=db)
    seeded.enqueue_trial({"sleep": 0})
    seeded.enqueue_trial({"sleep": 30})
    proc = _popen(
        tmp_path,
        f"hydra.sweeper.storage={db}",
        "hydra.sweeper.n_trials=3",
        "sleep=choice(0,30)",
        *BEATS,
    )
    try:
        wait_for(
            lambda: _states(db)[:2] == [TrialState.COMPLETE, TrialState.RUNNING],
            60,
            "one trial done, one running",
        )
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, out[-2000:]
    assert "Traceback" not in out
    found = study_of(db).trials
    assert len(found) == 3, [(t.number, t.state, t.user_attrs) for t in found]
    done, stopped, continuation = found
    assert done.state == TrialState.COMPLETE
    assert stopped.state == TrialState.FAIL
    assert stopped.user_attrs["fail_reason"] == f"interrupted ({signum.name} to the sweeper)"
    assert "Resume with the same command" in out
    # queued to continue the interrupted trial when the sweep runs again
    assert continuation.state == TrialState.WAITING and continuation.params == stopped.params
    assert continuation.user_attrs["retry_of"] == 1


@pytest.mark.slow  # several sweeps: make test-all
@pytest.mark.parametrize("async_slots", [True, False])
def test_slots_start_a_trial_when_one_ends(tmp_path, db, async_slots):
    """n_jobs=2 on a launcher running jobs concurrently (submitit's local executor): one
    long trial and three short ones. Asynchronous slots run the short ones beside the long
    one; a batch waits for the long one before starting the third trial."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    study = optuna.create_study(study_name="sphere", storage=db)
    for s in (8, 0, 0, 0):
        study.enqueue_trial({"sleep": s})
    sweep(
        tmp_path,
        f"hydra.sweeper.storage={db}",
        "hydra/launcher=submitit_local",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.n_jobs=2",
        "sleep=choice(0,8)",
        f"hydra.sweeper.async_slots={str(async_slots).lower()}",
        timeout=300,
    )
    trials = study_of(db).trials
    assert all(t.state == TrialState.COMPLETE for t in trials)
    long = trials[0]
    third = trials[2]
    if async_slots:
        assert third.datetime_start < long.datetime_complete
    else:
        assert third.datetime_start >= long.datetime_complete
    records = [json.loads(p.read_text()) for p in (tmp_path / "out").rglob("trial.json")]
    assert sorted(r["number"] for r in records) == [0, 1, 2, 3]


def test_sigint_ignored_by_the_test_runner_does_not_matter():
    """The suite may run with SIGINT ignored (``nohup make test &``): the job-side deferral
    still delivers a Ctrl-C once the write is done when a handler is installed."""
    from lab_optuna._job.task import sigint_deferred

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        done = []
        with pytest.raises(KeyboardInterrupt):
            with sigint_deferred():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
                done.append("write")
        assert done == ["write"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.slow  # several sweeps: make test-all
def test_params_from_a_screening_study(tmp_path, db):
    """A random screen over x, y and w (w does nothing): the top-2 phase searches x and y
    as screened; the rest phase searches w with the first phase's best pinned."""
    base = (f"hydra.sweeper.storage={db}", "hydra.sweeper.params=null")
    sweep(
        tmp_path,
        *base,
        "hydra/sweeper/sampler=random",
        "hydra.sweeper.study_name=screen",
        "hydra.sweeper.n_trials=24",
        "x=interval(-5,5)",
        "y=interval(-4,4)",
        "+w=interval(0,1)",
    )
    top = sweep(
        tmp_path,
        *base,
        "hydra.sweeper.study_name=first",
        "hydra.sweeper.n_trials=3",
        "+hydra.sweeper.params_from={study:screen,take:top,count:2}",
    )
    first = study_of(db, "first")
    assert set(first.trials[0].distributions) == {"x", "y"}
    assert first.trials[0].distributions["x"] == FloatDistribution(-5, 5)
    assert "params from study 'screen' (top 2 of 3" in top.stdout
    sweep(
        tmp_path,
        *base,
        "hydra.sweeper.study_name=second",
        "hydra.sweeper.n_trials=2",
        "+hydra.sweeper.params_from={study:screen,take:rest,count:2}",
        "hydra.sweeper.pin_from=first",
    )
    second = study_of(db, "second")
    assert set(second.trials[0].distributions) == {"+w"}
    assert float(second.trials[0].user_attrs["x"]) == first.best_trial.params["x"]


def test_an_interrupted_sweep_finds_a_finished_jobs_record(tmp_path):
    """On Ctrl-C a job that had finished but was not told yet is recorded from its
    ``trial.json``, found under the sweep's subdir pattern for its job number."""
    from omegaconf import OmegaConf

    from lab_optuna._job.trial_json import record_of

    (tmp_path / "trial_5").mkdir()
    (tmp_path / "trial_5" / "trial.json").write_text(
        json.dumps({"number": 5, "state": "COMPLETE", "values": [0.9]})
    )
    cfg = OmegaConf.create(
        {
            "hydra": {
                "sweep": {"dir": str(tmp_path), "subdir": "trial_${hydra.job.num}"},
                "job": {"num": None},
            }
        }
    )
    OmegaConf.set_readonly(cfg, True)
    assert record_of(cfg, 5)["values"] == [0.9]
    assert record_of(cfg, 6) == {}
