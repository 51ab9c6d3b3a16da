"""Compare whole searches over paired seeds (issue 26): sides ``ours``, ``plugin_like``,
``joint``, ``random``, each run as budget.sh runs a side (phases under a time budget, then the
final stage), with the same seed for every side (sampler seed, ``seed=`` of the data order,
final seeds). Each finished (budget, side, seed) goes at once into
``benchmarks/results/compare/summary.json``; a rerun skips what is there.

    FASHION_MNIST_ROOT=/data python benchmarks/compare_searches.py --proxy --seeds 1-10
    FASHION_MNIST_ROOT=/data python benchmarks/compare_searches.py --full --seeds 1-3 \
        --sides ours plugin_like
    python benchmarks/compare_searches.py --report       # curves.png and report.md by the JSON
    python benchmarks/compare_searches.py --smoke --out /tmp/cmp   # tiny data, seconds per phase
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import budget_summary  # noqa: E402  (side_summary, epochs_of: the figures of budget.sh)

RESULTS = ROOT / "benchmarks" / "results" / "compare"
#: side -> (phase presets, final's pin_from, extra overrides of the phases, epoch-cap kind)
SIDES: dict[str, tuple[tuple[str, ...], list[str], str]] = {
    "ours": (("phase1", "phase2"), [], "mf"),
    "plugin_like": (("phase1_plugin_like", "phase2_plugin_like"), [], "flat"),
    "joint": (("joint",), [], "mf"),
    "random": (("phase1", "phase2"), ["hydra/sweeper/sampler=random"], "mf"),
    # ours with one sampler lever changed (issue 26's item 4), measured against ours:
    # Optuna 5's default multivariate TPE (grouped: phase 2's space is conditional) ...
    "ours_mv": (
        ("phase1", "phase2"),
        ["hydra.sweeper.sampler.multivariate=true", "hydra.sweeper.sampler.group=true"],
        "mf",
    ),
    # ... and half the random start-up trials (10 of a phase's ~20 are random by default)
    "ours_startup5": (
        ("phase1", "phase2"),
        ["hydra.sweeper.sampler.n_startup_trials=5"],
        "mf",
    ),
    # ... and Optuna's Gaussian-process sampler in place of TPE (phase 2's conditional
    # parameters, outside the space every trial shares, fall back to its random sampler)
    "ours_gp": (
        ("phase1", "phase2"),
        ["hydra/sweeper/sampler=gp", "hydra.sweeper.sampler.warn_independent_sampling=false"],
        "mf",
    ),
}


@dataclass
class Budget:
    """One budget's settings (budget.sh's names, lower case)."""

    name: str
    phase_s: float  # each phase's hydra.sweeper.timeout (joint: the sum of both)
    workers: int = 2  # sweep processes per phase (budget.sh's LAUNCH=workers)
    final_jobs: int = 3  # final stage slots (> 1: submitit's local launcher)
    final_seeds: int = 3  # retrains per search
    epochs: dict[str, int] = field(default_factory=dict)  # "mf"/"flat" -> cap (absent: preset's)
    min_resource: int | None = None  # ours' first Hyperband rung (None: the preset's)
    timeout_prune: bool = True  # trials running at a phase's deadline are pruned (False: finish)
    extra: list[str] = field(default_factory=list)  # overrides for every stage


def budgets(phase_s: float | None) -> dict[str, Budget]:
    """proxy: the 10k subset, phases of a few minutes; full: budget.sh's defaults; smoke: tiny."""
    return {
        "proxy": Budget("proxy", phase_s or 180, extra=["data=fashion_mnist_subset"]),
        "full": Budget("full", phase_s or 510),
        "smoke": Budget(
            "smoke",
            phase_s or 5,
            workers=1,
            final_jobs=1,
            final_seeds=2,
            epochs={"mf": 3, "flat": 2},
            min_resource=1,
            timeout_prune=False,  # a loaded machine still completes a trial in a tiny phase
            extra=["data.holdout_size=128"],
        ),
    }


def run_stage(args: list[str], log: Path, procs: int) -> float:
    """``procs`` train.py -m processes of one command, waited for; their wall time."""
    t0 = time.time()
    with log.open("a") as out:
        running = [
            subprocess.Popen(
                [sys.executable, "train.py", "-m", *args], cwd=ROOT, stdout=out, stderr=out
            )
            for _ in range(procs)
        ]
        codes = [p.wait() for p in running]
    if any(codes):
        raise RuntimeError(f"train.py -m {' '.join(args)} exited {codes}; see {log}")
    return round(time.time() - t0, 1)


