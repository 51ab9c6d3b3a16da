"""Which pruner for the multi-fidelity presets? Hyperband, successive halving and the median
pruner, each running the same ``phase1`` search on the same time budget.

Each search is ``hparams_search=phase1`` (20-epoch cap, cosine/one-cycle schedules over
the whole cap, the hold-out split) with its warm-start point off (``enqueue=null``: otherwise
every side starts from the same known good trial), on the FashionMNIST subset (10k images,
2k of the hold-out), ``--workers`` worker processes of one torch thread on one fresh SQLite
study, ``hydra.sweeper.timeout=--budget`` with ``timeout_prune``. Same sampler seed for all.

    hyperband   conf/hydra/sweeper/pruner/lab_multi_fidelity.yaml (the presets': rungs 2, 6, 18)
    halving     SuccessiveHalvingPruner, min_resource 2, reduction_factor 3 (rungs 2, 6, 18)
    median      conf/hydra/sweeper/pruner/lab_median.yaml (5 start-up trials, 2 warm-up epochs)

Reported per pruner and seed: the best hold-out accuracy at the deadline, the best of the
trials that reached the cap (the ones a final stage would retrain), complete / pruned trials
and epochs trained; then the mean over seeds.

    FASHION_MNIST_ROOT=/work/shared/data python benchmarks/pruners.py            # ~25 min
    python benchmarks/pruners.py --budget 240 --seeds 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from sweep_command import sweep_command
from workers import launch  # benchmarks/workers.py: K processes of one command

from lab_optuna.names import state_counts

ROOT = Path(__file__).resolve().parents[1]
PRUNERS = {
    "hyperband": ["hydra/sweeper/pruner=lab_multi_fidelity"],
    "halving": [
        "hydra/sweeper/pruner=successive_halving",
        "hydra.sweeper.pruner.min_resource=2",
        "hydra.sweeper.pruner.reduction_factor=3",
    ],
    "median": ["hydra/sweeper/pruner=lab_median"],
}


def search(name: str, seed: int, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One timed phase1 search with ``args.workers`` processes; its outcome."""
    tag = f"{name}_seed{seed}"
    db = f"sqlite:///{out / tag}.db"
    cmd = sweep_command(
        "phase1",
        tag,
        out / tag,
        out / f"{tag}.db",
        *PRUNERS[name],
        "hydra.sweeper.enqueue=null",
        f"hydra.sweeper.sampler.seed={seed}",
        f"hydra.sweeper.timeout={args.budget}",
        "hydra.sweeper.timeout_prune=true",
        "hydra.sweeper.n_trials=1000",
        "hydra.sweeper.max_total_trials=1000",
        "hydra.sweeper.importances=[]",
        "trainer.num_threads=1",
        "trainer.save_samples=false",
        *args.extra,
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    print(f"[{tag}] {args.workers} x train.py {' '.join(cmd[3:5])} ...", flush=True)
    wall, codes = launch(cmd, env, [out / f"{tag}_{i}.log" for i in range(args.workers)])
    if any(codes):
        sys.exit(f"error: {tag} exited {codes}; see {out}/{tag}_*.log")
    trials = optuna.load_study(study_name=tag, storage=db).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    cap = max((t.last_step or 0 for t in trials), default=0)
    epochs = sum(len(t.intermediate_values) for t in trials)
    full = [t.value for t in complete if (t.last_step or 0) >= cap]
    return {
        "pruner": name,
        "seed": seed,
        "wall_s": round(wall, 1),
        "best": max((t.value for t in complete), default=None),
        "best_full_length": max(full, default=None),
        **{k: v for k, v in state_counts(trials).items() if k != "running"},
        "epochs_trained": epochs,
    }


def _mean(values: list[float]) -> float:
    return round(statistics.fmean(values), 4) if values else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", type=int, default=240, help="seconds per search (timeout)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="sampler seeds")
    p.add_argument("--workers", type=int, default=2, help="worker processes per search")
    p.add_argument("--pruners", nargs="+", default=list(PRUNERS), choices=list(PRUNERS))
    p.add_argument("--extra", nargs="*", default=[], help="more overrides for every search")
    p.add_argument("--out", type=Path, help="sweep dirs, storages, logs (default: a tmp dir)")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/pruners.json")
    args = p.parse_args()
    out = (args.out or Path(tempfile.mkdtemp(prefix="bench_pruners_"))).resolve()
    out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    runs = []
    for seed in args.seeds:  # the pruners alternate, so a load change hits each alike
        for name in args.pruners:
            runs.append(search(name, seed, args, out))
            print(json.dumps(runs[-1]), flush=True)
    means = {}
    for name in args.pruners:
        mine = [r for r in runs if r["pruner"] == name]
        means[name] = {
            k: _mean([r[k] for r in mine if r[k] is not None])
            for k in ("best", "best_full_length", "complete", "pruned", "epochs_trained")
        }
    result = {
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "json")},
        "pruners": PRUNERS,
        "mean_over_seeds": means,
        "runs": runs,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(
        f"\n{'pruner':<10} {'best':>7} {'best@cap':>9} {'complete':>9} {'pruned':>7} {'epochs':>7}"
    )
    for name, m in means.items():
        print(
            f"{name:<10} {m['best']:>7.4f} {m['best_full_length']:>9.4f} "
            f"{m['complete']:>9.1f} {m['pruned']:>7.1f} {m['epochs_trained']:>7.1f}"
        )
    print(f"written: {args.json}")


if __name__ == "__main__":
    main()
