"""Slot utilisation: asynchronous slots against batches, on the same pruned search.

Runs the phase-1 search (real FashionMNIST subset, median pruning, early stopping, the
sampler's seed fixed) twice through a launcher that runs jobs concurrently (submitit's local
executor, ``n_jobs=K``): ``hydra.sweeper.async_slots=false`` (wait for the whole batch, as
hydra-optuna-sweeper does) and ``true`` (start a trial as soon as one ends). Utilisation =
trial-seconds / (K × wall seconds), wall from the first trial's start to the last one's end
(the study's own timestamps; ``analysis.timeline.utilisation``, as the report's
timeline). Prints both and the ratio; writes a JSON result.

    FASHION_MNIST_ROOT=/work/shared/data python benchmarks/slots.py --trials 12 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
from sweep_command import require_data_root, sweep_command

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # analysis/ runs from the checkout
from analysis.timeline import utilisation  # noqa: E402  (the report's definition)

TARGET = 0.8


def run(mode: str, async_slots: bool, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One search in a fresh storage; its utilisation from the study's timestamps."""
    url = f"sqlite:///{out / f'{mode}.db'}"
    cmd = sweep_command(
        "phase1_flat",
        mode,
        out / mode,
        out / f"{mode}.db",
        "hydra/launcher=submitit_local",
        f"hydra.launcher.timeout_min={args.timeout_min}",
        f"hydra.sweeper.n_trials={args.trials}",
        f"hydra.sweeper.n_jobs={args.jobs}",
        f"hydra.sweeper.async_slots={str(async_slots).lower()}",
        f"hydra.sweeper.sampler.seed={args.seed}",
        f"trainer.epochs={args.epochs}",
        f"trainer.num_threads={args.threads}",
    )
    print(f"[{mode}] {' '.join(cmd[1:])}", flush=True)
    t0 = time.perf_counter()
    with open(out / f"{mode}.log", "w") as log:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    command_s = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"error: the {mode} search failed (exit {proc.returncode}); see {out}/{mode}.log")
    trials = [
        t
        for t in optuna.load_study(study_name=mode, storage=url).trials
        if t.datetime_start and t.datetime_complete
    ]
    start = min(t.datetime_start for t in trials)
    end = max(t.datetime_complete for t in trials)
    wall = (end - start).total_seconds()
    busy = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in trials)
    intervals = [(t.datetime_start.timestamp(), t.datetime_complete.timestamp()) for t in trials]
    lengths = [len(t.intermediate_values) for t in trials]
    result = {
        "mode": mode,
        "async_slots": async_slots,
        "trials": len(trials),
        "slots": args.jobs,
        "trial_seconds": round(busy, 1),
        "wall_seconds": round(wall, 1),
        "command_seconds": round(command_s, 1),
        "utilisation": round(utilisation(intervals, args.jobs), 3),
        "epochs_per_trial": lengths,
        "states": [t.state.name for t in trials],
        "best_value": max((t.value for t in trials if t.value is not None), default=None),
    }
    print(
        f"[{mode}] utilisation {result['utilisation']:.2f} ({busy:.0f} trial-s over "
        f"{args.jobs} x {wall:.0f} s); epochs per trial {lengths}",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--jobs", type=int, default=2, help="slots (n_jobs)")
    parser.add_argument("--epochs", type=int, default=15, help="per-trial epoch cap")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per trial")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--timeout-min", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "slots.json")
    args = parser.parse_args()
    require_data_root()
    with tempfile.TemporaryDirectory(prefix="lab-slots-") as tmp:
        batch = run("batch", False, args, Path(tmp))
        asynchronous = run("async", True, args, Path(tmp))
    ratio = asynchronous["utilisation"] / batch["utilisation"]
    print(
        f"utilisation: batch {batch['utilisation']:.2f}, asynchronous "
        f"{asynchronous['utilisation']:.2f} ({ratio:.2f}x); target >= {TARGET} asynchronous: "
        f"{'met' if asynchronous['utilisation'] >= TARGET else 'NOT met'}"
    )
    report = {
        "batch": batch,
        "async": asynchronous,
        "ratio": round(ratio, 3),
        "target_async": TARGET,
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