def curve(storage: str, studies: tuple[str, ...], t0: float) -> list[list[float]]:
    """[seconds since the side started, best hold-out so far] at each completed trial."""
    done = []
    for name in studies:
        study = optuna.load_study(study_name=name, storage=storage)
        done += study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    done.sort(key=lambda t: t.datetime_complete)
    points, best = [], -np.inf
    for t in done:
        if t.value > best:
            best = t.value
            points.append([round(t.datetime_complete.timestamp() - t0, 1), round(best, 4)])
    return points


def run_side(budget: Budget, side: str, seed: int, work: Path) -> dict[str, Any]:
    """Run one side's search with ``seed`` and return its summary.json entry."""
    phases, extra, cap = SIDES[side]
    name = f"{side}_{seed}"
    side_work, side_out = work / name, work / "out" / name
    for d in (side_work, side_out):  # a stopped run's leftovers would join this search's study
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    storage = f"sqlite:///{side_work / 'optuna.db'}"
    common = [
        f"hydra.sweeper.storage={storage}",
        f"hydra.sweep.dir={side_work}/${{hydra.sweeper.study_name}}",
        "trainer.num_threads=1",
        *budget.extra,
    ]
    phase_args = [
        *common,
        *extra,
        "hydra.sweeper.n_jobs=1",
        f"hydra.sweeper.timeout={budget.phase_s * 2 / len(phases)}",
        f"hydra.sweeper.timeout_prune={str(budget.timeout_prune).lower()}",
        "hydra.sweeper.n_trials=1000",
        "hydra.sweeper.max_total_trials=1000",
        f"hydra.sweeper.sampler.seed={seed}",
        f"seed={seed}",
    ]
    if cap in budget.epochs:
        phase_args.append(f"trainer.epochs={budget.epochs[cap]}")
    if cap == "mf" and budget.min_resource is not None:
        phase_args.append(f"hydra.sweeper.pruner.min_resource={budget.min_resource}")
    finals = ",".join(str(100 * seed + i) for i in range(1, budget.final_seeds + 1))
    final_args = [
        *common,
        "hparams_search=final",
        f"hydra.sweeper.pin_from={phases[-1]}",
        "hydra.sweeper.study_name=final",
        f"hydra.sweeper.n_jobs={budget.final_jobs}",
        f"seed=choice({finals})",
        *(["hydra/launcher=submitit_local"] if budget.final_jobs > 1 else []),
    ]
    log, t0, times = side_work / "train.log", time.time(), {}
    for role, preset in zip(("phase1", "phase2"), phases, strict=False):
        times[role] = run_stage([f"hparams_search={preset}", *phase_args], log, budget.workers)
    times["final"] = run_stage(final_args, log, 1)
    (side_out / "times.txt").write_text("".join(f"{k} {v}\n" for k, v in times.items()))
    studies = [phases[0], phases[-1], "final"]
    s = budget_summary.side_summary(name, studies, work, work / "out")
    one_phase = len(phases) == 1  # joint: phase1 and phase2 are the same study
    trials = s["stages"]["phase1"]["trials"] if one_phase else s["trials"]
    epochs = s["epochs_trained"] - (s["stages"]["phase2"]["epochs_trained"] if one_phase else 0)
    return {
        "final_test": s["final_test_mean"],
        "final_test_seeds": s["final_test_seeds"],
        "holdout_best": s["holdout_best"],
        "wall_s": s["wall_s"],
        "trials": trials,
        "epochs": epochs,
        "curve": curve(storage, phases, t0),
    }


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def commit(path: Path, message: str) -> None:
    """Commit ``path`` alone (other staged or edited files stay as they are); warn on failure."""
    where = path.parent  # the repository holding --out (a bench worktree may run the code)
    subprocess.run(["git", "add", "--", path.name], cwd=where, check=False)
    done = subprocess.run(
        ["git", "commit", "-q", "-m", message, "--", path.name],
        cwd=where,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        print(f"  warning: git commit failed: {done.stderr.strip() or done.stdout.strip()}")


def run_all(
    budget: Budget, sides: list[str], seeds: list[int], out: Path, work: Path, git: bool = False
) -> None:
    """Every (side, seed) not yet in ``out/summary.json``, seed-major (pairs finish together);
    ``git``: commit summary.json after each, so that a stopped run loses only the running one.
    A file ``work/PAUSE`` holds the next side back until it is removed (the machine is then quiet
    for something else without losing a running side)."""
    path = out / "summary.json"
    for seed in seeds:
        for side in sides:
            if str(seed) in load(path).get(budget.name, {}).get(side, {}):
                print(f"[{budget.name}] {side} seed {seed}: done, skipped")
                continue
            pause = work / "PAUSE"
            if pause.exists():
                print(f"  paused: waiting until {pause} is removed", flush=True)
                while pause.exists():
                    time.sleep(5)
            print(f"[{budget.name}] {side} seed {seed} ...", flush=True)
            entry = run_side(budget, side, seed, work / budget.name)
            summary = load(path)  # reread: another run may have written meanwhile
            summary.setdefault(budget.name, {}).setdefault(side, {})[str(seed)] = entry
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(summary, indent=1) + "\n")
            tmp.replace(path)
            if git:
                commit(path, f"compare: {budget.name} {side} seed {seed} ({entry['final_test']})")
            print(
                f"  final test {entry['final_test']}, {entry['trials']} trials, {entry['wall_s']} s"
            )


