"""Every searched or fixed key exists in the app's config: checked once, before any trial.

A typo in a key (``optimizer.lrr``) would otherwise fail every trial at its config's
composition. ``check_keys`` composes the app's config (Hydra's public ``load_sweep_config``)
once per option of each group that is searched or fixed (``model=choice(a, b)``: ``a`` and
``b`` are checked to be options of the group ``model``), and checks every other key against
the union of those compositions: a key that only exists under some group options (the
regularizer's ``coef``, only under ``l1``/``l2``) is accepted. A key missing from all of them
is one line naming the closest existing key; an append (``+key``) of a key every composition
already has is one line too. ``++key`` (add or override) is not checked.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import CategoricalDistribution

from lab_optuna._keys.settings import Settings, SettingsError
from lab_optuna._search.plan import Plan, flat_params


def check_keys(
    settings: Settings,
    plan: Plan,
    arguments: list[str],
    hydra_context: HydraContext,
    config: DictConfig,
) -> None:
    """SettingsError (one line) for the first key of ``plan`` the app's config lacks;
    ``arguments`` (the command line's overrides) say which keys came from there."""
    cli = {a.split("=", 1)[0] for a in arguments}
    where = lambda key: key if key in cli else _where(settings, key)  # noqa: E731
    loader = hydra_context.config_loader
    groups: dict[str, list[str]] = {}  # override key -> the options to compose
    plain: list[str] = []
    entries = [(k, _choices(d)) for k, d in plan.space.items()]
    entries += [(k, [v]) for k, v in plan.fixed.items()]
    for key, values in entries:
        name = _name(key)
        options = _group_options(loader, name)
        if not options:
            plain.append(key)
            continue
        if values is None:  # an interval over a group: Hydra will refuse it anyway
            raise SettingsError(f"{where(key)}: {name} is a config group: use choice(...)")
        for value in values:
            if str(value) not in options:
                raise SettingsError(
                    f"{where(key)}={value}: not an option of the config group {name} "
                    f"(options: {', '.join(options)})"
                )
        groups[key] = [str(v) for v in values]
    if not plain:
        return
    compositions = Compositions(loader, config, groups)
    for key in plain:
        name = _name(key)
        if key.startswith("++") or key.startswith("~"):
            continue
        if key.startswith("+"):
            if all(name in paths for paths in compositions):
                raise SettingsError(
                    f"{where(key)}: {name} is already a key of the app's config "
                    f"(drop the +, or use ++ to add or override)"
                )
            continue
        if not any(name in paths for paths in compositions.for_key(name)):
            union = set().union(*compositions)
            close = difflib.get_close_matches(name, sorted(union), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise SettingsError(f"{where(key)}: not a key of the app's config{hint}")


class Compositions:
    """The key paths of the app's config composed with the first option of every group, then
    (composed when first needed: a composition takes a second or two) once more for each
    other option of each group."""

    def __init__(self, loader: Any, config: DictConfig, groups: dict[str, list[str]]) -> None:
        base = {key: options[0] for key, options in groups.items()}
        self.variants: list[tuple[str, dict[str, str]]] = [("", base)]
        for key, options in groups.items():
            self.variants += [(_name(key), {**base, key: o}) for o in options[1:]]
        self.loader, self.config = loader, config
        self.done: dict[int, set[str]] = {}

    def __iter__(self) -> Iterator[set[str]]:
        return self.for_key("")

    def for_key(self, name: str) -> Iterator[set[str]]:
        """The compositions, first those that vary a group ``name`` lies under."""
        order = sorted(
            range(len(self.variants)),
            key=lambda i: (i > 0, not name.startswith(self.variants[i][0] + "."), i),
        )
        for i in order:
            if i not in self.done:
                self.done[i] = self._compose(self.variants[i][1])
            yield self.done[i]

    def _compose(self, variant: dict[str, str]) -> set[str]:
        overrides = [f"{k}={v}" for k, v in variant.items()]
        try:
            cfg = self.loader.load_sweep_config(self.config, overrides)
        except Exception as e:  # noqa: BLE001 - Hydra's composition errors are long
            raise SettingsError(
                f"{' '.join(overrides)}: the app's config does not compose "
                f"({str(e).splitlines()[0]})"
            ) from None
        return set(_paths(cfg))


def _paths(node: Any, prefix: str = "") -> Iterator[str]:
    """Every key path of ``node`` (inner nodes too), interpolations left unresolved."""
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=False)
    if isinstance(node, dict):
        for key, child in node.items():
            path = f"{prefix}{key}"
            yield path
            yield from _paths(child, path + ".")


def _choices(dist: Any) -> list[Any] | None:
    return list(dist.choices) if isinstance(dist, CategoricalDistribution) else None


def _name(key: str) -> str:
    """``+a.b@pkg`` -> ``a.b``."""
    return key.lstrip("+~").split("@", 1)[0]


def _group_options(loader: Any, name: str) -> list[str]:
    if "." in name:
        return []
    try:
        return sorted(loader.get_group_options(name))
    except Exception:  # noqa: BLE001 - not a group
        return []


def _where(settings: Settings, key: str) -> str:
    """The key as the user wrote it: ``hydra.sweeper.params.<key>`` or as is."""
    return f"hydra.sweeper.params.{key}" if key in flat_params(settings.params or {}) else key
