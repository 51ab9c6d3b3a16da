"""Trial artifacts: a job's files in an Optuna ``FileSystemArtifactStore``, for the dashboard.

``upload_artifact(path)`` (the job API, ``from lab_optuna import upload_artifact``) uploads
one file for the trial this job runs, through Optuna's public ``optuna.artifacts``; it is a
no-op returning None outside a sweep, without a storage or with
``hydra.sweeper.artifacts=null``. ``optuna-dashboard <storage> --artifact-dir <dir>`` shows
them on each trial's page. Where the files go (``hydra.sweeper.artifacts.dir``):

- null (the default): ``artifacts/`` beside a ``sqlite:///`` storage file (the lab's
  ``multirun/optuna.db`` → ``multirun/artifacts``), else ``multirun/artifacts``;
- a relative path is taken from the directory the sweep was started in (``hydra.runtime.cwd``),
  so every job, wherever it runs, finds the same folder.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

#: Where the artifacts go when no storage file says otherwise (from the launch directory).
DEFAULT_DIR = "multirun/artifacts"


def artifact_dir(artifacts: Any, storage: str | None, launch_dir: str | Path) -> Path:
    """The store's folder for the ``hydra.sweeper.artifacts`` node (absolute)."""
    launch = Path(launch_dir)
    chosen = artifacts.get("dir") if artifacts else None
    if chosen:
        return (launch / Path(str(chosen)).expanduser()).resolve()
    if storage and str(storage).startswith("sqlite:///"):
        database = make_url(str(storage)).database
        if database and database != ":memory:":
            return (launch / Path(database).expanduser()).resolve().parent / "artifacts"
    return (launch / DEFAULT_DIR).resolve()


def upload_artifact(path: str | Path, *, checkpoint: bool = False) -> str | None:
    """Upload the file ``path`` as an artifact of this job's trial; its artifact id, or None
    (outside a sweep, without a storage, ``artifacts=null``, a missing file, or a
    ``checkpoint`` with ``hydra.sweeper.artifacts.checkpoints=false``). A failed upload is
    logged, never raised: the trial's result counts more than its files."""
    from hydra.core.hydra_config import HydraConfig

    from lab_optuna._job.task import current_trial, sigint_deferred

    trial = current_trial()
    if trial is None or not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    artifacts, storage = hc.sweeper.get("artifacts"), hc.sweeper.get("storage")
    if not artifacts or not storage:
        return None
    if checkpoint and not artifacts.get("checkpoints", True):
        return None
    file = Path(path)
    if not file.is_file():
        return None
    import optuna

    try:
        folder = artifact_dir(artifacts, str(storage), hc.runtime.cwd)
        folder.mkdir(parents=True, exist_ok=True)
        store = optuna.artifacts.FileSystemArtifactStore(folder)
        with sigint_deferred():  # never half a write to the storage
            return optuna.artifacts.upload_artifact(
                artifact_store=store, file_path=str(file), study_or_trial=trial
            )
    except Exception as e:  # noqa: BLE001 - an artifact never fails a finished trial
        log.warning("trial %d: could not upload %s: %s", trial.number, file, e)
        return None