# ---- the report ------------------------------------------------------------------------------


def side_stats(values: list[float]) -> dict[str, float]:
    """Median, quartiles and IQR (numpy's linear quantiles)."""
    q1, med, q3 = np.quantile(values, [0.25, 0.5, 0.75])
    return {
        "n": len(values),
        "median": float(med),
        "q1": float(q1),
        "q3": float(q3),
        "iqr": float(q3 - q1),
    }


def detectable(sd: float, n: int) -> float:
    """The smallest mean paired difference ``n`` seeds detect with a two-sided 5 % paired t
    test and power 0.8: (t_0.975 + t_0.8 on n - 1 degrees of freedom) sd / sqrt(n); without
    scipy, the normal approximation 2.8 sd / sqrt(n)."""
    try:
        from scipy.stats import t

        k = float(t.ppf(0.975, n - 1) + t.ppf(0.8, n - 1))
    except ImportError:
        k = 2.8
    return k * sd / float(np.sqrt(n))


def paired(a: dict[str, Any], b: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """a against b on their common seeds: win rate (ties count half), mean difference, the
    paired Wilcoxon p (scipy) or else a 95 % paired bootstrap interval of the mean difference;
    with 2 seeds or more, the differences' standard deviation and the smallest mean difference
    the seeds can detect (``detectable``)."""
    seeds = sorted(set(a) & set(b), key=int)
    d = np.array([a[s]["final_test"] - b[s]["final_test"] for s in seeds], dtype=float)
    out: dict[str, Any] = {"n": len(seeds)}
    if not len(d):
        return out
    out["win_rate"] = float(np.mean((d > 0) + 0.5 * (d == 0)))
    out["mean_diff"] = float(d.mean())
    if len(d) > 1:  # the smallest mean difference these seeds would detect (5 %, power 0.8)
        out["sd_diff"] = float(d.std(ddof=1))
        out["detectable_diff"] = detectable(out["sd_diff"], len(d))
    try:
        from scipy.stats import wilcoxon

        out["wilcoxon_p"] = 1.0 if not np.any(d) else float(wilcoxon(d).pvalue)
    except ImportError:
        means = d[rng.integers(0, len(d), (10000, len(d)))].mean(axis=1)
        out["bootstrap_ci"] = [float(x) for x in np.quantile(means, [0.025, 0.975])]
    return out


def report_table(runs: dict[str, dict[str, Any]], seed: int = 0) -> tuple[str, dict[str, Any]]:
    """A budget's markdown table and the figures behind it."""
    rng = np.random.default_rng(seed)
    sides = list(runs)
    stats = {s: side_stats([r["final_test"] for r in runs[s].values()]) for s in sides}
    pairs = {f"{a}>{b}": paired(runs[a], runs[b], rng) for a in sides for b in sides if a != b}
    head = ["side", "seeds", "median", "IQR", *[f"wins vs {b}" for b in sides]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for a in sides:
        st, cells = stats[a], []
        for b in sides:
            if a == b:
                cells.append("—")
                continue
            p = pairs[f"{a}>{b}"]
            test = (
                f"p={p['wilcoxon_p']:.3f}"
                if "wilcoxon_p" in p
                else "CI [{:+.4f}, {:+.4f}]".format(*p.get("bootstrap_ci", [np.nan] * 2))
            )
            cells.append(f"{p.get('win_rate', np.nan):.0%} of {p['n']} ({test})")
        row = [a, str(st["n"]), f"{st['median']:.4f}", f"{st['q1']:.4f}–{st['q3']:.4f}", *cells]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    for i, a in enumerate(sides):  # each pair once: its effect against what its seeds can see
        for b in sides[i + 1 :]:
            p = pairs[f"{a}>{b}"]
            if "detectable_diff" in p:
                lines.append(
                    f"- {a} − {b}: mean {p['mean_diff']:+.4f}, sd {p['sd_diff']:.4f} over "
                    f"{p['n']} paired seeds; they detect a mean difference of "
                    f"{p['detectable_diff']:.4f} or more (5 %, power 0.8)"
                )
    return "\n".join(lines) + "\n", {"stats": stats, "pairs": pairs}


def anytime(
    curves: list[list[list[float]]], grid: np.ndarray, rng: np.random.Generator, n_boot: int = 1000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median best-so-far over seeds on ``grid`` and a 95 % bootstrap band of that median."""
    m = np.full((len(curves), len(grid)), np.nan)
    for i, c in enumerate(curves):
        for t, v in c:
            m[i, grid >= t] = v
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            # from the time every seed has a complete trial on (a median over the seeds that
            # started first would dip as slower ones join)
            med = np.median(m, axis=0)
            boot = np.median(m[rng.integers(0, len(m), (n_boot, len(m)))], axis=1)
            lo, hi = np.nanquantile(boot, [0.025, 0.975], axis=0)
    return med, lo, hi


def last_improvement(runs: dict[str, Any]) -> float:
    """The latest best-so-far point of a budget's searches, in seconds (1 with none)."""
    return max((p[0] for r in runs.values() for e in r.values() for p in e["curve"]), default=1.0)


def report(out: Path) -> tuple[Path, Path]:
    """curves.png (one panel per budget) and report.md from ``out/summary.json``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = load(out / "summary.json")
    if not summary:
        raise SystemExit(f"{out / 'summary.json'}: nothing to report")
    rng = np.random.default_rng(0)
    fig, axes = plt.subplots(1, len(summary), figsize=(6 * len(summary), 4), squeeze=False)
    md = [
        "# Search comparison over paired seeds",
        "",
        "Rendered by `benchmarks/compare_searches.py --report` from summary.json.",
        "",
    ]
    for ax, (name, runs) in zip(axes[0], summary.items(), strict=True):
        table, _ = report_table(runs)
        md += [
            f"## {name}",
            "",
            "Final test accuracy (mean of the final seeds) per search; "
            "wins: paired seeds where the row beats the column (ties half), paired Wilcoxon p.",
            "",
            table,
        ]
        grid = np.linspace(0, last_improvement(runs), 200)
        for side, r in runs.items():
            med, lo, hi = anytime([e["curve"] for e in r.values()], grid, rng)
            ax.plot(grid, med, label=f"{side} (n={len(r)})")
            ax.fill_between(grid, lo, hi, alpha=0.2)
        ax.set(
            title=name,
            xlabel="seconds since the search started",
            ylabel="best hold-out accuracy so far",
        )
        ax.legend()
    fig.tight_layout()
    png, mdp = out / "curves.png", out / "report.md"
    fig.savefig(png, dpi=120)
    plt.close(fig)
    mdp.write_text("\n".join(md))
    return png, mdp


def parse_seeds(text: list[str]) -> list[int]:
    seeds: list[int] = []
    for t in text:
        lo, _, hi = t.partition("-")
        seeds += list(range(int(lo), int(hi or lo) + 1))
    return seeds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    for m in ("proxy", "full", "smoke", "report"):
        mode.add_argument(f"--{m}", action="store_true")
    parser.add_argument("--sides", nargs="+", choices=list(SIDES), default=None)
    parser.add_argument("--seeds", nargs="+", default=None, help="e.g. 1-10 or 1 2 3")
    parser.add_argument("--phase-s", type=float, default=None, help="each phase's time budget")
    parser.add_argument("--out", type=Path, default=None, help="summary.json's folder")
    parser.add_argument("--work", type=Path, default=None, help="storages and logs")
    parser.add_argument(
        "--commit", action="store_true", help="git-commit summary.json after each finished seed"
    )
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.out is None:  # smoke: a temp results dir, never the committed one
        args.out = Path(tempfile.mkdtemp(prefix="compare_")) if args.smoke else RESULTS
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report:
        for p in report(args.out):
            print(p)
        return 0
    name = "proxy" if args.proxy else "full" if args.full else "smoke"
    budget, usual = budgets(args.phase_s)[name], budgets(None)[name]
    if args.out.resolve() == RESULTS.resolve() and budget.phase_s != usual.phase_s:
        # summary.json keeps no settings: its entries of one budget must share them
        parser.error(
            f"--phase-s {budget.phase_s:g}: the committed {name} seeds have {usual.phase_s:g}-s "
            "phases; write another budget to its own --out"
        )
    sides = args.sides or (["ours", "plugin_like"] if args.smoke else list(SIDES)[:4])
    seeds = parse_seeds(args.seeds or (["1-2"] if args.smoke else ["1-10"]))
    work = args.work or (args.out / "work" if args.smoke else ROOT / "multirun" / "compare")
    if args.smoke:
        sys.path.insert(0, str(ROOT / "tests"))
        from conftest import write_tiny_dataset

        os.environ["FASHION_MNIST_ROOT"] = str(write_tiny_dataset(Path(tempfile.mkdtemp())))
    elif not os.environ.get("FASHION_MNIST_ROOT"):
        parser.error("set FASHION_MNIST_ROOT (a folder holding FashionMNIST/raw/)")
    run_all(budget, sides, seeds, args.out, work, git=args.commit)
    print(
        f"done: {args.out / 'summary.json'}; render: python benchmarks/compare_searches.py --report"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
