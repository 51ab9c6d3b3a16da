"""The sweeper's keys, checked before anything runs: one line naming the key and the fix."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from lab_optuna._keys import arguments
from lab_optuna._keys.config import SweeperConf, keys
from lab_optuna.names import IMPORTANCE_EVALUATORS


class SettingsError(ValueError):
    """A bad ``hydra.sweeper.*`` value."""


DIRECTIONS = ("minimize", "maximize")
#: Keys Hydra's instantiation leaves in the config it hands the sweeper.
_HYDRA_KEYS = ("_target_", "defaults")


class Settings(SweeperConf):
    """The keys of :class:`~lab_optuna._keys.config.SweeperConf`, checked."""

    @property
    def directions(self) -> list[str]:
        d = self.direction
        return [str(x) for x in d] if isinstance(d, (list, tuple, ListConfig)) else [str(d)]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Settings:
        """Checked settings from the sweeper's config; SettingsError names a bad key."""
        known = keys()
        config = {k: v for k, v in config.items() if k not in _HYDRA_KEYS}
        unknown = sorted(set(config) - set(known))
        if unknown:
            raise SettingsError(
                f"hydra.sweeper.{unknown[0]}: not a key of the lab_optuna "
                f"sweeper (keys: {', '.join(sorted(known))})"
            )
        s = cls(**config)
        s.check()
        return s

    def check(self) -> None:
        for d in self.directions:
            if d not in DIRECTIONS:
                raise SettingsError(
                    f"hydra.sweeper.direction={d!r}: use minimize or maximize "
                    "(or a list of them for several objectives)"
                )
        _int(self, "n_trials", 0)
        _int(self, "n_jobs", 1)
        _int(self, "min_trials_for_failure_rate", 1)
        _int(self, "max_retry", 0)
        retry_s = self.storage_retry_s
        if isinstance(retry_s, bool) or not isinstance(retry_s, (int, float)) or retry_s < 0:
            raise SettingsError(
                f"hydra.sweeper.storage_retry_s={retry_s!r}: seconds, a number >= 0 (0: no retry)"
            )
        for key in ("heartbeat_interval", "grace_period", "max_total_trials"):
            if getattr(self, key) is not None:
                _int(self, key, 1)
        if self.heartbeat_interval and self.grace_period is not None:
            if self.grace_period <= self.heartbeat_interval:
                raise SettingsError(
                    f"hydra.sweeper.grace_period={self.grace_period}: must be "
                    f"longer than heartbeat_interval={self.heartbeat_interval}"
                )
        rate = self.max_failure_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise SettingsError(f"hydra.sweeper.max_failure_rate={rate!r}: a number in [0, 1]")
        _check_budget(self)
        for key in ("async_slots", "reseed_per_trial"):
            if not isinstance(getattr(self, key), bool):
                raise SettingsError(f"hydra.sweeper.{key}={getattr(self, key)!r}: true or false")
        if (
            len(self.directions) > 1
            and self.pruner
            and "NopPruner" not in str(_target(self.pruner))
        ):
            raise SettingsError(
                "hydra.sweeper.pruner: Optuna cannot prune multi-objective "
                "studies; use hydra/sweeper/pruner=none"
            )
        for key in ("custom_search_space", "check_config"):
            _callable(key, getattr(self, key))
        _artifacts(self.artifacts)
        _importances(self.importances)
        _slot_overrides(self.slot_overrides, self.n_jobs)
        for key in ("sampler", "pruner"):
            node = getattr(self, key)
            if node is not None and not _target(node):
                raise SettingsError(
                    f"hydra.sweeper.{key}: needs a _target_ (choose one with "
                    f"hydra/sweeper/{key}=...)"
                )
            try:
                arguments.check(key, node)  # each argument in its accepted range
            except arguments.ArgumentError as e:
                raise SettingsError(str(e)) from None


def _target(node: Any) -> str:
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=False)
    return str(node.get("_target_", "")) if isinstance(node, dict) else ""


