"""Train LeNet-5 on FashionMNIST and return the best validation accuracy.

    python train.py                                  # the lab sheet's baseline
    python train.py experiment=ex5_dropout           # an exercise preset
    python train.py -m hparams_search=phase1         # an Optuna search
    python train.py --help                           # groups, keys and examples
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

log = logging.getLogger("train")


def metric_value(summary: dict, name: str) -> float:
    """The optimized metric from a run summary, with a clear error for a wrong name."""
    if name not in summary or not isinstance(summary[name], (int, float)):
        numeric = sorted(k for k, v in summary.items() if isinstance(v, (int, float)))
        raise KeyError(f"optimized_metric={name!r} is not a numeric summary key: {numeric}")
    return float(summary[name])


def _log_to_files(message: str) -> None:
    """Record an error in the run's log file only (the console gets it once, on stderr)."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    from lenet_lab.data import DataError
    from lenet_lab.run import objective, train
    from lenet_lab.validation import ConfigError
    from sweeper.reporting import trial_hook

    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)
    try:
        summary = train(cfg, out_dir, on_epoch=trial_hook(cfg, out_dir))
    except (ConfigError, DataError) as e:
        if hc.mode == RunMode.MULTIRUN:
            raise  # a failed trial, recorded by the sweeper with its overrides
        _log_to_files(f"error: {e}")
        print(f"error: {e}", file=sys.stderr)  # the console's one line
        sys.exit(2)
    if summary["status"] == "diverged":
        return objective(summary)
    return metric_value(summary, cfg.optimized_metric)


if __name__ == "__main__":
    main()
