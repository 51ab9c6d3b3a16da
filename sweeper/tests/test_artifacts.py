"""Trial artifacts: the toy app uploads a file through ``lab_optuna.upload_artifact``; it is in
the study's artifact store (Optuna's public ``optuna.artifacts``) and the real optuna-dashboard,
started with ``--artifact-dir``, serves it over HTTP byte for byte."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path

import optuna
import pytest
from optuna.artifacts import FileSystemArtifactStore, download_artifact, get_all_artifact_meta
from optuna.storages import RDBStorage
from test_dashboard import get_json, serve_dashboard
from test_plugin import study_of, sweep

from lab_optuna._job.uploads import artifact_dir

optuna.logging.set_verbosity(optuna.logging.WARNING)
BIN = Path(sys.executable).parent


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'optuna.db'}"


def note_of(tmp: Path, number: int) -> bytes:
    return (tmp / "out" / str(number) / "note.txt").read_bytes()


def test_each_trial_uploads_its_file_beside_the_database(tmp_path: Path, db: str) -> None:
    sweep(tmp_path, f"hydra.sweeper.storage={db}", "hydra.sweeper.n_trials=2", "artifact=true")
    store = FileSystemArtifactStore(tmp_path / "artifacts")  # the default: beside optuna.db
    storage = RDBStorage(db)
    for trial in study_of(db).trials:
        [meta] = get_all_artifact_meta(trial, storage=storage)
        assert meta.filename == "note.txt" and meta.mimetype == "text/plain"
        got = tmp_path / f"got_{trial.number}.txt"
        download_artifact(artifact_store=store, artifact_id=meta.artifact_id, file_path=str(got))
        assert got.read_bytes() == note_of(tmp_path, trial.number)


@pytest.mark.slow  # several sweeps: make test-all
def test_artifacts_null_or_no_storage_uploads_nothing(tmp_path: Path, db: str) -> None:
    sweep(
        tmp_path,
        f"hydra.sweeper.storage={db}",
        "hydra.sweeper.n_trials=1",
        "artifact=true",
        "hydra.sweeper.artifacts=null",
    )
    [trial] = study_of(db).trials
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert get_all_artifact_meta(trial, storage=RDBStorage(db)) == []
    assert not (tmp_path / "artifacts").exists()
    sweep(tmp_path, "hydra.sweeper.n_trials=1", "artifact=true")  # in memory: a no-op
    assert (tmp_path / "out" / "0" / "note.txt").is_file()


def test_artifact_dir_rules(tmp_path: Path) -> None:
    on = {"dir": None, "checkpoints": True}
    assert artifact_dir(on, "sqlite:///multirun/optuna.db", tmp_path) == (
        tmp_path / "multirun" / "artifacts"
    )
    assert (
        artifact_dir(on, f"sqlite:///{tmp_path}/a/b.db", "/elsewhere")
        == tmp_path / "a" / "artifacts"
    )
    assert (
        artifact_dir(on, "postgresql://u:p@h/db", tmp_path) == tmp_path / "multirun" / "artifacts"
    )
    assert artifact_dir({"dir": "files"}, "sqlite:///x.db", tmp_path) == tmp_path / "files"
    assert artifact_dir({"dir": "/abs/files"}, None, tmp_path) == Path("/abs/files")


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "hydra.sweeper.artifacts.checkpoints=maybe",
            "error: hydra.sweeper.artifacts.checkpoints=",
        ),
        ("hydra.sweeper.artifacts=7", "error: hydra.sweeper.artifacts=7: {dir: <folder>"),
        ("+hydra.sweeper.artifacts.where=x", "error: hydra.sweeper.artifacts.where: not a key"),
    ],
)
def test_bad_artifacts_settings_are_one_line(tmp_path: Path, override: str, message: str) -> None:
    proc = sweep(tmp_path, override, check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith(message), lines[0]


@pytest.mark.dashboard
def test_dashboard_serves_a_trials_artifact(tmp_path: Path, db: str) -> None:
    sweep(tmp_path, f"hydra.sweeper.storage={db}", "hydra.sweeper.n_trials=2", "artifact=true")
    artifacts = ("--artifact-dir", str(tmp_path / "artifacts"))
    with serve_dashboard(db, tmp_path / "dashboard.log", *artifacts) as base:
        [study] = get_json(f"{base}/api/studies")["study_summaries"]
        trials = get_json(f"{base}/api/studies/{study['study_id']}")["trials"]
        assert len(trials) == 2
        for served in trials:
            [artifact] = served["artifacts"]  # what the trial page lists
            assert artifact["filename"] == "note.txt"
            url = f"{base}/artifacts/{study['study_id']}/{served['trial_id']}/"
            with urllib.request.urlopen(url + artifact["artifact_id"], timeout=10) as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == "text/plain"
                assert response.read() == note_of(tmp_path, served["number"])
