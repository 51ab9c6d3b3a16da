"""The accepted range of each sampler and pruner argument, checked before any trial.

Optuna itself refuses some bad arguments (with a message naming its own parameter) and
accepts others silently: a ``TPESampler(n_startup_trials=-1)``, ``n_ei_candidates=0``, a
``HyperbandPruner(reduction_factor=1)`` or ``min_resource > max_resource`` run as given.
``check(kind, node)`` checks the composed ``hydra.sweeper.sampler``/``pruner`` node against
one small table per class (``RULES``) and raises one line naming the key and its range:
``hydra.sweeper.pruner.n_warmup_steps=-1: an integer >= 0``. A class the table does not
know (a sampler of the user's own) is left to its constructor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf


class ArgumentError(ValueError):
    """A sampler or pruner argument outside its accepted range."""


@dataclass(frozen=True)
class Rule:
    """``ok(value)`` says whether a value is accepted; ``expect`` says what is."""

    ok: Callable[[Any], bool]
    expect: str


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def int_at_least(low: int, *, null: bool = False, also: tuple[Any, ...] = ()) -> Rule:
    extra = "".join(f" or {a}" for a in also) + (" or null" if null else "")
    return Rule(
        lambda v: (null and v is None) or v in also or (_is_int(v) and v >= low),
        f"an integer >= {low}{extra}",
    )


def number_in(low: float, high: float, *, null: bool = False, open_low: bool = False) -> Rule:
    left = "(" if open_low else "["
    return Rule(
        lambda v: (
            (null and v is None)
            or (_is_number(v) and (low < v if open_low else low <= v) and v <= high)
        ),
        f"a number in {left}{low:g}, {high:g}]" + (" or null" if null else ""),
    )


def one_of(*choices: Any) -> Rule:
    return Rule(
        lambda v: v in choices, " | ".join("null" if c is None else str(c) for c in choices)
    )


BOOL = Rule(lambda v: isinstance(v, bool), "true or false")
SEED = int_at_least(0, null=True)
NUMBER_OR_NULL = Rule(lambda v: v is None or _is_number(v), "a number or null")
POSITIVE_OR_NULL = Rule(lambda v: v is None or (_is_number(v) and v > 0), "a number > 0 or null")
#: A function argument (``gamma``, ``weights``): null, or a node Hydra instantiates.
FUNCTION = Rule(
    lambda v: v is None or (isinstance(v, Mapping) and "_target_" in v),
    "null or a function node ({_target_: ..., _partial_: true})",
)
STEPS = int_at_least(0)

RULES: dict[str, dict[str, Rule]] = {
    "TPESampler": {
        "seed": SEED,
        "n_startup_trials": int_at_least(0),
        "n_ei_candidates": int_at_least(1),
        "multivariate": BOOL,
        "group": BOOL,
        "constant_liar": BOOL,
        "warn_independent_sampling": BOOL,
        "gamma": FUNCTION,
        "weights": FUNCTION,
    },
    "RandomSampler": {"seed": SEED},
    "GridSampler": {"seed": SEED},
    "GPSampler": {
        "seed": SEED,
        "n_startup_trials": int_at_least(0),
        "deterministic_objective": BOOL,
        "warn_independent_sampling": BOOL,
    },
    "CmaEsSampler": {
        "seed": SEED,
        "sigma0": POSITIVE_OR_NULL,
        "n_startup_trials": int_at_least(0),
        "restart_strategy": one_of(None, "ipop", "bipop"),
        "popsize": int_at_least(2, null=True),
        "inc_popsize": int_at_least(1, also=(-1,)),
        "use_separable_cma": BOOL,
        "with_margin": BOOL,
        "lr_adapt": BOOL,
        "consider_pruned_trials": BOOL,
        "warn_independent_sampling": BOOL,
    },
    "QMCSampler": {
        "seed": SEED,
        "qmc_type": one_of("sobol", "halton"),
        "scramble": BOOL,
        "warn_independent_sampling": BOOL,
        "warn_asynchronous_seeding": BOOL,
    },
    "NSGAIISampler": {
        "seed": SEED,
        "population_size": int_at_least(2),
        "mutation_prob": number_in(0, 1, null=True),
        "crossover_prob": number_in(0, 1),
        "swapping_prob": number_in(0, 1),
    },
    "MedianPruner": {
        "n_startup_trials": int_at_least(0),
        "n_warmup_steps": STEPS,
        "interval_steps": int_at_least(1),
        "n_min_trials": int_at_least(1),
    },
    "PercentilePruner": {
        "percentile": number_in(0, 100),
        "n_startup_trials": int_at_least(0),
        "n_warmup_steps": STEPS,
        "interval_steps": int_at_least(1),
        "n_min_trials": int_at_least(1),
    },
    "HyperbandPruner": {
        "min_resource": int_at_least(1),
        "max_resource": int_at_least(1, also=("auto",)),
        "reduction_factor": int_at_least(2),
        "bootstrap_count": int_at_least(0),
    },
    "SuccessiveHalvingPruner": {
        "min_resource": int_at_least(1, also=("auto",)),
        "reduction_factor": int_at_least(2),
        "min_early_stopping_rate": int_at_least(0),
        "bootstrap_count": int_at_least(0),
    },
    "ThresholdPruner": {
        "lower": NUMBER_OR_NULL,
        "upper": NUMBER_OR_NULL,
        "n_warmup_steps": STEPS,
        "interval_steps": int_at_least(1),
    },
    "WilcoxonPruner": {
        "p_threshold": number_in(0, 1),
        "n_startup_steps": int_at_least(0),
    },
}


def _values(node: Any) -> dict[str, Any]:
    """The node's keys, each resolved if it can be (an interpolation that cannot be
    resolved here is left to the constructor)."""
    if not isinstance(node, DictConfig):
        return dict(node)
    out: dict[str, Any] = {}
    for key in node:
        try:
            value = node[key]
        except Exception:  # noqa: BLE001 - e.g. ${trainer.epochs} outside the app's config
            continue
        out[str(key)] = (
            OmegaConf.to_container(value, resolve=False) if isinstance(value, DictConfig) else value
        )
    return out


def check(kind: str, node: Any) -> None:
    """Check ``hydra.sweeper.<kind>`` (``sampler`` or ``pruner``); ArgumentError names the
    first key outside its range."""
    if node is None:
        return
    values = _values(node)
    cls = str(values.get("_target_", "")).rsplit(".", 1)[-1]
    rules = RULES.get(cls, {})
    for key, rule in rules.items():
        if key in values and not rule.ok(values[key]):
            raise ArgumentError(
                f"hydra.sweeper.{kind}.{key}={_show(values[key])}: {rule.expect} ({cls})"
            )
    _check_together(kind, cls, values)


def _check_together(kind: str, cls: str, values: dict[str, Any]) -> None:
    """The checks of two keys at once."""
    if cls == "HyperbandPruner":
        low, high = values.get("min_resource", 1), values.get("max_resource", "auto")
        if _is_int(low) and _is_int(high) and high <= low:
            raise ArgumentError(
                f"hydra.sweeper.{kind}.max_resource={high}: an integer > min_resource={low} "
                f"or auto ({cls})"
            )
    if cls == "ThresholdPruner":
        lower, upper = values.get("lower"), values.get("upper")
        if lower is None and upper is None:
            raise ArgumentError(
                f"hydra.sweeper.{kind}.lower/upper: set at least one of them ({cls})"
            )
        if lower is not None and upper is not None and lower >= upper:
            raise ArgumentError(
                f"hydra.sweeper.{kind}.upper={_show(upper)}: a number > lower={_show(lower)} "
                f"({cls})"
            )


def _show(value: Any) -> str:
    return "null" if value is None else str(value)
