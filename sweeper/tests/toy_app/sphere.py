"""A Hydra app of a framework user's own (the shape of hydra-optuna-sweeper's example):
minimise x² + y². ``sleep=s`` waits first, ``error=true`` raises, ``nan=true`` returns NaN,
``steps=k`` reports k intermediate values (``step_sleep`` seconds apart) and obeys the
pruner, ``objectives=2`` returns two values, ``artifact=true`` writes ``note.txt`` and
uploads it, ``device`` is recorded as a user attribute, ``checkpoint=true`` saves the next
step into ``checkpoint_dir()`` after each one and continues from it (a resumable app: the
``resumed_at`` user attribute says where). It declares nothing for the sweeper:
``current_trial()`` finds its trial."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import hydra
import optuna
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from lab_optuna import checkpoint_dir, current_trial, upload_artifact


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def sphere(cfg: DictConfig) -> float | tuple[float, float]:
    x, y = float(cfg.x), float(cfg.y)
    time.sleep(float(cfg.sleep))
    trial = current_trial()
    if trial is not None and "retry_of" not in trial.user_attrs:
        time.sleep(float(cfg.sleep_first_attempt))  # a retry of the trial runs quickly
    if cfg.error:
        raise RuntimeError("simulated failure")
    if cfg.nan:
        return math.nan
    value = x**2 + y**2
    if trial is not None:
        trial.set_user_attr("x_squared", x**2)  # something a later phase can pin
        trial.set_user_attr("device", str(cfg.device))  # the value the job was given
    if cfg.artifact:
        note = Path(HydraConfig.get().runtime.output_dir) / "note.txt"
        note.write_text(f"trial x={x} y={y}\n")
        upload_artifact(note)
    saved = checkpoint_dir() / "next_step.json" if cfg.checkpoint and checkpoint_dir() else None
    start = json.loads(saved.read_text()) if saved is not None and saved.exists() else 0
    if trial is not None and start:
        trial.set_user_attr("resumed_at", start)
    for step in range(start, int(cfg.steps)):
        time.sleep(float(cfg.step_sleep))
        if trial is not None:
            trial.report(value + 1.0 / (step + 1), step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step}")
        if saved is not None:  # the state after this step: written whole, then renamed
            saved.parent.mkdir(parents=True, exist_ok=True)
            saved.with_suffix(".tmp").write_text(json.dumps(step + 1))
            saved.with_suffix(".tmp").replace(saved)
    if int(cfg.objectives) == 2:
        return value, (x - 2) ** 2 + y**2
    return value


def add_z(cfg: DictConfig, trial: optuna.Trial) -> None:
    """A ``custom_search_space``: z only when x is positive (a conditional parameter)."""
    if float(trial.params.get("x", 0)) > 0:
        trial.suggest_float("z", 0.0, 1.0)


if __name__ == "__main__":
    sphere()
