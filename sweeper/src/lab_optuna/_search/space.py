"""Hydra sweep overrides → Optuna distributions (the grammar of hydra-optuna-sweeper).

=================================  ==============================================
``choice(a, b)``                   ``CategoricalDistribution``
``shuffle(range(1, 4))``           ``CategoricalDistribution`` of the range's values
``range(1, 10)`` / ``range(1, 10, step=2)``  ``IntDistribution(1, 10, step)`` (stop included,
                                   as in hydra-optuna-sweeper)
``range(0.5, 5.5, step=0.5)``      ``FloatDistribution(0.5, 5.5, step=0.5)``
``interval(0, 1)``                 ``FloatDistribution(0, 1)``
``int(interval(1, 5))``            ``IntDistribution(1, 5)``
``tag(log, interval(1e-4, 1))``    ``FloatDistribution(..., log=True)`` (int: ``IntDistribution``)
anything else (``x=3``)            fixed: passed to every trial as is
=================================  ==============================================
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    RangeSweep,
    Transformer,
)
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from lab_optuna import overrides as ov


class SearchSpaceError(ValueError):
    """A sweep the sweeper cannot turn into a distribution; one line naming the key."""


def distribution(override: Override) -> BaseDistribution | str:
    """The Optuna distribution of a sweep override, or the fixed value's text."""
    key = override.key_or_group
    if not override.is_sweep_override():
        return override.get_value_element_as_str()
    value = override.value()
    try:
        if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
            choices = list(override.sweep_iterator(transformer=Transformer.encode))
            return CategoricalDistribution(choices)
        if isinstance(value, RangeSweep):
            start, stop, step = value.start, value.stop, value.step
            if any(isinstance(v, float) for v in (start, stop, step)):
                return FloatDistribution(float(start), float(stop), step=float(step))
            return IntDistribution(int(start), int(stop), step=int(step))
        if isinstance(value, IntervalSweep):
            log = "log" in value.tags
            if isinstance(value.start, int) and isinstance(value.end, int):
                return IntDistribution(int(value.start), int(value.end), log=log)
            return FloatDistribution(float(value.start), float(value.end), log=log)
    except ValueError as e:  # Optuna's own checks: low > high, log with low <= 0, ...
        raise SearchSpaceError(f"{key}: {_text(override)}: {e}") from None
    raise SearchSpaceError(f"{key}: {_text(override)} is not supported by the Optuna sweeper")


def from_overrides(texts: Iterable[str]) -> tuple[dict[str, BaseDistribution], dict[str, str]]:
    """(search space, fixed values) of override strings; a later override of a key wins."""
    space: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    for text in texts:
        try:
            override = ov.parse(text)
        except Exception as e:  # Hydra's parse errors are long: keep the first line
            raise SearchSpaceError(f"cannot parse {text!r}: {str(e).splitlines()[0]}") from None
        key = override.get_key_element()
        dist = distribution(override)
        space.pop(key, None)
        fixed.pop(key, None)
        if isinstance(dist, BaseDistribution):
            space[key] = dist
        else:
            fixed[key] = dist
    return space, fixed


def from_config(name: str, node: Mapping[str, Any]) -> BaseDistribution:
    """A distribution from the deprecated ``search_space`` form
    (``{type: categorical|int|float, choices, low, high, step, log}``)."""
    kind = str(node.get("type", "")).lower().rsplit(".", 1)[-1]
    low, high, step, log = node.get("low"), node.get("high"), node.get("step"), node.get("log")
    try:
        if kind == "categorical":
            return CategoricalDistribution(list(node["choices"]))
        stepped = step is not None and not log
        if kind == "int":
            int_step = int(step) if stepped else 1
            return IntDistribution(int(low), int(high), log=bool(log), step=int_step)
        if kind == "float":
            float_step = float(step) if stepped else None
            return FloatDistribution(float(low), float(high), log=bool(log), step=float_step)
    except (KeyError, TypeError, ValueError) as e:
        raise SearchSpaceError(f"hydra.sweeper.search_space.{name}: {e}") from None
    raise SearchSpaceError(
        f"hydra.sweeper.search_space.{name}.type={node.get('type')!r}: "
        "use categorical, int or float"
    )


def suggest(trial: Any, name: str, dist: BaseDistribution) -> Any:
    """Sample ``name`` from ``dist`` through the trial's public ``suggest_*`` API."""
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    raise SearchSpaceError(f"{name}: unsupported distribution {dist!r}")


def grid(space: Mapping[str, BaseDistribution]) -> dict[str, list[Any]]:
    """The values of each parameter for ``GridSampler``: choices, or a stepped range."""
    values: dict[str, list[Any]] = {}
    for name, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            values[name] = list(dist.choices)
        elif isinstance(dist, IntDistribution) and not dist.log:
            values[name] = list(range(dist.low, dist.high + 1, dist.step))
        elif isinstance(dist, FloatDistribution) and dist.step is not None:
            n = int(round((dist.high - dist.low) / dist.step)) + 1
            values[name] = [round(dist.low + i * dist.step, 12) for i in range(n)]
        else:
            raise SearchSpaceError(
                f"{name}: the grid sampler needs choice(...) or range(...), "
                f"not a continuous {type(dist).__name__}"
            )
    return values


def describe(dist: BaseDistribution) -> str:
    """A distribution in the sweep grammar's words: ``choice(a, b)``, ``log[1e-4, 0.3]``."""
    if isinstance(dist, CategoricalDistribution):
        return "choice(" + ", ".join(map(str, dist.choices)) + ")"
    if isinstance(dist, (IntDistribution, FloatDistribution)):
        step = f" step {dist.step}" if dist.step not in (None, 1) else ""
        kind = "int" if isinstance(dist, IntDistribution) else ""
        return f"{'log' if dist.log else ''}{kind}[{dist.low:g}, {dist.high:g}{step}]"
    return repr(dist)


def grid_size(values: Mapping[str, list[Any]]) -> int:
    return math.prod(len(v) for v in values.values())


def _text(override: Override) -> str:
    line = override.input_line or ""
    return line.split("=", 1)[1] if "=" in line else line