def _int(settings: Settings, key: str, low: int) -> None:
    value = getattr(settings, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SettingsError(f"hydra.sweeper.{key}={value!r}: an integer >= {low}")


def _artifacts(node: Any) -> None:
    """``artifacts``: null, or {dir: a path or null, checkpoints: true|false}."""
    if node is None:
        return
    if not isinstance(node, (dict, DictConfig)):
        raise SettingsError(
            f"hydra.sweeper.artifacts={node!r}: {{dir: <folder>, checkpoints: true}} or null"
        )
    for key in set(node) - {"dir", "checkpoints"}:
        raise SettingsError(f"hydra.sweeper.artifacts.{key}: not a key (dir, checkpoints)")
    folder = node.get("dir")
    if folder is not None and (not isinstance(folder, str) or not folder):
        raise SettingsError(f"hydra.sweeper.artifacts.dir={folder!r}: a folder path, or null")
    if not isinstance(node.get("checkpoints", True), bool):
        raise SettingsError(
            f"hydra.sweeper.artifacts.checkpoints={node.get('checkpoints')!r}: true or false"
        )


def _importances(names: Any) -> None:
    """``importances``: a list of known evaluator names (empty: none)."""
    known = ", ".join(IMPORTANCE_EVALUATORS)
    if not isinstance(names, (list, tuple, ListConfig)):
        raise SettingsError(f"hydra.sweeper.importances={names!r}: a list of {known} (or [])")
    for name in names:
        if name not in IMPORTANCE_EVALUATORS:
            raise SettingsError(
                f"hydra.sweeper.importances: {name!r} is not an evaluator (use {known})"
            )


def _slot_overrides(node: Any, n_jobs: int) -> None:
    """``slot_overrides``: null, or {key: [at least n_jobs values]} (one per slot)."""
    if node is None:
        return
    if not isinstance(node, (dict, DictConfig)):
        raise SettingsError(
            f"hydra.sweeper.slot_overrides={node!r}: {{key: [value of slot 0, slot 1, ...]}}"
        )
    for key, values in node.items():
        if not isinstance(values, (list, tuple, ListConfig)) or len(values) < n_jobs:
            raise SettingsError(
                f"hydra.sweeper.slot_overrides.{key}={values!r}: a list of at least "
                f"n_jobs={n_jobs} values, one per slot"
            )
        nested = (dict, list, DictConfig, ListConfig)
        bad = [v for v in values if v is None or isinstance(v, nested)]
        if bad:
            raise SettingsError(
                f"hydra.sweeper.slot_overrides.{key}: {bad[0]!r} is not a plain value"
            )


def _callable(key: str, path: str | None) -> None:
    if not path:
        return
    from hydra.utils import get_method

    try:
        get_method(str(path))
    except Exception as e:  # noqa: BLE001
        raise SettingsError(
            f"hydra.sweeper.{key}={path}: cannot import it ({str(e).splitlines()[0]})"
        ) from None


def _check_budget(settings: Settings) -> None:
    """``timeout``, ``timeout_prune``, ``terminator``, the shapes of ``enqueue(_from)``."""
    t = settings.timeout
    if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or t <= 0):
        raise SettingsError(f"hydra.sweeper.timeout={t!r}: seconds > 0, or null for no limit")
    if not isinstance(settings.timeout_prune, bool):
        raise SettingsError(
            f"hydra.sweeper.timeout_prune={settings.timeout_prune!r}: true or false"
        )
    if settings.enqueue is not None and not isinstance(settings.enqueue, (list, ListConfig)):
        raise SettingsError(
            f"hydra.sweeper.enqueue={settings.enqueue!r}: a list of {{key: value}} dicts, "
            "e.g. [{x: 1.0, y: 0}]"
        )
    if settings.enqueue_from is not None and not isinstance(
        settings.enqueue_from, (dict, DictConfig)
    ):
        raise SettingsError(
            f"hydra.sweeper.enqueue_from={settings.enqueue_from!r}: "
            "expected {study: NAME, top: K}"
        )
    node = settings.terminator
    if node is None:
        return
    shown = OmegaConf.to_container(node) if isinstance(node, DictConfig) else node
    if not isinstance(node, (dict, DictConfig)) or set(node) - {"patience", "min_delta"}:
        raise SettingsError(f"hydra.sweeper.terminator={shown!r}: {{patience: N, min_delta: D}}")
    if len(settings.directions) > 1:
        raise SettingsError("hydra.sweeper.terminator: needs a single objective")
    patience, delta = node.get("patience"), node.get("min_delta", 0.0)
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
        raise SettingsError(f"hydra.sweeper.terminator.patience={patience!r}: an integer >= 1")
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or delta < 0:
        raise SettingsError(f"hydra.sweeper.terminator.min_delta={delta!r}: a number >= 0")
