"""A job's Hydra overrides as report columns, and back into a ``python train.py …`` command.

Parsing is the project's one override parser, ``lab_optuna.overrides`` (Hydra's own grammar):
values are typed as Hydra types them (``on``/``off`` stay strings, ``1e-3`` is a float).
Only the command building lives here.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from hydra.errors import HydraException

from lab_optuna import overrides as hydra_overrides


def override_key(text: str) -> str:
    """The key of an override (``'++a.b=1'`` → ``'a.b'``); its text if Hydra cannot parse it."""
    try:
        return hydra_overrides.key_of(text)
    except HydraException:
        return str(text).split("=", 1)[0].lstrip("+~").strip()


def is_internal(key: str) -> bool:
    """True for Hydra's own keys (``hydra.*``): not a parameter of the experiment."""
    return hydra_overrides.is_hydra_key(key)


def column_value(value: Any) -> Any:
    """A parsed value as a table cell: lists and dicts as their override text (hashable, so
    they can be a comparison's groups), everything else as Hydra typed it."""
    if isinstance(value, (list, tuple, dict)):
        return hydra_overrides.format_value(value)
    return value


def parse_overrides(overrides: Iterable[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split overrides into ``(params, internal)`` dicts of key → value (Hydra's typing).

    Deletions (``~key``) are skipped, ``hydra.*`` keys go to ``internal``; a later override of
    a key wins, as in Hydra. Text Hydra cannot parse is kept as a string under its key.
    """
    params: dict[str, Any] = {}
    internal: dict[str, Any] = {}
    for item in overrides:
        try:
            override = hydra_overrides.parse(item)
        except HydraException:
            key, _, raw = str(item).partition("=")
            key, value = key.lstrip("+~").strip(), raw.strip()
        else:
            if override.is_delete():
                continue
            key, value = override.key_or_group, hydra_overrides.value_of(override)
        if key:
            (internal if is_internal(key) else params)[key] = column_value(value)
    return params, internal


def format_value(value: Any) -> str:
    """A Python (or numpy) value as override text Hydra reads back to the same value."""
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    return hydra_overrides.format_value(value)


def command_line(
    overrides: Iterable[str],
    extra: Mapping[str, Any] | None = None,
    script: str = "python train.py",
) -> str:
    """Build a shell command reproducing a job from its overrides.

    Hydra's own keys are dropped (a search preset stays, with ``hydra.mode=RUN``); ``extra``
    (e.g. phase-2 pinned values) is appended for keys not already overridden. Every argument
    is shell-quoted as needed.
    """
    kept: list[str] = []
    keys: set[str] = set()
    for item in overrides:
        key = override_key(item)
        if is_internal(key):
            continue
        kept.append(str(item).strip())
        keys.add(key)
    for key, value in (extra or {}).items():
        if key not in keys and not is_internal(key):
            kept.append(f"{key}={format_value(value)}")
    if "hparams_search" in keys:
        # keep the preset's settings (epochs, early stopping) but run one job, not a sweep
        kept.append("hydra.mode=RUN")
    return " ".join([script, *(shlex.quote(arg) for arg in kept)])


def command_overrides(command: str) -> list[str]:
    """Inverse of :func:`command_line`: the override arguments of a command string."""
    words = shlex.split(command)
    return [w for w in words if "=" in w or w.startswith("~")]
