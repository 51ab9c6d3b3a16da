"""``LabOptunaSweeper``: a Hydra sweeper on current Optuna, for any Hydra app.

The config grammar is hydra-optuna-sweeper's (``params``, ``custom_search_space``, the
deprecated ``search_space``, ``sampler``, ``direction``, ``storage``, ``study_name``,
``n_trials``, ``n_jobs``, ``max_failure_rate``; every key: ``_keys/config.py``). A sweep reads
top to bottom:

1. check the keys (``_keys/``) and plan what to search and fix (``_search/plan.py``);
2. open the study (``_search/study.py``) and queue its warm-start points;
3. run the trials in slots (``_loop/optimize.py``): ask, launch (the job runs the app as the
   trial, ``_job/task.py``), tell (how a job's end becomes a trial state:
   ``_loop/verdicts.py``);
4. write the outputs (``_loop/outputs.py``).

On top of the plugin:

- trial identity: a job's ``hydra.job.num`` is its Optuna trial number, so job dirs never
  collide across resumed sweeps or workers, and ``current_trial()`` finds the trial from
  inside the job for ``report``/``should_prune``;
- pinning (``pin_from``), screening (``params_from``), a config check before any trial
  (``check_config``), ``max_total_trials`` across workers;
- fault tolerance: the job beats for its trial (``_storage/heartbeat.py``); trials of dead
  jobs are failed and continued from their checkpoint (``_loop/continuation.py``); Ctrl-C and
  SIGTERM keep finished trials, mark running ones FAIL (continued on resume) and print how to
  resume.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from lab_optuna._job.task import LIVE_STUDIES, TaskAsTrial
from lab_optuna._keys.app_keys import check_keys
from lab_optuna._keys.settings import Settings, SettingsError
from lab_optuna._loop.budget import Ended
from lab_optuna._loop.console import Console, quiet_launchers, route_optuna_logging
from lab_optuna._loop.optimize import Loop, Stop, stop_signals
from lab_optuna._loop.outputs import save_pins, write_outputs
from lab_optuna._loop.slot_overrides import check_slot_configs
from lab_optuna._search.pinning import PinError
from lab_optuna._search.plan import check_fixed_config, make_plan
from lab_optuna._search.space import SearchSpaceError
from lab_optuna._search.study import open_study, trials_to_run
from lab_optuna._search.warmstart import EnqueueError, best_points, points, queue
from lab_optuna._storage.resilient import StorageGone
from lab_optuna._storage.urls import StorageError, redact

log = logging.getLogger(__name__)


class LabOptunaSweeper(Sweeper):
    """Hydra's ``Sweeper`` interface; its keys: ``lab_optuna._keys.config.SweeperConf``."""

    def __init__(self, **config: Any) -> None:
        try:
            self.settings = Settings.from_config(config)
        except SettingsError as e:
            raise SystemExit(f"error: {e}") from None
        self.config: DictConfig | None = None
        self.launcher: Any = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=TaskAsTrial(task_function)
        )

    def sweep(self, arguments: list[str]) -> None:
        assert self.config is not None and self.hydra_context is not None
        settings = self.settings
        route_optuna_logging()
        try:
            plan = make_plan(settings, list(arguments))
            warm = points(settings.enqueue, plan.space)  # checked before any trial
            warm_from = best_points(settings.storage, settings.enqueue_from, plan.space)
            check_keys(settings, plan, arguments, self.hydra_context, self.config)  # key typos
            check_fixed_config(settings, plan, self.hydra_context, self.config)
            check_slot_configs(
                settings, plan.fixed, self.hydra_context, self.config
            )  # per-slot values
            study, storage = open_study(settings, plan.space)
        except (SettingsError, SearchSpaceError, StorageError, PinError, EnqueueError) as e:
            raise SystemExit(f"error: {e}") from None
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if plan.pinned:
            save_pins(study, plan.pinned, sweep_dir)
        queue(study, warm, "enqueue", storage)
        source = f"enqueue_from {settings.enqueue_from and settings.enqueue_from.study}"
        queue(study, warm_from, source, storage)
        n_trials = trials_to_run(settings, study, plan.space)
        where = redact(settings.storage) if settings.storage else "memory"
        log.info(
            "study %r in %s: %d trials so far; sampler %s, pruner %s",
            study.study_name,
            where,
            len(study.trials),
            study.sampler,
            type(study.pruner).__name__,
        )
        log.info("search space: %s", plan.describe())
        console = Console(n_trials, settings.directions, study)
        quiet_launchers()
        loop = Loop(settings, study, storage, plan, self.launcher, self.config, console)
        if n_trials < settings.n_trials:
            loop.ended = Ended("grid")  # the grid's points left cap n_trials
        try:
            with stop_signals() as stopped:
                loop.run(n_trials, stopped)
        except Stop as e:
            log.warning(
                "%s: running trials were marked FAIL; finished trials are saved in %s "
                "(study %r). Resume with the same command: the interrupted trials continue first.",
                e,
                where if settings.storage else "memory (lost on exit)",
                study.study_name,
            )
            raise SystemExit(128 + e.signum) from None  # 130 Ctrl-C, 143 SIGTERM; no traceback
        except StorageGone as e:  # running trials: left to the next sweep's stale recovery
            raise SystemExit(f"error: {e}") from None
        finally:
            console.close()
            loop.ended.elapsed_s = loop.budget.elapsed()
            with contextlib.suppress(StorageGone):  # no outputs from a storage that is gone
                write_outputs(study, sweep_dir, settings.storage, loop.ended, settings.importances)
            LIVE_STUDIES.pop(study.study_name, None)
        tally = loop.tally
        log.info(
            "this invocation: %d complete, %d pruned, %d failed%s; ended: %s after %.1f s",
            tally.complete,
            tally.pruned,
            tally.failed + tally.crashed,
            f", {tally.continued} continued by a new attempt" if tally.continued else "",
            loop.ended.reason,
            loop.ended.elapsed_s,
        )
        if tally.done and tally.complete == 0 and tally.pruned == 0:
            raise SystemExit(
                f"error: all {tally.done} trials of this sweep failed (first: "
                f"{tally.first_failure}); see {sweep_dir}"
            )
