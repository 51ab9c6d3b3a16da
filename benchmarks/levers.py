"""Do the levers help? Weight averaging (EMA, SWA) on the hold-out, against the plain run.

Trains, on the full data and the hold-out split, 20 epochs, once per seed and augmentation:
``--config search`` (default) the config the multi-fidelity search ends near (the warm-start
point of ``phase1`` and ``phase2`` with the dropout rate phase 2 found: Adam, cosine
schedule, ``hflip``); ``--config sheet`` the lab sheet's baseline (SGD lr 0.1, momentum 0.9,
constant lr, no augmentation). Each run trains with ``averaging=none`` and evaluates three
models on the hold-out after every epoch: the run's own weights, their EMA and their SWA
(``lenet_lab.callbacks.WeightAveraging`` with the ``conf/averaging/ema.yaml`` and
``swa.yaml`` settings). Averaging changes only what is evaluated, not the training, so the
three are paired on one trajectory. ``--augmentations`` adds options of
``conf/augmentation/`` to compare, paired by seed with the first.

Reported per variant: each seed's best hold-out accuracy (the search's objective), the mean,
and the mean paired difference from the first augmentation's run of the same seed without
averaging. The committed results/levers_*.json were measured at commit 9df1446, with random
erasing as a second augmentation (``hflip_erasing``, ``erasing``; dropped since: it lost on
both configs).

    FASHION_MNIST_ROOT=/work/shared/data python benchmarks/levers.py --jobs 2   # ~7 min
    FASHION_MNIST_ROOT=/work/shared/data python benchmarks/levers.py --config sheet
    python benchmarks/levers.py --seeds 1 --epochs 2 --extra data.train_size=2000  # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: The config the searches end near: docs/search.md, "The measured run".
CONFIG = [
    "model=lenet5_padded",
    "optimizer=adam",
    "optimizer.lr=0.0025",
    "data.batch_size=32",
    "scheduler=cosine",
    "regularizer=dropout",
    "regularizer.p=0.081",
    "loss=label_smoothing",
    "data.val_split=holdout",
]
#: ``--config``: the base overrides and its augmentation (the baseline of the comparison).
CONFIGS = {
    "search": (CONFIG, "hflip"),
    "sheet": (["data.val_split=holdout"], "none"),  # SGD 0.1, momentum 0.9, constant lr
}
AVERAGES = {"ema": {"decay": 0.999, "start": 0.0}, "swa": {"decay": None, "start": 0.75}}


def one_run(augmentation: str, seed: int, overrides: list[str], out: Path) -> dict[str, Any]:
    """Train once; per epoch the hold-out accuracy of the plain, EMA and SWA weights."""
    import torch
    from hydra import compose, initialize_config_dir

    from lenet_lab import engine
    from lenet_lab.callbacks import Callback, WeightAveraging
    from lenet_lab.run import load_data, train
    from lenet_lab.validation import validate

    torch.set_num_threads(1)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            [*overrides, f"augmentation={augmentation}", f"seed={seed}", "averaging=none"]
            + ["trainer.progress_bar=false", "trainer.save_samples=false"],
        )
    _, val = load_data(cfg, validate(cfg))
    curves: dict[str, list[float]] = {name: [] for name in AVERAGES}

    class Shadow(Callback):
        """An averaging whose model this benchmark evaluates, not the run."""

        per_batch = True

        def __init__(self, name: str) -> None:
            self.name, self.avg = name, WeightAveraging(**AVERAGES[name])

        def on_train_start(self, run) -> None:
            self.avg.on_train_start(run)

        def on_batch_end(self, run) -> None:
            self.avg.on_batch_end(run)
            run.eval_model = None  # the run itself evaluates its own weights

        def on_epoch_end(self, run, epoch, metrics) -> None:
            started = self.avg.steps > self.avg.first_step
            model = self.avg.averaged.module if started else run.model
            curves[self.name].append(engine.evaluate(model, val).acc)

    t0 = time.perf_counter()
    summary = train(cfg, out, [Shadow(name) for name in AVERAGES])
    plain = [float(r) for r in _column(out / "metrics.csv", "val_acc")]
    return {
        "augmentation": augmentation,
        "seed": seed,
        "status": str(summary["status"]),
        "wall_s": round(time.perf_counter() - t0, 1),
        "epochs": summary["epochs_run"],
        "val_acc": {"none": plain, **curves},
    }


def _column(path: Path, name: str) -> list[str]:
    import csv

    with path.open() as f:
        return [row[name] for row in csv.DictReader(f)]


def summarize(runs: list[dict[str, Any]], baseline: str) -> dict[str, Any]:
    """Best hold-out accuracy per variant and seed; mean paired gain over the ``baseline``
    augmentation without averaging."""
    best = {
        (r["augmentation"], avg, r["seed"]): max(curve)
        for r in runs
        for avg, curve in r["val_acc"].items()
    }
    seeds = sorted({r["seed"] for r in runs})
    out: dict[str, Any] = {}
    for aug in sorted({r["augmentation"] for r in runs}):
        for avg in ("none", *AVERAGES):
            values = [best[(aug, avg, s)] for s in seeds if (aug, avg, s) in best]
            base = [best[(baseline, "none", s)] for s in seeds if (aug, avg, s) in best]
            gains = [v - b for v, b in zip(values, base, strict=True)]
            out[f"{aug}+{avg}"] = {
                "best_holdout_per_seed": [round(v, 4) for v in values],
                "mean": round(statistics.fmean(values), 4),
                "gain_vs_baseline": round(statistics.fmean(gains), 4),
                "gain_per_seed": [round(g, 4) for g in gains],
            }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", choices=list(CONFIGS), default="search")
    p.add_argument("--augmentations", nargs="*", default=[], help="more options to compare")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--jobs", type=int, default=2, help="runs side by side, 1 thread each")
    p.add_argument("--extra", nargs="*", default=[], help="more overrides for every run")
    p.add_argument("--out", type=Path, help="default: benchmarks/results/levers_CONFIG.json")
    p.add_argument("--work", type=Path, help="run folders (default: multirun/levers_CONFIG)")
    p.add_argument("--one", nargs=2, metavar=("AUGMENTATION", "SEED"), help=argparse.SUPPRESS)
    args = p.parse_args()
    args.out = args.out or ROOT / f"benchmarks/results/levers_{args.config}.json"
    args.work = args.work or ROOT / f"multirun/levers_{args.config}"
    base, baseline = CONFIGS[args.config]
    augmentations = [baseline, *args.augmentations]
    overrides = [*base, f"trainer.epochs={args.epochs}", *args.extra]
    if args.one:  # a child: one run, its JSON on stdout
        aug, seed = args.one[0], int(args.one[1])
        out = args.work / f"{aug}_seed{seed}"
        print(json.dumps(one_run(aug, seed, overrides, out)))
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

    def child(job: tuple[str, int]) -> dict[str, Any]:
        cmd = [sys.executable, __file__, "--one", job[0], str(job[1]), "--epochs"]
        cmd += [str(args.epochs), "--work", str(args.work), "--config", args.config]
        cmd += ["--extra", *args.extra]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            sys.exit(f"error: {job} failed:\n{proc.stderr[-3000:]}")
        run = json.loads(proc.stdout.strip().splitlines()[-1])
        best = {k: round(max(v), 4) for k, v in run["val_acc"].items()}
        print(f"{job[0]} seed {job[1]}: best hold-out {best} ({run['wall_s']} s)", flush=True)
        return run

    jobs = [(aug, seed) for seed in args.seeds for aug in augmentations]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(child, jobs))
    result = {
        "config": args.config,
        "overrides": overrides,
        "averages": AVERAGES,
        "wall_s": round(time.perf_counter() - t0, 1),
        "variants": summarize(runs, augmentations[0]),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for name, v in result["variants"].items():
        print(
            f"{name:22s} mean {v['mean']:.4f}  gain {v['gain_vs_baseline']:+.4f}  "
            f"per seed {v['best_holdout_per_seed']}"
        )
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
