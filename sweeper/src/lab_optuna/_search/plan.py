"""What a sweep searches and fixes, decided before any trial: the plan.

The search space comes from ``params``, the command line's sweeps (they win), a screening
study's important params (``params_from``) and the deprecated ``search_space``; fixed values
from the command line and pins (``pin_from``). ``check_fixed_config`` tries the config every
trial shares once; ``Plan.configure`` turns one Optuna trial into its job's overrides.

As hydra-optuna-sweeper does, the deprecated ``search_space`` warns (a ``UserWarning``), and
is ignored with a warning when ``params`` is set too.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import optuna
from hydra.types import HydraContext
from hydra.utils import get_method
from omegaconf import DictConfig
from optuna.distributions import BaseDistribution

from lab_optuna._keys.settings import Settings, SettingsError
from lab_optuna._loop.slot_overrides import check_slot_keys
from lab_optuna._search import space as sp
from lab_optuna._search.pinning import pins
from lab_optuna._search.screening import select
from lab_optuna.overrides import format_value, key_of

#: Where Hydra explains the move from ``search_space`` to ``params``.
MIGRATION = "https://hydra.cc/docs/upgrades/1.1_to_1.2/changes_to_sweeper_config/"


@dataclass
class Plan:
    """The searched distributions, the fixed overrides and the pins of a sweep."""

    space: dict[str, BaseDistribution]
    fixed: dict[str, str]
    pinned: dict[str, Any]

    def describe(self) -> str:
        return ", ".join(f"{k}={sp.describe(v)}" for k, v in self.space.items()) or "-"

    def configure(
        self, trial: optuna.Trial, config: DictConfig, custom_search_space: str | None
    ) -> tuple[str, ...]:
        """Sample ``trial`` (the space, then ``custom_search_space``) → its job's overrides."""
        for name, dist in self.space.items():
            sp.suggest(trial, name, dist)
        for name, value in self.fixed.items():
            trial.set_user_attr(name, value)
        if custom_search_space:
            get_method(custom_search_space)(config, trial)
        overlap = set(trial.params) & set(self.fixed)
        if overlap:
            raise SettingsError(f"searched and fixed at once: {sorted(overlap)}")
        params = {k: v if isinstance(v, str) else format_value(v) for k, v in trial.params.items()}
        params.update(self.fixed)
        return tuple(f"{k}={v}" for k, v in params.items())


def make_plan(settings: Settings, arguments: list[str]) -> Plan:
    """The plan of a sweep with settings ``s`` and command-line ``arguments``."""
    searched = [f"{k}={v}" for k, v in flat_params(settings.params or {}).items()]
    screened = select(settings.storage, settings.params_from) if settings.params_from else {}
    pinned: dict[str, Any] = {}
    if settings.pin_from:
        taken = {key_of(o) for o in searched + arguments} | set(screened)
        taken |= set(settings.pin_exclude or [])
        pinned = pins(settings.storage, settings.pin_from, settings.pin_user_attrs or {}, taken)
    texts = [f"{k}={format_value(v)}" for k, v in pinned.items()] + searched + arguments
    space, fixed = sp.from_overrides(texts)
    space = {**_deprecated_space(settings), **screened, **space}  # params and the command line win
    for key in fixed:
        space.pop(key, None)
    check_slot_keys(settings.slot_overrides, space, fixed)
    return Plan(space, fixed, pinned)


def flat_params(params: Any, prefix: str = "") -> dict[str, Any]:
    """``params`` with nested keys joined by dots: ``hydra.sweeper.params.optimizer.lr=...``
    on the command line nests ``{optimizer: {lr: ...}}``; it means the key ``optimizer.lr``."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, (dict, DictConfig)):
            out.update(flat_params(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _deprecated_space(settings: Settings) -> dict[str, BaseDistribution]:
    """The distributions of ``search_space`` (deprecated), with hydra-optuna-sweeper's
    warnings: it is deprecated; with ``params`` set too, it is ignored."""
    if settings.search_space is None:
        return {}
    if settings.params:
        warnings.warn(
            "hydra.sweeper.search_space is ignored: hydra.sweeper.params is set too and "
            f"defines the search space (move the rest of search_space there; {MIGRATION})",
            UserWarning,
            stacklevel=3,
        )
        return {}
    warnings.warn(
        "hydra.sweeper.search_space is deprecated: write the search space as "
        f"hydra.sweeper.params, e.g. x: interval(0, 1) ({MIGRATION})",
        UserWarning,
        stacklevel=3,
    )
    return {str(k): sp.from_config(str(k), v) for k, v in settings.search_space.items()}


def check_fixed_config(
    settings: Settings, plan: Plan, hydra_context: HydraContext, config: DictConfig
) -> None:
    """Run ``check_config`` once on the config every trial shares (fixed overrides and
    pins; searched keys at their defaults): a bad fixed value stops the sweep here, in
    one line, instead of failing every trial. Errors about searched keys go to trials."""
    if not settings.check_config:
        return
    check = get_method(settings.check_config)
    overrides = [f"{k}={v}" for k, v in plan.fixed.items()]
    cfg = hydra_context.config_loader.load_sweep_config(config, overrides)
    searched = {k.lstrip("+~") for k in plan.space}
    try:
        check(cfg)
    except Exception as e:
        if getattr(e, "key", None) in searched:
            return
        raise SystemExit(f"error: {e}") from None
