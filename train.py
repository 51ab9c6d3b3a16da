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

from lenet_lab import record as rec
from lenet_lab.callbacks import Callback
from lenet_lab.errors import StopTraining
from lenet_lab.record import Status
from lenet_lab.run_state import Run

log = logging.getLogger("train")


class PruningReporter(Callback):
    """Reports each epoch's val accuracy to the sweep's Optuna trial; the pruner may stop it."""

    def __init__(self, trial: Any):
        self.trial = trial

    def on_epoch_end(self, run: Run, epoch: int, metrics: dict[str, float]) -> None:
        self.trial.report(metrics[rec.VAL_ACC], epoch)
        if self.trial.should_prune():
            raise StopTraining(
                Status.PRUNED, f"pruned at epoch {epoch} ({rec.VAL_ACC} {metrics[rec.VAL_ACC]:.4f})"
            )


def to_sweeper(summary: dict[str, Any], trial: Any | None) -> float:
    """The value for the sweeper; records the run on the trial. A pruned run raises
    ``optuna.TrialPruned``; a diverged one returns NaN (the sweeper's FAIL) with its reason."""
    from optuna import TrialPruned
    from optuna.trial import TrialState

    from lenet_lab.trial_states import TRIAL_STATE

    status = summary[rec.STATUS]
    state = TRIAL_STATE.get(status, TrialState.COMPLETE)
    if trial is not None:
        for key in (rec.BEST_EPOCH, rec.EPOCHS_RUN, rec.VAL_SPLIT):
            trial.set_user_attr(key, summary.get(key))
        if state is TrialState.FAIL:
            trial.set_user_attr("fail_reason", f"{status}: {summary[rec.REASON]}"[:500])
    if state is TrialState.PRUNED:
        raise TrialPruned(summary[rec.REASON])
    if state is TrialState.FAIL:
        return math.nan
    return float(summary[rec.OBJECTIVE])


#: The run's files a sweep's trial uploads (optuna-dashboard --artifact-dir shows them);
#: curves.png: lenet_lab/run.py, best.pt: callbacks.Checkpoint (a checkpoint, see below).
RUN_FILES = (rec.SUMMARY_FILE, rec.CURVES_FILE, rec.METRICS_FILE)


def upload_run_files(out_dir: Path) -> None:
    """Upload the run's record to the trial's artifact store (``hydra.sweeper.artifacts``);
    best.pt unless ``artifacts.checkpoints=false``. Missing files are skipped."""
    from lab_optuna import upload_artifact

    for name in RUN_FILES:
        upload_artifact(out_dir / name)
    upload_artifact(out_dir / rec.CHECKPOINT_FILE, checkpoint=True)


def _log_to_files(message: str) -> None:
    """Record an error in the run's log file only (the console gets it once, on stderr)."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    from lenet_lab.data import DataError
    from lenet_lab.errors import ConfigError
    from lenet_lab.run import train

    hc = HydraConfig.get()
    trial = None
    if hc.mode == RunMode.MULTIRUN:
        from lab_optuna import current_trial

        trial = current_trial()
    out_dir = Path(hc.runtime.output_dir)
    try:
        summary = train(
            cfg, out_dir, callbacks=[PruningReporter(trial)] if trial is not None else []
        )
    except (ConfigError, DataError) as e:
        if hc.mode == RunMode.MULTIRUN:
            raise  # a failed trial, recorded by the sweeper with its overrides
        _log_to_files(f"error: {e}")
        print(f"error: {e}", file=sys.stderr)  # the console's one line
        sys.exit(2)
    except Exception:
        if trial is not None:
            upload_run_files(out_dir)  # a crashed run's record too
        raise
    if trial is not None:  # completed, pruned, early-stopped or diverged
        upload_run_files(out_dir)
    return to_sweeper(summary, trial)


if __name__ == "__main__":
    main()
