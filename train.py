"""Train LeNet-5 on FashionMNIST and return the objective (best validation accuracy).

python train.py                                  # the lab sheet's baseline
python train.py experiment=ex5_dropout           # an exercise preset
python train.py hydra.run.dir=outputs/train/...  # continue a run stopped part-way
python train.py -m hparams_search=phase1         # an Optuna search
python train.py --help                           # groups, keys and examples
"""

from __future__ import annotations

import logging
import shlex
import signal
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

#: Summary fields a sweep's trial records as user attributes (pin_user_attrs reads them).
TRIAL_FIELDS = (rec.BEST_EPOCH, rec.EPOCHS_RUN, rec.VAL_SPLIT, rec.RESUMED_FROM)
#: The run's files a sweep's trial uploads (optuna-dashboard --artifact-dir shows them).
RUN_FILES = (rec.SUMMARY_FILE, rec.CURVES_FILE, rec.METRICS_FILE)


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


def sweep_main(cfg: DictConfig, out_dir: Path) -> float:
    """A trial of a ``lab_optuna`` sweep: the run states its fate through the job API —
    a value (complete), ``TrialPruned``, ``TrialFailed`` (diverged) — and continues from the
    trial's checkpoint folder when an earlier attempt of it was interrupted."""
    import lab_optuna
    from lenet_lab.run import train

    trial = lab_optuna.current_trial()
    reporter = [PruningReporter(trial)] if trial is not None else []
    try:
        summary = train(cfg, out_dir, reporter, state_dir=lab_optuna.checkpoint_dir())
    finally:
        if trial is not None:  # a crashed run's record too
            for name in RUN_FILES:
                lab_optuna.upload_artifact(out_dir / name)
            lab_optuna.upload_artifact(out_dir / rec.CHECKPOINT_FILE, checkpoint=True)
    return to_sweeper(summary, trial)


def to_sweeper(summary: dict[str, Any], trial: Any | None) -> float:
    """The run's fate through the job API: its objective, ``TrialPruned`` or (diverged, in a
    lab_optuna sweep) ``TrialFailed`` with the reason; the trial records the run's epochs."""
    import lab_optuna

    if trial is not None:
        for key in TRIAL_FIELDS:
            trial.set_user_attr(key, summary.get(key))
    status, reason = summary[rec.STATUS], summary[rec.REASON]
    if status is Status.PRUNED:
        raise lab_optuna.TrialPruned(reason)
    if status is Status.DIVERGED and trial is not None:
        raise lab_optuna.TrialFailed(f"{status}: {reason}")
    return float(summary[rec.OBJECTIVE])  # NaN if diverged: Hydra's own sweepers go on


def single_main(cfg: DictConfig, out_dir: Path) -> float:
    """One run: bad input is one line (exit 2); Ctrl-C or SIGTERM keeps the state saved after
    the last finished epoch and says how to continue (exit 130 or 143)."""
    from lenet_lab.data import DataError
    from lenet_lab.errors import ConfigError
    from lenet_lab.run import train

    got: list[int] = []

    def on_sigterm(signum: int, frame: Any) -> None:
        got.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        summary = train(cfg, out_dir)
    except (ConfigError, DataError) as e:
        _log_to_files(f"error: {e}")
        print(f"error: {e}", file=sys.stderr)  # the console's one line
        sys.exit(2)
    except KeyboardInterrupt:
        summary = rec.read_summary(out_dir) or {}
        log.warning(
            "%s after epoch %s of %s: the state is saved; continue the run with:\n  %s",
            "stopped by SIGTERM" if got else "interrupted (Ctrl-C)",
            summary.get(rec.EPOCHS_RUN, 0),
            cfg.trainer.epochs,
            continue_command(out_dir),
        )
        sys.exit(128 + (got[0] if got else signal.SIGINT))
    return float(summary[rec.OBJECTIVE])


def continue_command(out_dir: Path) -> str:
    """The command that continues the run in ``out_dir``: its overrides and its folder."""
    overrides = [o for o in HydraConfig.get().overrides.task if not o.startswith("hydra.run.dir=")]
    words = ["python", sys.argv[0], *overrides, f"hydra.run.dir={out_dir}"]
    return " ".join(shlex.quote(w) for w in words)


def _log_to_files(message: str) -> None:
    """Record an error in the run's log file only (the console gets it once, on stderr)."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)
    if hc.mode == RunMode.MULTIRUN:
        return sweep_main(cfg, out_dir)
    return single_main(cfg, out_dir)


if __name__ == "__main__":
    main()
