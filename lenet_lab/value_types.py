"""Every key of the lab's config has its type: checked before any data is read.

The fixed keys (``conf/train.yaml``'s own, ``trainer.*``, ``data.*``) are typed by the
dataclasses of ``fixed_keys.py``. A ``_target_`` group's keys differ by option, and no
hand-written list names them: a key has the type of its default in the options that build the
same ``_target_`` (``conf/<group>/<option>.yaml``); where the default is null
(``scheduler.T_max``) or the key is new (``+scheduler.foo``), the type its constructor's
signature declares (``int``, ``float``, ``bool``). ``check_types(cfg)``
raises one ``ConfigError`` naming the first key of the wrong type: ``seed must be an integer,
got 'abc'``. A group key's null is left to the other checks, and a key whose type cannot be
told (a default of the user's own option) to its constructor.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf

from .errors import ConfigError
from .fixed_keys import SCHEMAS

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
#: What each kind accepts and how the error says it.
KINDS = {
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "number": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "str": (lambda v: isinstance(v, (str, int, float)) and not isinstance(v, bool), "a string"),
    "list": (lambda v: isinstance(v, (list, ListConfig)), "a list"),
    "dict": (lambda v: isinstance(v, (dict, DictConfig)), "a mapping"),
}
_ANNOTATIONS: dict[Any, str] = {int: "int", float: "number", bool: "bool"}
_ANNOTATIONS.update({"int": "int", "float": "number", "bool": "bool"})
#: A fixed key's declared type -> its kind (a dataclass field may also be a string).
_FIELD_KINDS: dict[Any, str] = {**_ANNOTATIONS, str: "str"}


def kind_of(value: Any) -> str | None:
    """The kind of a default (null: none)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return None if "${" in value else "str"  # an interpolation: its target's type
    return "list" if isinstance(value, list) else "dict" if isinstance(value, dict) else None


@functools.lru_cache(maxsize=1)
def _defaults() -> dict[str, list[dict[str, Any]]]:
    """Each ``_target_`` group's options' keys, from the lab's config files."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for folder in sorted(p for p in CONF_DIR.iterdir() if p.is_dir()):
        if folder.name in ("hydra", "experiment", "hparams_search", *SCHEMAS):
            continue
        groups[folder.name] = [
            OmegaConf.to_container(OmegaConf.load(f), resolve=False)
            for f in sorted(folder.glob("*.yaml"))
        ]
    return groups


def _merge(into: dict[str, str], key: str, kind: str | None) -> None:
    if kind is None:
        return
    old = into.get(key)
    if old is None or old == kind:
        into[key] = kind
    elif {old, kind} == {"int", "number"}:
        into[key] = "number"


def _leaves(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    for key, value in node.items():
        if str(key).startswith("_") or key == "defaults":
            continue
        path = f"{prefix}{key}"
        yield path, value
        if isinstance(value, dict):
            yield from _leaves(value, path + ".")


def expected_kinds(cfg: DictConfig) -> dict[str, str]:
    """Key path -> kind expected for a ``_target_`` group's key (the group's target decides
    which options' defaults count)."""
    kinds: dict[str, str] = {}
    for group, options in _defaults().items():
        node = cfg.get(group)
        if not isinstance(node, DictConfig):
            continue
        target = node.get("_target_")
        same = [o for o in options if o.get("_target_") == target] or ([] if target else options)
        for option in same:
            for key, value in _leaves(option, f"{group}."):
                _merge(kinds, key, kind_of(value))
        for name, kind in _signature_kinds(target).items():
            kinds.setdefault(f"{group}.{name}", kind)
    return kinds


@functools.lru_cache(maxsize=64)
def _signature_kinds(target: str | None) -> dict[str, str]:
    """The plain types (int, float, bool, optionally | None) a constructor declares."""
    if not target:
        return {}
    try:
        params = inspect.signature(get_object(target)).parameters
    except Exception:  # noqa: BLE001 - not importable or no signature: its own check then
        return {}
    out = {}
    for name, p in params.items():
        note = p.annotation
        if isinstance(note, str):
            note = note.replace(" | None", "").replace("Optional[", "").rstrip("]")
        try:
            kind = _ANNOTATIONS.get(note)
        except TypeError:  # an unhashable annotation
            kind = None
        if kind:
            out[name] = kind
    return out


def check_types(cfg: DictConfig) -> None:
    """ConfigError for the first key whose value is not of its type."""
    for where, schema in SCHEMAS.items():
        _check_schema(cfg.get(where) if where else cfg, schema, where)
    for key, kind in expected_kinds(cfg).items():
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if value is not None and not KINDS[kind][0](value):
            _refuse(key, kind, value)


def _check_schema(node: Any, schema: type, where: str) -> None:
    """The keys of ``schema`` that ``node`` (at ``where``) holds, each of its declared type
    (null only where the type allows None; no conversion: ``"3"`` is not an integer, ``1``
    not true)."""
    if not isinstance(node, DictConfig):
        return
    prefix = f"{where}." if where else ""
    for f in fields(schema):
        if f.name not in node:
            continue
        value = node.get(f.name)
        types = [t for t in typing.get_args(f.type) or (f.type,) if t is not type(None)]
        if value is None and types != [f.type]:  # ``int | None``: null allowed
            continue
        kind = _FIELD_KINDS[types[0]]
        if value is None or not KINDS[kind][0](value):
            _refuse(prefix + f.name, kind, value)


def _refuse(key: str, kind: str, value: Any) -> None:
    shown = OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value
    raise ConfigError(f"{key} must be {KINDS[kind][1]}, got {shown!r}", key)
