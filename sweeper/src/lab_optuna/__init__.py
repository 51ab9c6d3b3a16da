"""``lab_optuna``: a Hydra sweeper on current Optuna, usable by any Hydra app.

Public: this job API, ``lab_optuna.names`` (the files, user attributes and columns a sweep
writes), ``lab_optuna.overrides`` (Hydra's override grammar) and ``python -m
lab_optuna.schema URL``. The ``_``-prefixed subpackages are the sweeper's private parts
(``sweeper/README.md`` maps them).

Select it with ``hydra/sweeper: lab_optuna`` (configs ship with the package, see
``hydra_plugins/lab_optuna_sweeper``). Inside a job, ``current_trial()`` returns the running
``optuna.trial.Trial`` (None outside a sweep), for ``trial.report``/``should_prune``::

    from lab_optuna import current_trial
    trial = current_trial()
    ...
    if trial is not None:
        trial.report(val_acc, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()

A job states how its trial ended one way: it returns the objective (COMPLETE), raises
``TrialPruned`` (PRUNED), raises ``TrialFailed(reason)`` or returns NaN (FAIL, not a crash), or
is interrupted (killed, cancelled, a time limit, Ctrl-C: the trial is continued by a new
attempt). ``checkpoint_dir()`` is the folder where every attempt of one trial saves and finds
its state; an app that saves there after each epoch and resumes from it loses at most one::

    from lab_optuna import checkpoint_dir
    state = checkpoint_dir() / "state.pt"          # None outside a sweep
    start = load(state) if state.exists() else 0   # ... save(state) after every epoch

``upload_artifact(path)`` uploads a file of the job as an artifact of its trial (shown by
optuna-dashboard with ``--artifact-dir``; a no-op returning None outside a sweep or without a
storage)::

    from lab_optuna import upload_artifact
    upload_artifact(out_dir / "curves.png")
    upload_artifact(out_dir / "best.pt", checkpoint=True)  # unless artifacts.checkpoints=false
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "TrialFailed",
    "TrialPruned",
    "checkpoint_dir",
    "current_trial",
    "upload_artifact",
]


def __getattr__(name: str) -> Any:  # imports Optuna only when the job API is used
    if name in ("current_trial", "checkpoint_dir"):
        from lab_optuna._job import task

        return getattr(task, name)
    if name == "TrialFailed":
        from lab_optuna._loop.verdicts import TrialFailed

        return TrialFailed
    if name == "TrialPruned":
        from optuna import TrialPruned

        return TrialPruned
    if name == "upload_artifact":
        from lab_optuna._job.uploads import upload_artifact

        return upload_artifact
    raise AttributeError(name)
