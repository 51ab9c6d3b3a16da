"""Does pruning pay? The phase-1 search with and without the median pruner, side by side.

Runs the same N-trial phase-1 search on the FashionMNIST subset twice (same sampler seed,
fresh SQLite storage and sweep dir each): ``hydra/sweeper/pruner=none``, then ``lab_median``.
Reports wall time, best value, complete/pruned/failed trials and epochs trained, and checks
the issue's target: best within 0.5 accuracy point of the unpruned search in <= 60% of its
wall time.

    FASHION_MNIST_ROOT=/work/shared/data python benchmarks/pruning.py            # defaults
    python benchmarks/pruning.py --pruned-override \
        hydra.sweeper.pruner.n_warmup_steps=2 --reuse-baseline benchmarks/results/pruning.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from sweep_command import sweep_command

from lab_optuna.names import state_counts

ROOT = Path(__file__).resolve().parents[1]
TARGET_POINTS, TARGET_RATIO = 0.5, 0.60


def run_search(
    name: str, pruner: str, args: argparse.Namespace, out: Path, extra: list[str]
) -> dict[str, Any]:
    """One phase-1 search in a fresh storage and sweep dir; its timings and outcomes."""
    sweep_dir, db = out / name, out / f"{name}.db"
    url = f"sqlite:///{db}"
    cmd = sweep_command(
        "phase1_flat",
        name,
        sweep_dir,
        db,
        f"hydra.sweeper.n_trials={args.trials}",
        f"hydra/sweeper/pruner={pruner}",
        f"hydra.sweeper.sampler.seed={args.seed}",
        f"trainer.epochs={args.epochs}",
        *extra,
    )
    print(f"[{name}] {' '.join(cmd[1:])}", flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    load_before, cpu0 = os.getloadavg(), _child_cpu_s()
    t0 = time.perf_counter()
    with open(out / f"{name}.log", "w") as log:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    wall, cpu = time.perf_counter() - t0, _child_cpu_s() - cpu0
    if proc.returncode != 0:
        sys.exit(f"error: the {name} search failed (exit {proc.returncode}); see {out}/{name}.log")
    trials = optuna.load_study(study_name=name, storage=url).trials
    epochs = sum(
        json.loads(p.read_text())["epochs_run"] for p in sweep_dir.glob("trial_*/summary.json")
    )
    complete = [t.value for t in trials if t.state == TrialState.COMPLETE]
    return {
        "pruner": pruner,
        "overrides": extra,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "best_value": max(complete) if complete else None,
        **{k: v for k, v in state_counts(trials).items() if k != "running"},
        "epochs_trained": epochs,
        "s_per_epoch": round(wall / max(epochs, 1), 2),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


def _child_cpu_s() -> float:
    """User + system CPU seconds of finished children (less load-sensitive than wall time)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def compare(base: dict[str, Any], pruned: dict[str, Any]) -> dict[str, Any]:
    """Ratios of the pruned search to the unpruned one, and whether the target is met."""
    gap = (base["best_value"] - pruned["best_value"]) * 100  # accuracy points lost
    ratio = pruned["wall_s"] / base["wall_s"]
    return {
        "wall_ratio": round(ratio, 3),
        "cpu_ratio": round(pruned["cpu_s"] / base["cpu_s"], 3),
        "epochs_ratio": round(pruned["epochs_trained"] / max(base["epochs_trained"], 1), 3),
        "best_gap_points": round(gap, 2),
        "target": f"gap <= {TARGET_POINTS} points and wall_ratio <= {TARGET_RATIO}",
        "target_met": gap <= TARGET_POINTS and ratio <= TARGET_RATIO,
    }


def print_table(runs: dict[str, dict[str, Any]], cmp: dict[str, Any]) -> None:
    cols = [
        "wall_s",
        "cpu_s",
        "best_value",
        "complete",
        "pruned",
        "failed",
        "epochs_trained",
        "s_per_epoch",
    ]
    print(f"\n{'search':<10}" + "".join(f"{c:>15}" for c in cols))
    for name, r in runs.items():
        print(f"{name:<10}" + "".join(f"{r[c]!s:>15}" for c in cols))
    print(
        f"\npruned/unpruned: wall {cmp['wall_ratio']:.2f}, cpu {cmp['cpu_ratio']:.2f}, "
        f"epochs {cmp['epochs_ratio']:.2f}, "
        f"best {cmp['best_gap_points']:+.2f} points below; target "
        f"({cmp['target']}): {'MET' if cmp['target_met'] else 'NOT met'}"
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    p.add_argument("--trials", type=int, default=20, help="trials per search (default 20)")
    p.add_argument(
        "--epochs",
        type=int,
        default=15,
        help="per-trial epoch budget (default 15: ~10 min in all on a 2-core CPU)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="OMP/MKL threads per training process (default 1: on a shared CPU, "
        "torch's default of one per core can be many times slower)",
    )
    p.add_argument("--seed", type=int, default=1234, help="sampler seed of both searches")
    p.add_argument("--out", type=Path, help="folder for sweep dirs, storages, logs (default: tmp)")
    p.add_argument(
        "--json",
        type=Path,
        default=ROOT / "benchmarks/results/pruning.json",
        help="result file (default benchmarks/results/pruning.json)",
    )
    p.add_argument(
        "--pruned-override",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="extra overrides for the pruned search only, e.g. "
        "hydra.sweeper.pruner.n_warmup_steps=5",
    )
    p.add_argument(
        "--pruner",
        default="lab_median",
        help="pruner of the pruned search (the presets' lab_median)",
    )
    p.add_argument(
        "--reuse-baseline",
        type=Path,
        metavar="JSON",
        help="take the unpruned run from an earlier result (same trials/epochs/seed)",
    )
    args = p.parse_args(argv)
    if "FASHION_MNIST_ROOT" not in os.environ:
        print("note: FASHION_MNIST_ROOT is unset; the data may be downloaded", file=sys.stderr)
    out = (args.out or Path(tempfile.mkdtemp(prefix="bench_pruning_"))).resolve()
    out.mkdir(parents=True, exist_ok=True)
    runs: dict[str, dict[str, Any]] = {}
    if args.reuse_baseline:
        old = json.loads(args.reuse_baseline.read_text())
        keys = ("trials", "epochs", "seed", "threads")
        same = all(old["settings"].get(k) == getattr(args, k) for k in keys)
        if not same:
            sys.exit(f"error: {args.reuse_baseline} was run with other {'/'.join(keys)}")
        runs["unpruned"] = old["runs"]["unpruned"]
    else:
        runs["unpruned"] = run_search("unpruned", "none", args, out, [])
    runs["pruned"] = run_search("pruned", args.pruner, args, out, args.pruned_override)
    cmp = compare(runs["unpruned"], runs["pruned"])
    print_table(runs, cmp)
    result = {
        "settings": {
            "trials": args.trials,
            "epochs": args.epochs,
            "seed": args.seed,
            "threads": args.threads,
            "data": "fashion_mnist_subset",
            "pruned_pruner": args.pruner,
            "baseline_reused": bool(args.reuse_baseline),
        },
        "machine": {
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "note": "shared machine: see loadavg_before/after of each run",
        },
        "runs": runs,
        "comparison": cmp,
        "out": str(out),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}; sweep dirs and logs in {out}")


if __name__ == "__main__":
    main()
