"""Parse Hydra override strings and turn them back into a ``python train.py …`` command."""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

#: Override keys that belong to the sweeper/Hydra, not to the experiment.
INTERNAL_PREFIXES: tuple[str, ...] = ("optuna_trial.", "hydra.")

_OVERRIDE_RE = re.compile(r"^(\+\+|\+|~)?([^=]+?)(?:=(.*))?$", re.S)


def split_override(text: str) -> tuple[str, str, str | None]:
    """Split ``'++a.b=1'`` into ``('++', 'a.b', '1')``; value is None for ``~key``."""
    match = _OVERRIDE_RE.match(str(text).strip())
    if match is None:  # pragma: no cover - the regex matches any non-empty string
        return "", str(text).strip(), None
    prefix, key, value = match.groups()
    return prefix or "", key.strip(), value


def is_internal(key: str) -> bool:
    """True for sweeper-internal keys (``optuna_trial.*``, ``hydra.*``)."""
    return key == "hydra" or key.startswith(INTERNAL_PREFIXES)


def parse_value(raw: str) -> Any:
    """Parse an override value roughly like Hydra does: numbers, bools, null, lists, strings.

    ``on``/``off``/``yes``/``no`` stay strings (YAML 1.1 would make them booleans; Hydra does
    not), ``1e-3`` becomes a float. Lists/dicts are kept as the raw string so the value stays
    hashable (usable as a DataFrame group key).
    """
    text = raw.strip()
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, bool) and text.lower() not in ("true", "false"):
        return text
    if value is None:
        return "null" if text else ""
    if isinstance(value, (list, dict)):
        return text
    if isinstance(value, (int, float, str, bool)):
        return value
    return text  # dates and other YAML types: keep the literal


def parse_overrides(overrides: Iterable[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split overrides into ``(params, internal)`` dicts of key → parsed value.

    Deletions (``~key``) are skipped; ``optuna_trial.*``/``hydra.*`` go to ``internal``.
    """
    params: dict[str, Any] = {}
    internal: dict[str, Any] = {}
    for item in overrides:
        prefix, key, raw = split_override(item)
        if raw is None or prefix == "~" or not key:
            continue
        (internal if is_internal(key) else params)[key] = parse_value(raw)
    return params, internal


def format_value(value: Any) -> str:
    """Render a Python value as a Hydra override value."""
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value)
    return str(value)


def command_line(
    overrides: Iterable[str],
    extra: Mapping[str, Any] | None = None,
    script: str = "python train.py",
) -> str:
    """Build a shell command reproducing a job from its overrides.

    Sweeper-internal keys are dropped (a search preset stays, with ``hydra.mode=RUN``);
    ``extra`` (e.g. phase-2 pinned values) is appended for
    keys not already overridden. Every argument is shell-quoted as needed.
    """
    kept: list[str] = []
    keys: set[str] = set()
    for item in overrides:
        _, key, _ = split_override(item)
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
