"""Values per slot (``hydra.sweeper.slot_overrides``) on the toy app, run as a real sweep:
concurrent trials (submitit's local executor) never share a slot's value; the slot is in the
trial's user attributes and its ``trial.json``; bad settings stop the sweep in one line."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from test_plugin import study_of, sweep

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'optuna.db'}"


def records(tmp: Path) -> dict[int, dict]:
    found = [json.loads(p.read_text()) for p in (tmp / "out").rglob("trial.json")]
    return {r["number"]: r for r in found}


def test_in_process_launcher_has_one_slot(tmp_path: Path, db: str) -> None:
    sweep(
        tmp_path,
        f"hydra.sweeper.storage={db}",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.slot_overrides={device:[gpu0,gpu1]}",
    )
    trials = study_of(db).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    for t in trials:
        assert t.user_attrs["device"] == "gpu0"  # what the job's config held
        assert t.user_attrs["slot"] == 0
        assert t.user_attrs["slot_overrides"] == {"device": "gpu0"}
    for r in records(tmp_path).values():
        assert r["slot"] == 0 and r["slot_overrides"] == {"device": "gpu0"}


@pytest.mark.slow
def test_concurrent_trials_never_share_a_slot_value(tmp_path: Path, db: str) -> None:
    """n_jobs=2 on submitit's local executor, trials of 0.5-2.5 s: trials that overlap in
    time ran with different values, each from the list, recorded where the job saw it."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    study = optuna.create_study(study_name="sphere", storage=db)
    for s in (2.5, 0.5, 0.5, 2.5, 0.5, 0.5):
        study.enqueue_trial({"sleep": s})
    sweep(
        tmp_path,
        f"hydra.sweeper.storage={db}",
        "hydra/launcher=submitit_local",
        "hydra.sweeper.n_trials=6",
        "hydra.sweeper.n_jobs=2",
        "sleep=choice(0.5,2.5)",
        "hydra.sweeper.slot_overrides={device:[cpu:0,cpu:1]}",
        timeout=300,
    )
    trials = study_of(db).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    values = {"cpu:0", "cpu:1"}
    for t in trials:
        assert t.user_attrs["device"] in values
        assert t.user_attrs["slot_overrides"] == {"device": t.user_attrs["device"]}
        assert t.user_attrs["device"] == f"cpu:{t.user_attrs['slot']}"
    overlapping = 0
    for a in trials:
        for b in trials:
            if a.number < b.number and a.datetime_start < b.datetime_complete:
                if b.datetime_start < a.datetime_complete:  # they ran at the same time
                    overlapping += 1
                    assert a.user_attrs["device"] != b.user_attrs["device"], (a.number, b.number)
    assert overlapping >= 3  # the two slots were busy together most of the sweep
    assert {t.user_attrs["device"] for t in trials} == values
    for number, r in records(tmp_path).items():
        assert r["slot_overrides"] == {"device": trials[number].user_attrs["device"]}


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ("hydra.sweeper.n_jobs=3", "hydra.sweeper.slot_overrides={device:[a,b]}"),
            "error: hydra.sweeper.slot_overrides.device=['a', 'b']: a list of at least "
            "n_jobs=3 values, one per slot",
        ),
        (
            ("hydra.sweeper.slot_overrides={device:a}",),
            "error: hydra.sweeper.slot_overrides.device='a': a list of at least n_jobs=1",
        ),
        (
            ("hydra.sweeper.slot_overrides={device:[a]}", "device=choice(a,b)"),
            "error: hydra.sweeper.slot_overrides.device: device is searched too",
        ),
        (
            ("hydra.sweeper.slot_overrides={device:[a]}", "device=b"),
            "error: hydra.sweeper.slot_overrides.device: device is fixed too",
        ),
        (
            ("hydra.sweeper.slot_overrides={devcie:[a]}",),
            "error: hydra.sweeper.slot_overrides: slot 0 (devcie=a): Could not override 'devcie'",
        ),
    ],
)
def test_bad_slot_overrides_are_one_line_before_any_trial(tmp_path, db, overrides, message):
    proc = sweep(tmp_path, f"hydra.sweeper.storage={db}", *overrides, check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("trial.json"))
