"""The figures of benchmarks/budget.sh: each side's studies as CSV and one summary.json.

    python benchmarks/budget_summary.py --work multirun/budget --out benchmarks/results/budget \
        ours=phase1,phase2,final plugin_like=phase1_plugin_like,phase2_plugin_like,final

A side ``NAME=PHASE1,PHASE2,FINAL`` names its three studies in ``<work>/NAME/optuna.db``
(sweep dirs ``<work>/NAME/<study>/``); its stage wall times are ``<out>/NAME/times.txt``
(``stage seconds`` per line, written by budget.sh). Per side, summary.json has the final
stage's test accuracies (``final_test_seeds`` ordered by seed, their mean and spread), phase
2's best hold-out value (``holdout_best``) and the hold-out -> test gap, the wall time, the
search's trial count and the epochs trained by every trial of the three stages.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from lab_optuna import names
from lab_optuna.names import state_counts

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # lenet_lab from the checkout
from lenet_lab import record as rec  # noqa: E402  (the summary fields' names)

#: The settings budget.sh exports, recorded with each side.
SETTINGS = (
    "PHASE_S",
    "TIMEOUT_PRUNE",
    "WORKERS",
    "FINAL_JOBS",
    "BUDGET_S",
    "N_TRIALS",
    "EPOCHS_MF",
    "EPOCHS_FLAT",
    "MIN_RESOURCE",
    "SEEDS",
    "EXTRA",
    "FASHION_MNIST_ROOT",
)


def epochs_of(trial: FrozenTrial) -> int:
    """Epochs the trial trained: its ``epochs_run`` user attribute, else its epoch reports."""
    value = trial.user_attrs.get(rec.EPOCHS_RUN)
    return int(value) if value is not None else len(trial.intermediate_values)


def stage_figures(study: optuna.Study, sweep_dir: Path, wall_s: float | None) -> dict[str, Any]:
    """One stage's counts, epochs, best value and why its sweep ended."""
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    results = sweep_dir / names.RESULTS_YAML
    ended = yaml.safe_load(results.read_text()).get("ended") if results.exists() else None
    best = max(complete, key=lambda t: t.value) if complete else None
    return {
        "study": study.study_name,
        "trials": len(trials),
        **state_counts(trials),
        "epochs_trained": sum(epochs_of(t) for t in trials),
        "best_value": None if best is None else round(best.value, 4),
        "best_trial": None if best is None else best.number,
        "best_epochs_run": None if best is None else epochs_of(best),
        "ended": ended,
        "wall_s": wall_s,
    }


def read_times(path: Path) -> dict[str, float]:
    """``stage seconds`` lines (budget.sh's times.txt)."""
    times: dict[str, float] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            name, seconds = line.split()
            times[name] = float(seconds)
    return times


def side_summary(name: str, studies: list[str], work: Path, out: Path) -> dict[str, Any]:
    """Export the side's studies as CSV under ``out/name/`` and return its figures."""
    storage = f"sqlite:///{work / name / 'optuna.db'}"
    times = read_times(out / name / "times.txt")
    stages: dict[str, Any] = {}
    loaded: dict[str, optuna.Study] = {}
    for role, study_name in zip(("phase1", "phase2", "final"), studies, strict=True):
        study = optuna.load_study(study_name=study_name, storage=storage)
        loaded[role] = study
        study.trials_dataframe(multi_index=False).to_csv(
            out / name / f"{study_name}.csv", index=False
        )
        stages[role] = stage_figures(study, work / name / study_name, times.get(role))
    finals = sorted(
        loaded["final"].get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
        key=lambda t: t.params.get("seed", t.number),
    )
    seeds = [round(float(t.value), 4) for t in finals]
    mean = round(statistics.fmean(seeds), 4) if seeds else None
    holdout_best = stages["phase2"]["best_value"]
    wall_s = round(sum(times.values()), 1)
    budget_s = float(os.environ.get("BUDGET_S") or 0) or None
    return {
        "final_test_mean": mean,
        "final_test_seeds": seeds,
        "final_test_std": round(statistics.stdev(seeds), 4) if len(seeds) > 1 else None,
        "final_seeds": [t.params.get("seed") for t in finals],
        "final_epochs": [epochs_of(t) for t in finals],
        "holdout_best": holdout_best,
        "holdout_to_test_gap": (
            None if mean is None or holdout_best is None else round(mean - holdout_best, 4)
        ),
        "wall_s": wall_s,
        "within_budget": None if budget_s is None else wall_s <= budget_s,
        "trials": stages["phase1"]["trials"] + stages["phase2"]["trials"],
        "epochs_trained": sum(s["epochs_trained"] for s in stages.values()),
        "retrained": loaded["final"].user_attrs.get("pinned"),
        "stages": stages,
        "settings": {k.lower(): os.environ.get(k) for k in SETTINGS},
        "machine": {"host": platform.node(), "cpus": os.cpu_count(), "loadavg": os.getloadavg()},
    }


def parse_side(text: str) -> tuple[str, list[str]]:
    name, _, studies = text.partition("=")
    names = studies.split(",")
    if not name or len(names) != 3 or not all(names):
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=PHASE1,PHASE2,FINAL")
    return name, names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="storages and sweep dirs")
    parser.add_argument("--out", type=Path, required=True, help="CSVs and summary.json")
    parser.add_argument("sides", nargs="+", type=parse_side, help="NAME=PHASE1,PHASE2,FINAL")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    summary = {
        name: side_summary(name, studies, args.work, args.out) for name, studies in args.sides
    }
    path = args.out / "summary.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    for name, s in summary.items():
        print(
            f"{name}: final test {s['final_test_mean']} {s['final_test_seeds']}, "
            f"hold-out best {s['holdout_best']}, {s['trials']} trials, "
            f"{s['epochs_trained']} epochs, {s['wall_s']} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
