"""What a sweep leaves in its sweep dir: ``optimization_results.yaml`` (as hydra-optuna-sweeper:
best params/value, or the Pareto front as ``solutions``), ``study_trials.csv``,
``importances.csv`` and, for a phase that pins, ``pinned.yaml``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from omegaconf import OmegaConf
from optuna.trial import TrialState

from lab_optuna import names
from lab_optuna._loop.budget import Ended
from lab_optuna._loop.console import show_value
from lab_optuna._storage.urls import redact

log = logging.getLogger(__name__)


def save_pins(study: optuna.Study, pinned: dict[str, Any], sweep_dir: Path) -> None:
    """``pinned.yaml``, and the study's ``pinned`` attribute (a later phase pins them too)."""
    OmegaConf.save(OmegaConf.create(pinned), sweep_dir / names.PINNED_YAML)
    study.set_user_attr(names.PINNED, pinned)


def write_outputs(
    study: optuna.Study,
    sweep_dir: Path,
    storage_url: str | None,
    ended: Ended | None = None,
    importances: Sequence[str] = (),
) -> None:
    """optimization_results.yaml (with why the sweep ``ended``), study_trials.csv and, with
    ``importances`` (evaluator names), importances.csv; a failure to write them is a warning
    (it must never replace the sweep's own exit status)."""
    from lab_optuna._search.importance import save_importances

    try:
        study.trials_dataframe(multi_index=False).to_csv(sweep_dir / names.TRIALS_CSV, index=False)
        if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            return
        results: dict[str, Any] = {"name": "optuna"}
        if len(study.directions) == 1:
            best = study.best_trial
            results.update(best_params=best.params, best_value=best.value, best_trial=best.number)
            log.info(
                "best trial %d: value %s, params %s",
                best.number,
                show_value(best.value),
                best.params,
            )
        else:
            results["solutions"] = [
                {"params": t.params, "values": t.values, "trial": t.number}
                for t in study.best_trials
            ]
            log.info("Pareto front: %d trial(s)", len(results["solutions"]))
        results.update(
            study_name=study.study_name,
            storage=redact(storage_url) if storage_url else None,
        )
        if ended is not None:
            results.update(ended.results())
        OmegaConf.save(OmegaConf.create(results), sweep_dir / names.RESULTS_YAML)
        if importances:
            save_importances(study, sweep_dir / names.IMPORTANCES_CSV, evaluators=importances)
    except Exception as e:  # noqa: BLE001 - reporting must never lose the sweep's exit status
        log.warning("could not write the study outputs: %s", e)
