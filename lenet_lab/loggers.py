"""Experiment loggers as callbacks (``conf/logger/``): TensorBoard and MLflow.

Each writes the run's config once and its metrics row every epoch. Both are optional extras
(``pip install -e '.[tensorboard]'`` / ``'.[mlflow]'``); choosing one without it installed
stops the run before any data is read, naming the package.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import OmegaConf

from . import record as rec
from .callbacks import Callback, Metrics

if TYPE_CHECKING:
    from .run_state import Run


def _require(module: str, extra: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ValueError(f"needs the {module} package: pip install -e '.[{extra}]'")


def _flat(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """``{"optimizer.lr": 0.1, ...}`` of a nested config (lists as text)."""
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, f"{name}."))
        else:
            out[name] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return out


class TensorBoardLogger(Callback):
    """Event files under ``log_dir`` (null: ``<run dir>/tensorboard``): every metric as a
    scalar per epoch, the config as text (``config``) and as hparams."""

    def __init__(self, out_dir: str | Path, log_dir: str | None = None):
        _require("tensorboard", "tensorboard")
        self.log_dir = Path(log_dir) if log_dir else Path(out_dir) / "tensorboard"
        self.writer = None

    def on_train_start(self, run: Run) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.log_dir))
        config = OmegaConf.to_container(run.cfg, resolve=True)
        self.writer.add_text("config", "```yaml\n" + OmegaConf.to_yaml(run.cfg) + "```")
        self.writer.add_hparams(_flat(config), {}, run_name=".")

    def on_epoch_end(self, run: Run, epoch: int, metrics: Metrics) -> None:
        for name, value in metrics.items():
            if name != rec.EPOCH:
                self.writer.add_scalar(name, value, epoch)
        self.writer.flush()

    def on_train_end(self, run: Run) -> None:
        if self.writer is not None:
            self.writer.close()


class MLflowLogger(Callback):
    """An MLflow run: the config as params and ``config.yaml``, every metric per epoch, the
    run's status as a tag. Tracking store: ``tracking_uri``, else ``$MLFLOW_TRACKING_URI``,
    else a local SQLite store ``<run dir>/mlflow.db`` (artifacts in ``<run dir>/mlruns``;
    MLflow's file store is deprecated)."""

    def __init__(
        self,
        out_dir: str | Path,
        tracking_uri: str | None = None,
        experiment: str = "lenet-lab",
        run_name: str | None = None,
    ):
        _require("mlflow", "mlflow")
        local = Path(out_dir).resolve()
        self.tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        self.artifacts = None  # a store of the user's: its own artifact location
        if not self.tracking_uri:  # the local default: artifacts beside it, not in the cwd
            self.tracking_uri = f"sqlite:///{local / 'mlflow.db'}"
            self.artifacts = (local / "mlruns").as_uri()
        self.experiment, self.run_name = experiment, run_name
        self.run_id: str | None = None

    def on_train_start(self, run: Run) -> None:
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        found = mlflow.get_experiment_by_name(self.experiment)
        experiment_id = (
            found.experiment_id
            if found
            else mlflow.create_experiment(self.experiment, artifact_location=self.artifacts)
        )
        active = mlflow.start_run(
            experiment_id=experiment_id, run_name=self.run_name or run.out_dir.name
        )
        self.run_id = active.info.run_id
        config = OmegaConf.to_container(run.cfg, resolve=True)
        mlflow.log_params({k: str(v)[:500] for k, v in _flat(config).items()})
        mlflow.log_dict(config, "config.yaml")

    def on_epoch_end(self, run: Run, epoch: int, metrics: Metrics) -> None:
        import mlflow

        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if k != rec.EPOCH}, step=epoch)

    def on_train_end(self, run: Run) -> None:
        import mlflow

        if self.run_id is not None:
            mlflow.set_tag(rec.STATUS, str(run.summary.get(rec.STATUS)))
            mlflow.end_run()
