"""The sweeper's keys, checked before anything runs: one line naming the key and the fix."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from .config import SweeperConf, keys


class SettingsError(ValueError):
    """A bad ``hydra.sweeper.*`` value."""


DIRECTIONS = ("minimize", "maximize")
#: Keys Hydra's instantiation leaves in the config it hands the sweeper.
_HYDRA_KEYS = ("_target_", "defaults")


class Settings(SweeperConf):
    """The keys of :class:`~lab_optuna.config.SweeperConf`, checked."""

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
        for key in ("sampler", "pruner"):
            node = getattr(self, key)
            if node is not None and not _target(node):
                raise SettingsError(
                    f"hydra.sweeper.{key}: needs a _target_ (choose one with "
                    f"hydra/sweeper/{key}=...)"
                )


def _target(node: Any) -> str:
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=False)
    return str(node.get("_target_", "")) if isinstance(node, dict) else ""


def _int(s: Settings, key: str, low: int) -> None:
    value = getattr(s, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SettingsError(f"hydra.sweeper.{key}={value!r}: an integer >= {low}")


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
