"""The one override parser of the project: Hydra's own grammar, never a hand-written one.

Validation, the sweeper and ``analysis/`` all read ``key=value`` strings through these
helpers, so ``on``/``off``, ``1e-3``, quoted strings and sweeps mean the same everywhere.
Imports nothing of Optuna (``lenet_lab`` uses it too).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override

_PARSER: OverridesParser | None = None


def _parser() -> OverridesParser:
    global _PARSER
    if _PARSER is None:
        _PARSER = OverridesParser.create()
    return _PARSER


def parse(text: str) -> Override:
    """Hydra's ``Override`` for one ``key=value`` string (raises Hydra's parse error)."""
    return _parser().parse_override(str(text))


def key_of(text: str) -> str:
    """The override's key without ``+``/``++``/``~`` (``'+a.b=1'`` → ``'a.b'``)."""
    return parse(text).key_or_group


def value_of(override: Override) -> Any:
    """The typed value Hydra would assign: int, float, bool, None, str, list or dict.

    Sweeps (``choice(...)``, ``interval(...)``) have no single value: their text is returned.
    """
    if override.is_delete() and override.value() is None:
        return None
    if override.is_sweep_override():
        return _value_text(override)
    return override.value()


def parse_override(text: str) -> tuple[str, Any]:
    """``(key, typed value)`` of one override."""
    override = parse(text)
    return override.key_or_group, value_of(override)


def parse_overrides(texts: Iterable[str]) -> dict[str, Any]:
    """``{key: typed value}``; a later override of the same key wins, as in Hydra."""
    return dict(parse_override(t) for t in texts)


def is_hydra_key(key: str) -> bool:
    """True for Hydra's own keys (``hydra.*``), which are not an app's parameters."""
    return key == "hydra" or key.startswith("hydra.") or key.startswith("hydra/")


def format_value(value: Any) -> str:
    """A Python value as override text Hydra reads back to the same value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{format_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    try:  # plain words stay unquoted when Hydra reads them back as the same string
        if parse(f"k={text}").value() == text and not parse(f"k={text}").is_sweep_override():
            return text
    except Exception:  # noqa: BLE001 - anything Hydra cannot read back gets quoted
        pass
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _value_text(override: Override) -> str:
    text = override.input_line or ""
    return text.split("=", 1)[1] if "=" in text else text
