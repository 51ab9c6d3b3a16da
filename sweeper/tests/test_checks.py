"""What the sweeper checks before the first trial, each a one-line error: searched and fixed
keys the app's config lacks (``_keys/app_keys.py``, a subprocess of the toy app), and sampler
and pruner arguments outside their range (``_keys/arguments.py``, through ``Settings``, as the
sweeper builds them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf

from conftest import TOY_APP as APP
from lab_optuna._keys.settings import Settings, SettingsError


def sweep(tmp: Path, *overrides: str) -> subprocess.CompletedProcess:
    db = f"sqlite:///{tmp / 'optuna.db'}"
    cmd = [
        sys.executable,
        str(APP),
        "-m",
        f"hydra.sweep.dir={tmp / 'out'}",
        f"hydra.sweeper.storage={db}",
        "hydra.sweeper.n_trials=2",
        *overrides,
    ]
    return subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=120)


def no_trial(tmp: Path) -> bool:
    db = tmp / "optuna.db"
    if not db.exists():
        return True
    return all(not s.n_trials for s in optuna.get_all_study_summaries(f"sqlite:///{db}"))


# ------------------------------------------------------------- keys of the app's config
@pytest.mark.parametrize(
    "override, message",
    [
        ("xx=interval(0,1)", "error: xx: not a key of the app's config (did you mean x?)"),
        (
            "+hydra.sweeper.params.yy='choice(1,2)'",
            "error: hydra.sweeper.params.yy: not a key of the app's config (did you mean y?)",
        ),
        (
            "sleeep=choice(0,1)",
            "error: sleeep: not a key of the app's config (did you mean sleep?)",
        ),
        ("qqq=choice(0,1)", "error: qqq: not a key of the app's config"),
        (
            "+x=interval(0,1)",
            "error: +x: x is already a key of the app's config (drop the +, or use ++ to add "
            "or override)",
        ),
    ],
    ids=["cli", "params", "close", "no-hint", "append-existing"],
)
def test_unknown_searched_key_is_one_line_before_any_trial(tmp_path, override, message):
    proc = sweep(tmp_path, override)
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert errors == [message], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert no_trial(tmp_path)
    assert not list((tmp_path / "out").glob("*/trial.json"))


def test_new_keys_with_plus_or_double_plus_are_searched(tmp_path):
    proc = sweep(tmp_path, "+w=interval(0,1)", "++zz=choice(1,2)")
    assert proc.returncode == 0, proc.stderr[-2000:]
    study = optuna.load_study(study_name="sphere", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert {"+w", "++zz"} <= set(study.trials[0].params)  # the param names keep the prefix


# ------------------------------------------------------ sampler and pruner arguments
TPE, NSGA = "optuna.samplers.TPESampler", "optuna.samplers.NSGAIISampler"
CMA, QMC = "optuna.samplers.CmaEsSampler", "optuna.samplers.QMCSampler"
MEDIAN, PCT = "optuna.pruners.MedianPruner", "optuna.pruners.PercentilePruner"
HB, SHA = "optuna.pruners.HyperbandPruner", "optuna.pruners.SuccessiveHalvingPruner"
THR, WIL = "optuna.pruners.ThresholdPruner", "optuna.pruners.WilcoxonPruner"


@pytest.mark.parametrize(
    "kind, node, message",
    [
        # accepted silently by Optuna 5.0:
        (
            "sampler",
            {"_target_": TPE, "n_startup_trials": -1},
            "sampler.n_startup_trials=-1: an integer >= 0",
        ),
        (
            "sampler",
            {"_target_": TPE, "n_ei_candidates": 0},
            "sampler.n_ei_candidates=0: an integer >= 1",
        ),
        (
            "sampler",
            {"_target_": TPE, "n_startup_trials": 1.5},
            "sampler.n_startup_trials=1.5: an integer >= 0",
        ),
        (
            "sampler",
            {"_target_": TPE, "multivariate": "yes"},
            "sampler.multivariate=yes: true or false",
        ),
        ("sampler", {"_target_": TPE, "gamma": 3}, "sampler.gamma=3: null or a function node"),
        ("sampler", {"_target_": TPE, "seed": -1}, "sampler.seed=-1: an integer >= 0 or null"),
        ("sampler", {"_target_": CMA, "sigma0": -1}, "sampler.sigma0=-1: a number > 0 or null"),
        ("sampler", {"_target_": CMA, "popsize": 0}, "sampler.popsize=0: an integer >= 2 or null"),
        (
            "sampler",
            {"_target_": CMA, "restart_strategy": "foo"},
            "sampler.restart_strategy=foo: null | ipop | bipop",
        ),
        (
            "sampler",
            {"_target_": "optuna.samplers.GPSampler", "n_startup_trials": -1},
            "sampler.n_startup_trials=-1: an integer >= 0",
        ),
        ("pruner", {"_target_": HB, "min_resource": 0}, "pruner.min_resource=0: an integer >= 1"),
        (
            "pruner",
            {"_target_": HB, "reduction_factor": 1},
            "pruner.reduction_factor=1: an integer >= 2",
        ),
        (
            "pruner",
            {"_target_": HB, "bootstrap_count": -1},
            "pruner.bootstrap_count=-1: an integer >= 0",
        ),
        (
            "pruner",
            {"_target_": HB, "min_resource": 5, "max_resource": 3},
            "pruner.max_resource=3: an integer > min_resource=5 or auto",
        ),
        # refused by Optuna, now in the sweeper's words before the study is opened:
        (
            "sampler",
            {"_target_": NSGA, "population_size": 1},
            "sampler.population_size=1: an integer >= 2",
        ),
        (
            "sampler",
            {"_target_": NSGA, "crossover_prob": 2},
            "sampler.crossover_prob=2: a number in [0, 1]",
        ),
        (
            "sampler",
            {"_target_": NSGA, "mutation_prob": -1},
            "sampler.mutation_prob=-1: a number in [0, 1] or null",
        ),
        (
            "sampler",
            {"_target_": NSGA, "swapping_prob": 1.5},
            "sampler.swapping_prob=1.5: a number in [0, 1]",
        ),
        ("sampler", {"_target_": QMC, "qmc_type": "lhs"}, "sampler.qmc_type=lhs: sobol | halton"),
        (
            "pruner",
            {"_target_": MEDIAN, "n_startup_trials": -1},
            "pruner.n_startup_trials=-1: an integer >= 0",
        ),
        (
            "pruner",
            {"_target_": MEDIAN, "n_warmup_steps": -1},
            "pruner.n_warmup_steps=-1: an integer >= 0",
        ),
        (
            "pruner",
            {"_target_": MEDIAN, "interval_steps": 0},
            "pruner.interval_steps=0: an integer >= 1",
        ),
        (
            "pruner",
            {"_target_": MEDIAN, "n_min_trials": 0},
            "pruner.n_min_trials=0: an integer >= 1",
        ),
        (
            "pruner",
            {"_target_": PCT, "percentile": 150},
            "pruner.percentile=150: a number in [0, 100]",
        ),
        (
            "pruner",
            {"_target_": PCT, "percentile": -1},
            "pruner.percentile=-1: a number in [0, 100]",
        ),
        (
            "pruner",
            {"_target_": HB, "max_resource": "foo"},
            "pruner.max_resource=foo: an integer >= 1 or auto",
        ),
        (
            "pruner",
            {"_target_": SHA, "min_resource": 0},
            "pruner.min_resource=0: an integer >= 1 or auto",
        ),
        (
            "pruner",
            {"_target_": SHA, "reduction_factor": 1},
            "pruner.reduction_factor=1: an integer >= 2",
        ),
        (
            "pruner",
            {"_target_": SHA, "min_early_stopping_rate": -1},
            "pruner.min_early_stopping_rate=-1: an integer >= 0",
        ),
        ("pruner", {"_target_": THR}, "pruner.lower/upper: set at least one of them"),
        ("pruner", {"_target_": THR, "lower": 2, "upper": 1}, "pruner.upper=1: a number > lower=2"),
        (
            "pruner",
            {"_target_": THR, "lower": 0, "n_warmup_steps": -1},
            "pruner.n_warmup_steps=-1: an integer >= 0",
        ),
        ("pruner", {"_target_": WIL, "p_threshold": 2}, "pruner.p_threshold=2: a number in [0, 1]"),
        (
            "pruner",
            {"_target_": WIL, "n_startup_steps": -1},
            "pruner.n_startup_steps=-1: an integer >= 0",
        ),
    ],
)
def test_sampler_and_pruner_arguments_in_range(kind, node, message):
    with pytest.raises(SettingsError) as err:
        Settings.from_config({kind: OmegaConf.create(node)})
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(f"hydra.sweeper.{message}"), text
    assert text.endswith(f"({node['_target_'].rsplit('.', 1)[-1]})")


@pytest.mark.parametrize(
    "kind, node",
    [
        ("sampler", {"_target_": TPE, "n_startup_trials": 0, "n_ei_candidates": 1, "seed": 3}),
        ("pruner", {"_target_": HB, "min_resource": 1, "max_resource": "auto"}),
        ("pruner", {"_target_": SHA, "min_resource": "auto"}),
        ("pruner", {"_target_": THR, "upper": 10.0}),
        ("pruner", {"_target_": PCT, "percentile": 0}),
        ("sampler", {"_target_": "my.own.Sampler", "anything": -5}),  # the constructor checks
    ],
)
def test_arguments_in_range_pass(kind, node):
    Settings.from_config({kind: OmegaConf.create(node)})


def test_bad_pruner_argument_stops_the_sweep_before_any_trial(tmp_path):
    proc = sweep(tmp_path, "hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_warmup_steps=-1")
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert errors == [
        "error: hydra.sweeper.pruner.n_warmup_steps=-1: an integer >= 0 (MedianPruner)"
    ]
    assert "Traceback" not in proc.stderr
    assert no_trial(tmp_path)


# ------------------------------------------------------ the direction of an existing study
@pytest.mark.parametrize(
    "created, asked, message",
    [
        (["maximize"], ["minimize"], "was created to maximize; hydra.sweeper.direction=minimize"),
        (
            ["maximize", "minimize"],
            ["minimize", "minimize"],
            "was created to [maximize, minimize]; hydra.sweeper.direction=[minimize, minimize]",
        ),
    ],
    ids=["single", "multi-objective"],
)
def test_another_direction_than_the_studys_is_one_line_before_any_trial(
    tmp_path, created, asked, message
):
    """Optuna loads an existing study with its own directions and ignores the ones asked for:
    the sweep would go on optimizing the other way without a word. It is refused instead."""
    objectives = f"objectives={len(created)}"
    first = sweep(tmp_path, f"hydra.sweeper.direction=[{','.join(created)}]", objectives)
    assert first.returncode == 0, first.stderr[-2000:]
    db = f"sqlite:///{tmp_path / 'optuna.db'}"
    before = len(optuna.load_study(study_name="sphere", storage=db).trials)
    proc = sweep(tmp_path, f"hydra.sweeper.direction=[{','.join(asked)}]", objectives)
    assert proc.returncode == 1
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert errors == [
        f"error: study 'sphere' in {db} {message} differs (use another study_name, or the "
        "study's direction)"
    ], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    study = optuna.load_study(study_name="sphere", storage=db)
    assert len(study.trials) == before
    assert [d.name.lower() for d in study.directions] == created  # the study is untouched
