"""A lab sweep's trials in Optuna's artifact store (``hydra.sweeper.artifacts``): what
optuna-dashboard shows with ``--artifact-dir``. The completed phase-1 trials (with best.pt):
tests/app/test_sweeper.py; here pruned trials with ``artifacts.checkpoints=false``."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.artifacts import FileSystemArtifactStore, download_artifact, get_all_artifact_meta
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from test_sweeper import run_sweep, study

pytestmark = pytest.mark.slow  # a lab sweep with pruning: make test-all
RECORD = {"summary.json", "metrics.csv", "curves.png"}


def artifacts_of(url: str, trial: optuna.trial.FrozenTrial) -> dict[str, str]:
    """``{filename: artifact id}`` of a trial (Optuna's public listing)."""
    return {
        m.filename: m.artifact_id for m in get_all_artifact_meta(trial, storage=RDBStorage(url))
    }


def same_bytes(store: FileSystemArtifactStore, artifact_id: str, path: Path, tmp: Path) -> bool:
    got = tmp / f"download_{artifact_id}"
    download_artifact(artifact_store=store, artifact_id=artifact_id, file_path=str(got))
    return got.read_bytes() == path.read_bytes()


def test_pruned_trials_upload_their_record_without_checkpoints(tmp_path, tiny_data_factory):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    proc = run_sweep(
        "phase1_flat",
        tmp_path / "phase1_flat",
        url,
        tiny_data_factory(),
        "hydra.sweeper.n_trials=2",
        "hydra/sweeper/pruner=threshold",
        "hydra.sweeper.pruner.lower=2.0",  # no accuracy reaches it: pruned at epoch 1
        "hydra.sweeper.artifacts.checkpoints=false",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    store = FileSystemArtifactStore(tmp_path / "artifacts")  # beside optuna.db
    trials = study(url, "phase1_flat").trials
    assert [t.state for t in trials] == [TrialState.PRUNED] * 2
    for t in trials:
        job = tmp_path / "phase1_flat" / f"trial_{t.number}"
        assert (job / "best.pt").is_file()  # written, not uploaded
        found = artifacts_of(url, t)
        assert set(found) == RECORD
        for name, artifact_id in found.items():
            assert same_bytes(store, artifact_id, job / name, tmp_path), name
