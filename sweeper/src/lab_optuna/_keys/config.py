"""The sweeper's keys (``hydra.sweeper.*``), each with its type, default and meaning, written
once.

:class:`SweeperConf` and its nested dataclasses are the one definition, typed. Hydra's
ConfigStore gets the keys and defaults as the config ``hydra/sweeper=lab_optuna`` (:func:`store`,
called by the plugin module at every app start); ``Settings`` (``_keys/settings.py``) merges a
composed config onto the typed schema, so OmegaConf checks every type and key, and rewords its
error into one ``error: hydra.sweeper.<key>=<value>: ...`` line. The node in ConfigStore is
plain on purpose: a typed one would fail at composition, in Hydra's multi-line error, before
the sweeper could name the key. Light: Hydra imports this at every start, so nothing here
imports Optuna. The sampler and pruner come from their config groups
(``hydra/sweeper/sampler=...``, ``hydra/sweeper/pruner=...``; YAML files under
``hydra_plugins/lab_optuna_sweeper/conf``).
"""

# No ``from __future__ import annotations``: OmegaConf reads these annotations as types.
from dataclasses import dataclass, field, fields
from typing import Any

from omegaconf import MISSING, OmegaConf

from lab_optuna.names import IMPORTANCE_EVALUATORS

#: The Hydra plugin class the config instantiates.
TARGET = "hydra_plugins.lab_optuna_sweeper.lab_optuna_sweeper.LabOptunaSweeper"
#: Config groups of the sweeper and the option each starts from.
GROUP_DEFAULTS = {"sampler": "tpe", "pruner": "none"}


@dataclass
class TerminatorConf:
    """``terminator``: stop starting trials once the best stagnates."""

    patience: int = MISSING  # complete trials in a row without an improvement of min_delta
    min_delta: float = 0.0  # the improvement that counts


@dataclass
class EnqueueFromConf:
    """``enqueue_from``: run another study's best params first."""

    study: str = MISSING  # a study in the same storage
    top: int = 1  # its best K complete trials


@dataclass
class ParamsFromConf:
    """``params_from``: search a screening study's most (or least) important params."""

    study: str = MISSING  # the screening study, same storage
    take: str = "top"  # top: its most important params; rest: the others
    count: int | None = None  # how many (or share: the importance they cover)
    share: float | None = None  # e.g. 0.8: the top params holding 80 % of the importance


@dataclass
class ArtifactsConf:
    """``artifacts``: trial files for optuna-dashboard ``--artifact-dir``."""

    dir: str | None = None  # null: multirun/artifacts, or beside a sqlite file
    checkpoints: bool = True  # also upload the trial's checkpoint (best.pt)


