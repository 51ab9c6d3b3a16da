"""The job side of pruning: report each epoch's val accuracy to the Optuna trial."""

from __future__ import annotations

import logging
from collections.abc import Callable

from omegaconf import DictConfig

log = logging.getLogger(__name__)


def epoch_reporter(cfg: DictConfig) -> Callable[[int, dict], None] | None:
    """A hook for ``lenet_lab.run.train`` when this job is a pruned Optuna trial, else None.

    The trial is found in the study storage by its number (works for in-process and
    out-of-process launchers alike); the pruner is the sweeper's, built from the job's
    ``hydra.sweeper.pruner`` config.
    """
    info = cfg.get("optuna_trial")
    if not info or info.number is None or not info.storage or not info.pruning:
        return None
    import optuna

    from .storage import make_storage
    from .pruners import pruner_from_hydra

    study = optuna.load_study(
        study_name=info.study, storage=make_storage(info.storage), pruner=pruner_from_hydra()
    )
    trial_id = study._storage.get_trial_id_from_study_id_trial_number(
        study._study_id, int(info.number)
    )
    trial = optuna.trial.Trial(study, trial_id)

    def report(epoch: int, row: dict) -> None:
        trial.report(float(row["val_acc"]), epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch} (val_acc {row['val_acc']:.4f})")

    return report
