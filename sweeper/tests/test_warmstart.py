"""Warm start (``enqueue``, ``enqueue_from``): known points run first, checked against the
search space before any trial, never re-run by a resumed sweep. The toy app runs as a real
subprocess; the check itself is also asserted in-process."""

from __future__ import annotations

import threading

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from conftest import sweep
from lab_optuna import names
from lab_optuna._loop.verdicts import DUPLICATE
from lab_optuna._search.warmstart import EnqueueError, points, queue

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'optuna.db'}"


def trials(db: str, name: str = "sphere") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=db).trials


def test_enqueued_params_run_first_and_count_within_n_trials(tmp_path, db):
    sweep(
        tmp_path,
        f"hydra.sweeper.storage={db}",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.enqueue=[{x:1.5,y:0},{x:-2.5,y:5}]",
    )
    got = trials(db)
    assert len(got) == 4
    assert got[0].params == {"x": 1.5, "y": 0} and got[1].params == {"x": -2.5, "y": 5}


def test_an_enqueued_subset_leaves_the_rest_to_the_sampler(tmp_path, db):
    sweep(
        tmp_path,
        f"hydra.sweeper.storage={db}",
        "hydra.sweeper.n_trials=1",
        "hydra.sweeper.enqueue=[{x:3}]",  # an int for a float range: x=3.0
    )
    (only,) = trials(db)
    assert only.params["x"] == 3.0 and only.params["y"] in (-5, 0, 5)


@pytest.mark.slow  # several sweeps: make test-all
def test_a_resumed_sweep_does_not_rerun_the_enqueued_points(tmp_path, db):
    args = (
        f"hydra.sweeper.storage={db}",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.enqueue=[{x:1.5,y:0},{x:-2.5}]",
    )
    sweep(tmp_path, *args)
    proc = sweep(tmp_path, *args)
    got = trials(db)
    assert len(got) == 6
    assert [t.params for t in got].count({"x": 1.5, "y": 0}) == 1
    assert "0 point(s) queued to run first, 2 already in the study" in proc.stdout


def test_enqueue_from_runs_another_studys_best_k_first(tmp_path, db):
    screen = optuna.create_study(study_name="screen", storage=db, direction="maximize")
    dists = {
        "x": FloatDistribution(-5.5, 5.5, step=0.5),
        "y": CategoricalDistribution([-5, 0, 5]),
        "lr": FloatDistribution(0.0, 1.0),  # not searched by "sphere": dropped
    }
    for value, x in [(1.0, 0.5), (9.0, 2.0), (3.0, -1.0), (7.0, 4.5)]:
        screen.add_trial(
            create_trial(params={"x": x, "y": 5, "lr": 0.1}, distributions=dists, value=value)
        )
    sweep(
        tmp_path,
        f"hydra.sweeper.storage={db}",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.enqueue_from={study:screen,top:2}",
    )
    got = trials(db)
    assert got[0].params == {"x": 2.0, "y": 5} and got[1].params == {"x": 4.5, "y": 5}
    assert len(got) == 3


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "hydra.sweeper.enqueue=[{x:1.0,y:0},{x:99}]",
            "hydra.sweeper.enqueue[1].x=99: outside the search space [-5.5, 5.5 step 0.5]",
        ),
        (
            "hydra.sweeper.enqueue=[{x:1.25}]",
            "hydra.sweeper.enqueue[0].x=1.25: outside the search space",
        ),
        (
            "hydra.sweeper.enqueue=[{y:1}]",
            "hydra.sweeper.enqueue[0].y=1: outside the search space choice(-5, 0, 5)",
        ),
        (
            "hydra.sweeper.enqueue=[{colour:1}]",
            "hydra.sweeper.enqueue[0].colour: not a searched key (searched: x, y)",
        ),
        ("hydra.sweeper.enqueue={x:1}", "hydra.sweeper.enqueue={'x': 1}: a list of"),
        (
            "hydra.sweeper.enqueue_from={study:nowhere,top:2}",
            "hydra.sweeper.enqueue_from.study=nowhere: no study 'nowhere'",
        ),
    ],
)
def test_a_bad_enqueue_is_one_line_and_no_trial(tmp_path, db, override, message):
    proc = sweep(tmp_path, f"hydra.sweeper.storage={db}", override, check=False)
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "0").exists()
    assert "sphere" not in optuna.get_all_study_names(db)  # no study created either


def test_the_check_reads_nested_and_added_keys():
    space = {
        "+model.lr": FloatDistribution(1e-4, 1.0, log=True),
        "model.depth": IntDistribution(1, 9, step=2),
        "act": CategoricalDistribution(["relu", "tanh"]),
    }
    got = points([{"model": {"lr": 0.01, "depth": 3.0}, "act": "tanh"}], space)
    assert got == [{"+model.lr": 0.01, "model.depth": 3, "act": "tanh"}]
    assert isinstance(got[0]["model.depth"], int)
    for bad, where in [
        ({"model.depth": 4}, "enqueue[0].model.depth=4"),  # off the step grid
        ({"model.lr": 0.0}, "enqueue[0].model.lr=0.0"),
        ({"act": "gelu"}, "enqueue[0].act='gelu'"),
        ({"act": True}, "enqueue[0].act=True"),
    ]:
        with pytest.raises(EnqueueError, match=r"outside the search space") as e:
            points([bad], space)
        assert where in str(e.value)


def test_workers_queueing_the_same_point_at_once_run_it_once(tmp_path, db):
    """Eight workers queue one point at the same instant (Optuna's exists-check and enqueue
    are two steps): one trial keeps it, every other copy is failed unrun, naming the first."""
    storage = optuna.storages.RDBStorage(db)
    optuna.create_study(study_name="sphere", storage=storage)
    point = {"x": 1.5}
    start, errors = threading.Barrier(8), []

    def worker() -> None:
        own = optuna.storages.RDBStorage(db)
        study = optuna.load_study(study_name="sphere", storage=own)
        start.wait()
        try:
            queue(study, [point], "enqueue", own)
        except Exception as e:  # noqa: BLE001 - reported by the assert below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    got = trials(db)
    live = [t for t in got if t.state == TrialState.WAITING]
    assert len(live) == 1, [(t.number, t.state) for t in got]
    for dup in got:
        if dup is not live[0]:
            assert dup.state == TrialState.FAIL
            assert dup.user_attrs[names.DUPLICATE_OF] == live[0].number
            assert dup.user_attrs[names.FAIL_REASON] == DUPLICATE
    assert live[0].number == min(t.number for t in got)
