"""Values per slot (``hydra.sweeper.slot_overrides``): slot *i* adds ``key=v_i`` to its trial.

While ``n_jobs`` trials run, each holds one slot index; a new trial takes the lowest free
one and a finished trial frees it, so two trials running at once never share a slot — e.g.
``trainer.device: [cuda:0, cuda:1]`` gives each its own GPU, ``[cuda:0, cuda:0]`` puts two
trials on one. Hydra's basic launcher runs one trial at a time: always slot 0. The slot and
its values are the trial's user attributes ``slot`` and ``slot_overrides`` (and its
``trial.json``). Lists may be longer than ``n_jobs``; the values past it are unused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import optuna
from hydra.types import HydraContext
from omegaconf import DictConfig

from lab_optuna import names
from lab_optuna._keys.settings import Settings, SettingsError
from lab_optuna.overrides import format_value


class SlotOverrides:
    """Which slot each running trial holds, and the overrides of a slot."""

    def __init__(self, values: Mapping[str, Any] | None = None, n_slots: int = 1) -> None:
        self.values = {str(k): list(v) for k, v in (values or {}).items()}
        self.n_slots = n_slots
        self.held: dict[int, int] = {}  # trial number -> slot index

    def take(self, trial: optuna.Trial) -> tuple[str, ...]:
        """Give ``trial`` the lowest free slot; its overrides (none without slot_overrides)."""
        if not self.values:
            return ()
        busy = set(self.held.values())
        slot = next(i for i in range(self.n_slots) if i not in busy)
        self.held[trial.number] = slot
        chosen = {key: values[slot] for key, values in self.values.items()}
        trial.set_user_attr(names.SLOT, slot)
        trial.set_user_attr(names.SLOT_OVERRIDES, chosen)
        return tuple(f"{key}={format_value(value)}" for key, value in chosen.items())

    def free(self, number: int) -> None:
        """The trial numbered ``number`` ended (or was abandoned): its slot is free again."""
        self.held.pop(number, None)


def check_slot_keys(
    slot_overrides: Mapping[str, Any] | None, searched: Iterable[str], fixed: Iterable[str]
) -> None:
    """A key given per slot must not be searched or fixed too (SettingsError, one line)."""
    for key in slot_overrides or {}:
        for what, keys in (("searched", searched), ("fixed", fixed)):
            if str(key) in {k.lstrip("+~") for k in keys}:
                raise SettingsError(
                    f"hydra.sweeper.slot_overrides.{key}: {key} is {what} too; "
                    "give it per slot or in the sweep, not both"
                )


def check_slot_configs(
    settings: Settings, fixed: Mapping[str, str], hydra_context: HydraContext, config: DictConfig
) -> None:
    """Compose the app's config once with each slot's values (and the fixed overrides): a
    key the app lacks or a value it rejects is one line now, not a failure in every trial."""
    if not settings.slot_overrides:
        return
    n_slots = settings.n_jobs
    values = SlotOverrides(settings.slot_overrides, n_slots).values
    seen: set[tuple[str, ...]] = set()
    for slot in range(n_slots):
        chosen = tuple(f"{k}={format_value(v[slot])}" for k, v in values.items())
        if chosen in seen:
            continue
        seen.add(chosen)
        overrides = [f"{k}={v}" for k, v in fixed.items()] + list(chosen)
        try:
            hydra_context.config_loader.load_sweep_config(config, overrides)
        except Exception as e:  # noqa: BLE001 - Hydra's own message, on one line
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise SettingsError(
                f"hydra.sweeper.slot_overrides: slot {slot} ({' '.join(chosen)}): {first}"
            ) from None


def record_of(trial: optuna.Trial | None) -> dict[str, Any]:
    """The slot fields of a job's ``trial.json`` ({} without slot_overrides)."""
    if trial is None:
        return {}
    attrs = trial.user_attrs
    if names.SLOT not in attrs:
        return {}
    return {"slot": attrs[names.SLOT], "slot_overrides": attrs.get(names.SLOT_OVERRIDES)}
