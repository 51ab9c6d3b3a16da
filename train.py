"""Train LeNet-5 on FashionMNIST and return the objective (best validation accuracy).

python train.py                                  # the lab sheet's baseline
python train.py experiment=ex5_dropout           # an exercise preset
python train.py -m hparams_search=phase1         # an Optuna search
python train.py --help                           # groups, keys and examples
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from lenet_lab.callbacks import Callback, StopTraining
from lenet_lab.record import BEST_EPOCH, EPOCHS_RUN, OBJECTIVE, REASON, STATUS, VAL_SPLIT, Status

log = logging.getLogger("train")


class PruningReporter(Callback):
    """Reports each epoch's val accuracy to the sweep's Optuna trial; the pruner may stop it."""

    def __init__(self, trial: Any):
        self.trial = trial

    def on_epoch_end(self, run, epoch: int, metrics: dict[str, float]) -> None:
        self.trial.report(metrics["val_acc"], epoch)
        if self.trial.should_prune():
            raise StopTraining(
                Status.PRUNED, f"pruned at epoch {epoch} (val_acc {metrics['val_acc']:.4f})"
            )


def to_sweeper(summary: dict[str, Any], trial: Any | None) -> float:
    """The value for the sweeper; records the run on the trial. A pruned run raises
    ``optuna.TrialPruned``; a diverged one returns NaN (the sweeper's FAIL) with its reason."""
    status = summary[STATUS]
    if trial is not None:
        for key in (BEST_EPOCH, EPOCHS_RUN, VAL_SPLIT):
            trial.set_user_attr(key, summary.get(key))
        if status == Status.DIVERGED:
            trial.set_user_attr("fail_reason", f"diverged: {summary[REASON]}"[:500])
    if status == Status.PRUNED:
        import optuna

        raise optuna.TrialPruned(summary[REASON])
    if status == Status.DIVERGED:
        return math.nan
    return float(summary[OBJECTIVE])


def _log_to_files(message: str) -> None:
    """Record an error in the run's log file only (the console gets it once, on stderr)."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    from lenet_lab.data import DataError
    from lenet_lab.run import train
    from lenet_lab.validation import ConfigError

    hc = HydraConfig.get()
    trial = None
    if hc.mode == RunMode.MULTIRUN:
        from lab_optuna import current_trial

        trial = current_trial()
    try:
        summary = train(
            cfg,
            Path(hc.runtime.output_dir),
            callbacks=[PruningReporter(trial)] if trial is not None else [],
        )
    except (ConfigError, DataError) as e:
        if hc.mode == RunMode.MULTIRUN:
            raise  # a failed trial, recorded by the sweeper with its overrides
        _log_to_files(f"error: {e}")
        print(f"error: {e}", file=sys.stderr)  # the console's one line
        sys.exit(2)
    return to_sweeper(summary, trial)


if __name__ == "__main__":
    main()