@dataclass
class SweeperConf:
    """``hydra.sweeper.*`` of ``hydra/sweeper=lab_optuna``: each key, its type and default."""

    # hydra/sweeper/sampler=tpe|random|cmaes|nsgaii|qmc|grid|gp: the Optuna sampler's node
    sampler: Any = None
    # hydra/sweeper/pruner=none|median|percentile|hyperband|successive_halving|threshold|wilcoxon
    pruner: Any = None
    # minimize | maximize, or a list of them for several objectives
    direction: Any = "minimize"
    # null: in memory (this process only); sqlite:///f.db, postgresql://u:p@h/db, journal:///f.log
    storage: str | None = None
    # seconds a storage outage (a database restarting) is retried before the sweep stops
    storage_retry_s: float = 120
    # null: Optuna picks one; name it to resume or share the study
    study_name: str | None = None
    # NEW trials this invocation runs (0: only write the reports)
    n_trials: int = 20
    # trials running at once (with a launcher that runs jobs concurrently: joblib, submitit)
    n_jobs: int = 2
    # start a trial as soon as one of the n_jobs ends; false: wait for the whole batch
    async_slots: bool = True
    # stop when more than this share of trials CRASHED (pruned, non-finite results don't count)
    max_failure_rate: float = 0.0
    # ... checked once this many trials of this invocation have finished
    min_trials_for_failure_rate: int = 1
    # stop adding trials when the study holds this many (COMPLETE+PRUNED+RUNNING), all workers
    max_total_trials: int | None = None
    # seconds from this invocation's start after which no new trial starts (null: no limit)
    timeout: float | None = None
    # with timeout: running trials are pruned at their next report after it (false: they finish)
    timeout_prune: bool = False
    # {patience: N, min_delta: D}: stop starting trials once the best stagnates (null: off)
    terminator: TerminatorConf | None = None
    # [{key: value, ...}]: points run first, checked against the space (missing keys: sampled)
    enqueue: list[dict[str, Any]] | None = None
    # {study: NAME, top: K}: run the best K params of study NAME (same storage) first
    enqueue_from: EnqueueFromConf | None = None
    # the search space, key: choice(...) | range(...) | interval(...) | tag(log, ...) | value
    params: dict[str, Any] | None = None
    # deprecated form of params ({type, low, high, ...}); warns; ignored when params is set
    search_space: dict[str, Any] | None = None
    # module.function(cfg, trial) adding (conditional) params to each trial
    custom_search_space: str | None = None
    # {study, take: top|rest, count: N | share: 0.8}: search a screening study's top/other params
    params_from: ParamsFromConf | None = None
    # study (same storage) whose best params are fixed here, with the pins it ran with
    pin_from: str | None = None
    # keys of pin_from's best trial not to fix here
    pin_exclude: list[str] = field(default_factory=list)
    # key: user attribute of pin_from's best trial to fix it to, e.g. {trainer.epochs: best_epoch}
    pin_user_attrs: dict[str, str] = field(default_factory=dict)
    # module.function(cfg) run once on the config all trials share: a bad fixed value stops here
    check_config: str | None = None
    # seconds between heartbeats of a running trial (needs a storage; null: off)
    heartbeat_interval: int | None = 10
    # a trial silent this long is stale: FAIL, continued by a new attempt
    grace_period: int | None = 30
    # continuations of a dead job's trial in a row that made no progress (an attempt that
    # reported a new step is always continued; lineage: user attributes retry_of, attempt, ...)
    max_retry: int = 3
    # seed each trial from (sampler.seed, trial number): a resumed study replays no points
    reseed_per_trial: bool = True
    # trial files for optuna-dashboard --artifact-dir (dir null: beside a sqlite file); null: off
    artifacts: ArtifactsConf | None = field(default_factory=ArtifactsConf)
    # {key: [v0, v1, ...]}: the trial in slot i (of n_jobs) gets key=v_i, e.g. a GPU per slot
    slot_overrides: dict[str, list[Any]] | None = None
    # evaluators of importances.csv at the sweep's end ([]: none; fanova and
    # mean_decrease_impurity need scikit-learn, ~2 s to import)
    importances: list[str] = field(default_factory=lambda: list(IMPORTANCE_EVALUATORS))


def keys() -> list[str]:
    """The sweeper's keys, in :class:`SweeperConf`'s order."""
    return [f.name for f in fields(SweeperConf)]


def node() -> dict[str, Any]:
    """The ``hydra/sweeper=lab_optuna`` config: the plugin class, its groups' defaults and
    every key but the groups' own at its default (``_self_`` comes last, as in a YAML file
    without it, so these must not hold ``sampler``/``pruner``: they would replace them)."""
    defaults = OmegaConf.to_container(OmegaConf.structured(SweeperConf))
    assert isinstance(defaults, dict)
    return {
        "_target_": TARGET,
        "_recursive_": False,  # the sweeper builds its sampler and pruner itself
        "defaults": [{group: option} for group, option in GROUP_DEFAULTS.items()],
        **{key: defaults[key] for key in keys() if key not in GROUP_DEFAULTS},
    }


def store() -> None:
    """Register ``hydra/sweeper=lab_optuna`` in Hydra's ConfigStore."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(
        group="hydra/sweeper", name="lab_optuna", node=node(), provider="lab_optuna_sweeper"
    )
