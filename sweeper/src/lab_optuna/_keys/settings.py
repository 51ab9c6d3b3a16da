"""The sweeper's keys, checked before anything runs: one line naming the key and the fix."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf, SCMode
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from lab_optuna._keys import arguments
from lab_optuna._keys.config import SweeperConf, keys
from lab_optuna.names import IMPORTANCE_EVALUATORS


class SettingsError(ValueError):
    """A bad ``hydra.sweeper.*`` value."""


DIRECTIONS = ("minimize", "maximize")
#: Keys Hydra's instantiation leaves in the config it hands the sweeper.
_HYDRA_KEYS = ("_target_", "defaults")


class Settings(SweeperConf):
    """The keys of :class:`~lab_optuna._keys.config.SweeperConf`: typed by OmegaConf, then
    checked here for what a type cannot say (ranges, keys that go together)."""

    @property
    def directions(self) -> list[str]:
        d = self.direction
        return [str(x) for x in d] if isinstance(d, (list, tuple, ListConfig)) else [str(d)]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Settings:
        """Checked settings from the sweeper's config; SettingsError names a bad key."""
        config = {k: v for k, v in config.items() if k not in _HYDRA_KEYS}
        plain = {
            k: OmegaConf.to_container(v, resolve=False) if OmegaConf.is_config(v) else v
            for k, v in config.items()
        }
        _strict_bools(plain)
        try:
            typed = OmegaConf.merge(OmegaConf.structured(SweeperConf), plain)
        except OmegaConfBaseException as e:
            raise SettingsError(_reworded(e, plain)) from None
        missing = sorted(OmegaConf.missing_keys(typed))
        if missing:
            raise SettingsError(f"hydra.sweeper.{missing[0]}: missing (it has no default)")
        values = OmegaConf.to_container(
            typed, resolve=False, structured_config_mode=SCMode.INSTANTIATE
        )
        assert isinstance(values, SweeperConf)
        # the sampler and pruner stay Hydra's nodes: they may interpolate the app's config
        # (max_resource: ${trainer.epochs}), resolved when they are built
        kept = {k: config[k] for k in ("sampler", "pruner") if k in config}
        settings = cls(**{key: kept.get(key, getattr(values, key)) for key in keys()})
        settings.check()
        return settings

    def check(self) -> None:
        for d in self.directions:
            if d not in DIRECTIONS:
                raise SettingsError(
                    f"hydra.sweeper.direction={d!r}: use minimize or maximize "
                    "(or a list of them for several objectives)"
                )
        for key, low in (("n_trials", 0), ("n_jobs", 1), ("min_trials_for_failure_rate", 1)):
            _at_least(key, getattr(self, key), low)
        _at_least("max_retry", self.max_retry, 0)
        if self.storage_retry_s < 0:
            raise SettingsError(
                f"hydra.sweeper.storage_retry_s={_shown(self.storage_retry_s)}: "
                + _EXPECTS["storage_retry_s"]
            )
        for key in ("heartbeat_interval", "grace_period", "max_total_trials"):
            if getattr(self, key) is not None:
                _at_least(key, getattr(self, key), 1)
        if self.heartbeat_interval and self.grace_period is not None:
            if self.grace_period <= self.heartbeat_interval:
                raise SettingsError(
                    f"hydra.sweeper.grace_period={self.grace_period}: must be "
                    f"longer than heartbeat_interval={self.heartbeat_interval}"
                )
        if not 0 <= self.max_failure_rate <= 1:
            raise SettingsError(
                f"hydra.sweeper.max_failure_rate={_shown(self.max_failure_rate)}: "
                "a number in [0, 1]"
            )
        if self.timeout is not None and self.timeout <= 0:
            raise SettingsError(
                f"hydra.sweeper.timeout={_shown(self.timeout)}: seconds > 0, or null for no limit"
            )
        self._check_nested()
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
        _slot_overrides(self.slot_overrides, self.n_jobs)
        for key in ("sampler", "pruner"):
            node = getattr(self, key)
            if node is not None and not _target(node):
                raise SettingsError(
                    f"hydra.sweeper.{key}: needs a _target_ (choose one with "
                    f"hydra/sweeper/{key}=...)"
                )
            if key == "sampler" and _target(node) in REMOVED_SAMPLERS:
                raise SettingsError(REMOVED_SAMPLERS[_target(node)])
            try:
                arguments.check(key, node)  # each argument in its accepted range
            except arguments.ArgumentError as e:
                raise SettingsError(str(e)) from None

    def _check_nested(self) -> None:
        """The ranges and choices inside ``terminator``, ``enqueue_from``, ``params_from``,
        ``artifacts`` and ``importances``."""
        if self.terminator is not None:
            if len(self.directions) > 1:
                raise SettingsError("hydra.sweeper.terminator: needs a single objective")
            _at_least("terminator.patience", self.terminator.patience, 1)
            _at_least("terminator.min_delta", self.terminator.min_delta, 0)
        if self.enqueue_from is not None:
            _at_least("enqueue_from.top", self.enqueue_from.top, 1)
        sel = self.params_from
        if sel is not None:
            if sel.take not in ("top", "rest"):
                raise SettingsError(f"hydra.sweeper.params_from.take={sel.take!r}: top or rest")
            if (sel.count is None) == (sel.share is None):
                raise SettingsError("hydra.sweeper.params_from: give count or share (one of them)")
            if sel.count is not None:
                _at_least("params_from.count", sel.count, 1)
            if sel.share is not None and not 0 < sel.share <= 1:
                raise SettingsError(
                    f"hydra.sweeper.params_from.share={_shown(sel.share)}: in (0, 1]"
                )
        if self.artifacts is not None and self.artifacts.dir == "":
            raise SettingsError("hydra.sweeper.artifacts.dir='': a folder path, or null")
        known = ", ".join(IMPORTANCE_EVALUATORS)
        for name in self.importances:
            if name not in IMPORTANCE_EVALUATORS:
                raise SettingsError(
                    f"hydra.sweeper.importances: {name!r} is not an evaluator (use {known})"
                )


#: Samplers Optuna removed that hydra-optuna-sweeper's configs may still name.
REMOVED_SAMPLERS = {
    "optuna.samplers.MOTPESampler": (
        "hydra/sweeper/sampler=motpe: Optuna removed MOTPESampler; use "
        "hydra/sweeper/sampler=tpe (it handles several objectives) or nsgaii"
    ),
}


def _target(node: Any) -> str:
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=False)
    return str(node.get("_target_", "")) if isinstance(node, dict) else ""


def _at_least(key: str, value: float, low: float) -> None:
    if value < low:
        kind = "an integer" if isinstance(value, int) else "a number"
        raise SettingsError(f"hydra.sweeper.{key}={_shown(value)}: {kind} >= {low:g}")


def _shown(value: Any) -> str:
    """A value as the user wrote it (the schema made ``-1`` the float ``-1.0``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


#: What a key holds, where its type alone says too little (``{n_jobs}``: the config's value).
_EXPECTS = {
    "timeout": "seconds > 0, or null for no limit",
    "storage_retry_s": "seconds, a number >= 0 (0: no retry)",
    "enqueue": "a list of {{key: value}} dicts, e.g. [{{x: 1.0, y: 0}}]",
    "enqueue_from": "{{study: NAME, top: K}}, or null",
    "terminator": "{{patience: N, min_delta: D}}, or null",
    "params_from": "{{study: NAME, take: top|rest, count: N or share: S}}, or null",
    "artifacts": "{{dir: <folder>, checkpoints: true}}, or null",
    "slot_overrides": "{{key: [value of slot 0, slot 1, ...]}}, or null",
    "slot_overrides.*": "a list of at least n_jobs={n_jobs} values, one per slot",
    "params": "{{key: choice(...) | range(...) | interval(...) | tag(log, ...) | value}}",
    "search_space": "{{key: {{type: ..., low: ..., high: ...}}}}, or null",
    "pin_exclude": "a list of keys",
    "pin_user_attrs": "{{key: user attribute of pin_from's best trial}}",
    "importances": "a list of evaluators ([]: none)",
}
#: What OmegaConf's type names mean, in the words of the one-line errors.
_EXPECTED = {
    "Integer": "an integer",
    "Float": "a number",
    "Boolean": "true or false",
    "String": "a string",
}


def _reworded(e: OmegaConfBaseException, config: dict[str, Any]) -> str:
    """OmegaConf's multi-line validation error as one ``hydra.sweeper.<key>=<value>: ...``."""
    key = str(getattr(e, "full_key", "") or "") or _failing_key(config)
    first = str(e).splitlines()[0] if str(e) else type(e).__name__
    if isinstance(e, ConfigKeyError):
        parent = key.rpartition(".")[0]
        node = SweeperConf if not parent else _nested_type(parent)
        known = ", ".join(f.name for f in fields(node)) if node else ""
        what = "lab_optuna sweeper" if not parent else f"hydra.sweeper.{parent}"
        return f"hydra.sweeper.{key}: not a key of the {what} (keys: {known})"
    value = OmegaConf.select(OmegaConf.create(config), key, default=None) if key else None
    shown = f"={value!r}" if value is not None else ""
    expects = _EXPECTS.get(key) or _EXPECTS.get(key.rpartition(".")[0] + ".*")
    if expects:
        return f"hydra.sweeper.{key}{shown}: {expects.format(n_jobs=config.get('n_jobs', 2))}"
    for word, expected in _EXPECTED.items():
        if first.endswith(f"converted to {word}") or f"not a valid {word.lower()}" in first:
            return f"hydra.sweeper.{key}{shown}: {expected}"
    return f"hydra.sweeper.{key}{shown}: {first}"


def _failing_key(config: dict[str, Any]) -> str:
    """The first key of ``config`` the schema refuses (OmegaConf names none for a value of
    the wrong kind at the top, e.g. ``artifacts: 7``)."""
    for key, value in config.items():
        try:
            OmegaConf.merge(OmegaConf.structured(SweeperConf), {key: value})
        except OmegaConfBaseException:
            return key
    return ""


def _strict_bools(config: dict[str, Any]) -> None:
    """A boolean key holds true or false (OmegaConf would also take 1, 0 or "yes")."""
    nested = [(f.name, _nested_type(f.name)) for f in fields(SweeperConf)]
    nodes = [("", SweeperConf, config)] + [
        (f"{k}.", node, config[k]) for k, node in nested if node and isinstance(config.get(k), dict)
    ]
    for prefix, node, values in nodes:
        for f in fields(node):
            if f.type is bool and f.name in values and not isinstance(values[f.name], bool):
                raise SettingsError(
                    f"hydra.sweeper.{prefix}{f.name}={values[f.name]!r}: true or false"
                )


def _nested_type(key: str) -> type | None:
    """The dataclass of a nested key (``terminator`` -> TerminatorConf), or None."""
    hint = {f.name: f.type for f in fields(SweeperConf)}.get(key)
    for candidate in getattr(hint, "__args__", (hint,)):
        if isinstance(candidate, type) and hasattr(candidate, "__dataclass_fields__"):
            return candidate
    return None


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
