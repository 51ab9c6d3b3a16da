"""The figures the docs quote, rendered from the committed result files.

A block of a markdown file between ``<!-- figures: NAME -->`` and ``<!-- /figures -->`` is
the output of ``RENDERERS[NAME]``, so a rerun of a benchmark updates its prose and tables in
one command, and ``--check`` (run by the test suite) fails when a doc is behind its results.

    python benchmarks/doc_figures.py            # rewrite every block from benchmarks/results/
    python benchmarks/doc_figures.py --check    # list the stale blocks, exit 1 if any
"""

from __future__ import annotations

import argparse
import ast
import csv
import functools
import json
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: The markdown files that hold blocks.
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(<!-- figures: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /figures -->)", re.S)


def _json(name: str) -> dict[str, Any]:
    return json.loads((RESULTS / name).read_text())


def _csv(name: str) -> list[dict[str, str]]:
    """The rows of a CSV under ``benchmarks/results/`` (a study exported by the benchmarks)."""
    with open(RESULTS / name) as f:
        return list(csv.DictReader(f))


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table, with a trailing newline (an empty cell is ``| |``)."""
    rows = [header, ["---"] * len(header), *rows]
    return "".join("|" + "|".join(f" {c} " if c else " " for c in r) + "|\n" for r in rows)


def _signed(x: float, digits: int = 4) -> str:
    """``x`` with its sign, and a typographic minus."""
    return f"{x:+.{digits}f}".replace("-", "−")


def _bold(text: str, on: bool = True) -> str:
    return f"**{text}**" if on else text


# ---------------------------------------------------------------- renderers
#: The epoch-speed paths in the table, with their labels (a path absent from the file is left out).
EPOCH_PATHS = {
    "sheet_w0": "the sheet's pipeline",
    "project": "the project, autograd step (`engine.TrainStep`)",
    "project_compile": "the project under `torch.compile`",
    "project_explicit": "the project, hand-written CPU backward (since removed)",
}


def epoch_speed() -> str:
    """The seconds-per-epoch table of ``epoch_speed_cpu.json``, with its provenance line."""
    d = _json("epoch_speed_cpu.json")
    paths = {k: v for k, v in d["paths"].items() if k in EPOCH_PATHS}
    base = paths["sheet_w0"]["s_per_epoch"]
    spread = max(p["max_s"] / p["min_s"] - 1 for p in paths.values())
    load = f"{d['loadavg_before'][0]:.1f} to {d['loadavg_after'][0]:.1f}"
    lines = [
        f"The file is `benchmarks/results/epoch_speed_cpu.json`, from {d['date'][:10]}: "
        f"{d['epochs_timed']} timed epochs after {d['warmup_epochs']} warm-up, torch "
        f"{d['torch'].split('+')[0]}, {d['cpu_count']} cores, the load average going from "
        f"{load}. Epochs of one path varied by up to {spread * 100:.0f} % within the run.",
        "",
        "| path | s/epoch | images/s | vs the sheet | val acc after "
        f"{d['epochs_timed']} epochs | peak RSS |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for key, label in EPOCH_PATHS.items():
        if key not in paths:
            continue
        p = paths[key]
        ratio = base / p["s_per_epoch"]
        shown = "1" if key == "sheet_w0" else f"{ratio:.2f}×"
        if key == "project":
            shown = f"**{shown}**"
        lines.append(
            f"| {label} | {p['s_per_epoch']:.2f} | {p['images_per_s'] / 1000:.1f}k | {shown} | "
            f"{p['val_acc']:.3f} | {p['peak_rss_mb']:.0f} MB |"
        )
    return "\n".join(lines) + "\n"


def pruning() -> str:
    """The with/without median pruning table of ``pruning_median_warm2_min5.json``."""
    d = _json("pruning_median_warm2_min5.json")
    off, on, c = d["runs"]["unpruned"], d["runs"]["pruned"], d["comparison"]
    gap = c["best_gap_points"]
    lines = [
        "| search | wall time | epochs trained | trials complete / pruned | best val acc |",
        "| --- | --- | --- | --- | --- |",
        f"| no pruning | {off['wall_s']:.0f} s | {off['epochs_trained']} | "
        f"{off['complete']} / {off['pruned']} | {off['best_value']:.4f} |",
        f"| median (n_warmup_steps 2, n_min_trials 5) | {on['wall_s']:.0f} s "
        f"(**{c['wall_ratio']:.2f}×**) | {on['epochs_trained']} | {on['complete']} / "
        f"{on['pruned']} | {on['best_value']:.4f} (**{'±0' if gap == 0 else f'{gap:+.2f}'}**) |",
    ]
    return "\n".join(lines) + "\n"


def interruptions() -> str:
    """The before/after table of ``interruptions.json`` (epochs lost per SIGKILL)."""
    d = _json("interruptions.json")
    lines = [
        "| side | epochs lost per kill | mean / max | seconds lost per kill, mean / max "
        "| epochs trained for the 30-epoch trial | attempts' wall time |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for side in ("before", "after"):
        r = d["sides"][side]
        lost = ", ".join(str(k["epochs_lost"]) for k in r["kills"])
        lines.append(
            f"| {side} | {lost} | "
            f"**{r['epochs_lost_mean']:g} / {r['epochs_lost_max']:g}** | "
            f"{r['seconds_lost_mean']:.1f} / {r['seconds_lost_max']:.1f} s | "
            f"{r['epochs_trained_total']} | {r['attempts_wall_s']:.0f} s |"
        )
    return "\n".join(lines) + "\n"


def trial_overhead() -> str:
    """The per-trial overhead of ``trial_overhead_cpu.json`` (all of a trial but its epochs)."""
    d = _json("trial_overhead_cpu.json")
    later, reads = d["median_later_s"], d["dataset_reads_after_first_call"]
    return (
        f"- The file: `benchmarks/results/trial_overhead_cpu.json`, from {d['date'][:10]}.\n"
        f"- The result: **{later:.2f} s** per trial after the first (target {d['target_s']:g} s), "
        f"and the first call took {d['first_call_s']:.2f} s.\n"
        f"- After the first trial the dataset was read {reads} times.\n"
        f"- `samples.png` adds about {d['with_save_samples_s'] - later:.1f} s. "
        "The sweeps turn it off.\n"
    )


def workers() -> str:
    """The several-workers-on-one-study table of ``workers_cpu.json``."""
    d = _json("workers_cpu.json")
    rows = [
        [
            f"{r['workers']} ({d['machine']['cpus']}-core CPU)",
            f"{r['epochs_per_s']:.2f}",
            _bold(f"{r['speedup']:.2f}", r["workers"] > 1),
            f"{r['efficiency']:.2f}" if r["workers"] > 1 else "—",
        ]
        for r in d["runs"]
    ]
    gpu = "not measured yet (`--workers 1 2 4 8 --device cuda`; target ≥ 0.8·K)"
    rows.append(["1, 2, 4, 8 on one GPU", gpu, "", ""])
    return _table(["workers", "epochs/s (aggregate)", "speed-up", "efficiency"], rows)


#: The pruners of ``pruners.json``, with their labels.
PRUNERS = {
    "hyperband": "Hyperband (`lab_multi_fidelity`: rungs 2, 6, 18)",
    "halving": "successive halving (min_resource 2, factor 3)",
    "median": "median (`lab_median`: 5 start-up trials, 2 warm-up epochs)",
}


def pruners() -> str:
    """The which-pruner table of ``pruners.json``: the best per seed, then means over the seeds."""
    d = _json("pruners.json")
    seeds, best = d["settings"]["seeds"], {(r["pruner"], r["seed"]): r["best"] for r in d["runs"]}
    rows = [
        [
            PRUNERS.get(name, name),
            ", ".join(f"{best[name, s]:.4f}" for s in seeds),
            f"{m['best']:.4f}",
            f"{m['complete']:.1f} / {m['pruned']:.1f}",
            f"{m['epochs_trained']:.0f}",
        ]
        for name, m in d["mean_over_seeds"].items()
    ]
    per_seed = f"best hold-out ({', '.join(f'seed {s}' for s in seeds)})"
    header = ["pruner", per_seed, "mean", "trials complete / pruned (mean)", "epochs (mean)"]
    return _table(header, rows)


#: The configs of ``benchmarks/levers.py``: the result file of each, and its label.
LEVER_CONFIGS = {
    "levers_search.json": "the searches' end point: Adam 0.0025, cosine, batch 32, padded "
    "LeNet-5, dropout 0.081, hflip, label smoothing",
    "levers_sheet.json": "the sheet's baseline: SGD 0.1, momentum 0.9, constant lr, batch 64",
}


def levers() -> str:
    """The levers table of ``levers_*.json``: the plain weights' mean, then each lever's mean gain
    over them, bold where it gained on every seed."""
    rows = []
    for name, label in LEVER_CONFIGS.items():
        # a variant is "<augmentation>+<averaging>"; key it by (with erasing, averaging)
        v = {
            ("erasing" in k.split("+")[0], k.split("+")[1]): x
            for k, x in _json(name)["variants"].items()
        }
        gains = [v[c] for c in [(False, "ema"), (False, "swa"), (True, "none"), (True, "ema")]]
        rows.append(
            [label, f"{v[False, 'none']['mean']:.4f}"]
            + [_bold(_signed(g["gain_vs_baseline"]), min(g["gain_per_seed"]) > 0) for g in gains]
        )
    return _table(["config", "plain", "EMA", "SWA", "erasing", "erasing + EMA"], rows)


#: The sides of ``benchmarks/budget.sh``'s summary, with their labels (others by their name).
BUDGET_SIDES = {"ours": "ours (`phase1`, `phase2`, `final`)"}


def _enqueued(run: str, side: str, stage: dict[str, Any]) -> bool:
    """Whether a stage's best trial was an enqueued point (all its params fixed), per its CSV."""
    rows = _csv(f"{run}/{side}/{stage['study']}.csv")
    row = next(r for r in rows if r["number"] == str(stage["best_trial"]))
    params = {k.removeprefix("params_") for k, v in row.items() if k.startswith("params_") and v}
    return set(ast.literal_eval(row.get("system_attrs_fixed_params") or "{}")) == params


def budget(run: str) -> str:
    """The same-budget table of ``<run>/summary.json`` (``benchmarks/budget.sh``), a column a
    side; a row's higher accuracy is bold."""
    sides = _json(f"{run}/summary.json")
    s = list(sides.values())

    def top(x: float, xs: list[float]) -> str:
        return _bold(f"{x:.4f}", x == max(xs))

    rows = []
    for k in (1, 2):
        st = [v["stages"][f"phase{k}"] for v in s]
        counts = ["complete", "pruned"] + ["failed"] * any(t["failed"] for t in st)
        bests = [t["best_value"] for t in st]
        rows.append(
            [f"phase {k}: trials ({' / '.join(counts)}), epochs, best hold-out"]
            + [
                f"{t['trials']} ({' / '.join(str(t[c]) for c in counts)}), {t['epochs_trained']}, "
                + top(t["best_value"], bests)
                + (" (the enqueued point)" if _enqueued(run, side, t) else "")
                for side, t in zip(sides, st)
            ]
        )
    means, seeds = [v["final_test_mean"] for v in s], s[0]["final_seeds"]
    rows += [
        [f"final: epochs, test accuracy (seeds {', '.join(map(str, seeds))})"]
        + [
            f"{v['final_epochs'][0]}, " + ", ".join(f"{x:.4f}" for x in v["final_test_seeds"])
            for v in s
        ],
        [f"**final test, mean of {len(seeds)} seeds**", *(top(m, means) for m in means)],
        ["hold-out → test gap", *(_signed(v["holdout_to_test_gap"]) for v in s)],
        ["wall time (phase 1 + phase 2 + final)"]
        + [
            " + ".join(f"{t['wall_s']:.0f}" for t in v["stages"].values())
            + f" = {v['wall_s']:,.0f} s"
            for v in s
        ],
    ]
    return _table(["", *(BUDGET_SIDES.get(k, k) for k in sides)], rows)


def slots() -> str:
    """The batch against asynchronous table of ``slots.json`` (utilisation and ratio to 3
    decimals, as the file holds them)."""
    d = _json("slots.json")
    rows = [
        [
            label,
            " ".join(map(str, r["epochs_per_trial"])),
            f"{r['trial_seconds']:.0f} s",
            f"{r['wall_seconds']:.0f} s",
            util,
        ]
        for label, r, util in [
            ("batch (`async_slots: false`)", d["batch"], f"{d['batch']['utilisation']:.3f}"),
            (
                "asynchronous (default)",
                d["async"],
                f"**{d['async']['utilisation']:.3f}** ({d['ratio']:.3f}×)",
            ),
        ]
    ]
    return _table(["slots", "trials' epochs", "trial-seconds", "wall", "utilisation"], rows)


def slots_summary() -> str:
    """``slots.json`` in one sentence."""
    d = _json("slots.json")
    b, a = d["batch"]["utilisation"], d["async"]["utilisation"]
    return (
        f"With K = {d['async']['slots']}, a pruned search went from {b:.3f} in batches to "
        f"**{a:.3f}** with asynchronous slots, {d['ratio']:.3f}× in one run.\n"
    )


def _times(run: str) -> dict[str, int]:
    """The wall seconds per stage of ``<run>/times.txt`` (lines ``<stage> <seconds> s``)."""
    lines = (RESULTS / run / "times.txt").read_text().split("\n")
    return {w[0]: int(w[1]) for w in (line.split() for line in lines) if w}


def _best(rows: list[dict[str, str]]) -> dict[str, str]:
    """The best complete trial of a study's rows."""
    return max((r for r in rows if r["state"] == "COMPLETE"), key=lambda r: float(r["value"]))


def _finals(rows: list[dict[str, str]]) -> list[float]:
    """A final stage's test accuracies, by seed."""
    return [float(r["value"]) for r in sorted(rows, key=lambda r: int(r["params_seed"]))]


def _mean_sd(xs: list[float], digits: int = 4) -> str:
    return f"{statistics.mean(xs):.{digits}f} ± {statistics.stdev(xs):.{digits}f}"


def _seeds(xs: list[float], bold: Callable[[float], bool] = lambda x: False) -> str:
    return ", ".join(_bold(f"{x:.4f}", bold(x)) for x in xs)


#: How the real run's table describes a phase's best trial, from its params.
REAL_RUN_BEST = {
    "phase1_flat": lambda p: (
        f"{p['optimizer']}, lr {float(p['optimizer.lr']):.2g}, batch "
        f"{p['data.batch_size']}, {p['scheduler']}, `{p['model']}`"
    ),
    "phase2_flat": lambda p: (
        f"+ {p['regularizer']}"
        + "".join(
            f" {k} {float(p[f'regularizer.{k}']):.2g}"
            for k in ("p", "coef")
            if p.get(f"regularizer.{k}")
        )
        + ", "
        f"{p['augmentation']}, {p['loss'].replace('_', ' ')}, "
        + ("no BatchNorm" if p["normalization"] == "none" else "BatchNorm")
    ),
}


def real_run() -> str:
    """The flat presets' real run: ``real_run/``'s study CSVs and ``times.txt``."""
    t, rows = _times("real_run"), []
    for k, (study, describe) in enumerate(REAL_RUN_BEST.items(), 1):
        trials = _csv(f"real_run/{study}.csv")
        best, states = _best(trials), [r["state"] for r in trials]
        p = {c.removeprefix("params_"): v for c, v in best.items() if c.startswith("params_") and v}
        epochs = sum(int(float(r["user_attrs_epochs_run"])) for r in trials)
        rows.append(
            [
                f"phase {k} best (trial {best['number']}: {describe(p)})",
                "hold-out",
                f"{float(best['value']):.4f}",
                f"{len(trials)} ({states.count('COMPLETE')} complete, "
                f"{states.count('PRUNED')} pruned; {epochs} epochs)",
                f"{t[study]} s",
            ]
        )
    final, base = _csv("real_run/final.csv"), _csv("real_run/final_baseline.csv")
    f, b = _finals(final), _finals(base)
    seeds = "/".join(sorted(r["params_seed"] for r in final))
    rows += [
        [
            f"**final**: phase 2's best, {final[0]['user_attrs_trainer.epochs']} epochs on 60,000 "
            f"images, seeds {seeds}",
            "— (test once)",
            f"**{_mean_sd(f)}** ({_seeds(f)})",
            str(len(f)),
            f"{t['final+final_baseline']} s (both finals side by side)",
        ],
        [
            f"sheet's baseline retrained the same way ({base[0]['user_attrs_epochs_run']} epochs)",
            "— (test once)",
            f"{_mean_sd(b, 3)} ({_seeds(b, lambda x: x <= 0.1)})",  # bold: a seed at chance
            str(len(b)),
            "",
        ],
    ]
    return _table(["stage", "selected on", "result", "trials", "wall time"], rows)


def importances() -> str:
    """Both real-run phases' importances (``real_run/phase<k>_flat_importances.csv``) side by side,
    in fANOVA's order; bold above 0.5."""
    evaluators, halves = ["fanova", "mean_decrease_impurity", "ped_anova"], []
    for study in ("phase1_flat", "phase2_flat"):
        imp: dict[str, dict[str, float]] = {}
        for r in _csv(f"real_run/{study}_importances.csv"):
            imp.setdefault(r["evaluator"], {})[r["param"]] = float(r["importance"])
        order = sorted(imp["fanova"], key=imp["fanova"].__getitem__, reverse=True)
        halves.append(
            [
                [f"`{p}`"] + [_bold(f"{imp[e][p]:.2f}", imp[e][p] > 0.5) for e in evaluators]
                for p in order
            ]
        )
    head = ["fANOVA", "MDI", "PED-ANOVA"]
    return _table(
        ["phase 1", *head, "phase 2", *head], [a + b for a, b in zip(*halves, strict=True)]
    )


def screening() -> str:
    """The hand-written split against the screened one (``real_run/``: the flat and the
    ``_auto`` chains, the screen's PED-ANOVA top 4); the higher final mean is bold."""
    t = _times("real_run")
    ped = [r for r in _csv("real_run/screen_importances.csv") if r["evaluator"] == "ped_anova"]
    ped.sort(key=lambda r: -float(r["importance"]))
    hand, auto = (_finals(_csv(f"real_run/{n}.csv")) for n in ("final", "final_auto"))

    def best(study: str) -> str:
        return f"{float(_best(_csv(f'real_run/{study}.csv'))['value']):.4f}"

    def final(v: list[float]) -> str:
        return _bold(_mean_sd(v), statistics.mean(v) == max(map(statistics.mean, (hand, auto))))

    rows = [
        [
            "hand-written (`phase1_flat`, `phase2_flat`)",
            best("phase1_flat"),
            best("phase2_flat"),
            final(hand),
            f"{t['phase1_flat']} + {t['phase2_flat']} + {t['final+final_baseline']} s",
        ],
        [
            f"screened (PED-ANOVA top 4: {', '.join(r['param'].split('.')[-1] for r in ped[:4])})",
            best("phase1_auto"),
            best("phase2_auto"),
            f"{final(auto)} ({_seeds(auto)})",
            f"{t['screen']} (screen) + {t['phase1_auto']} + {t['phase2_auto']} + "
            f"{t['final_auto']} s",
        ],
    ]
    head = ["split", "phase 1 best (hold-out)", "phase 2 best (hold-out)"]
    return _table([*head, f"final test, {len(auto)} seeds", "wall time"], rows)


def _verdict(met: bool, done: int, needed: int, miss: str) -> str:
    """A target's state: met, not decided before ``needed`` seeds, or not met (``miss``)."""
    if met:
        return "**met**."
    return (
        f"not decided yet ({done} of {needed} seeds)." if done < needed else f"**not met**: {miss}"
    )


def compare() -> str:
    """Per budget of ``compare/summary.json``: its setting, the final-test table of
    ``compare_searches.report_table`` (report.md's) and where issue 26's target stands: on the
    proxy, ours ahead of plugin_like in 8 of 10 paired seeds with p < 0.05; on the full data,
    ours' median final test >= 0.922 over 3 searches (stretch 0.925)."""
    import compare_searches  # optuna, numpy: imported for this block only

    summary, budgets = _json("compare/summary.json"), compare_searches.budgets(None)
    parts = []
    for name, runs in summary.items():
        b = budgets[name]
        data = "the 10k/2k subset" if "data=fashion_mnist_subset" in b.extra else "the full data"
        table, figures = compare_searches.report_table(runs)
        parts += [
            f"**{name}** ({data}, phases of {b.phase_s:g} s with {b.workers} workers, "
            f"{b.final_seeds} final seeds; seeds done: "
            + ", ".join(f"{side} {len(r)}" for side, r in runs.items())
            + "). Final test accuracy per search, mean of its final seeds:",
            "",
            table,
        ]
        lines = []
        pair, ours = figures["pairs"].get("ours>plugin_like", {}), figures["stats"].get("ours")
        if pair.get("n"):
            wins, p = pair["win_rate"] * pair["n"], pair.get("wilcoxon_p")
            lines.append(
                f"Ours against plugin_like: {wins:g} wins in {pair['n']} paired seeds, mean "
                f"difference {pair['mean_diff']:+.4f}"
                + (f", paired Wilcoxon p = {p:.3f}." if p is not None else ".")
            )
        if name == "full" and ours:
            med = ours["median"]
            met = ours["n"] >= 3 and med >= 0.922
            lines.append(
                "The target (ours' median final test >= 0.922 over 3 searches; stretch 0.925) is "
                + _verdict(met, ours["n"], 3, f"median {med:.4f}.")
            )
        elif pair.get("n"):
            met = pair["n"] >= 10 and wins >= 0.8 * pair["n"] and p is not None and p < 0.05
            lines.append(
                "The target (ahead in at least 8 of 10 paired seeds, p < 0.05) is "
                + (
                    "not decided (no p: scipy is missing)."
                    if p is None and wins >= 0.8 * pair["n"]
                    else _verdict(met, pair["n"], 10, "no claim that ours is better stands.")
                )
            )
        if lines:
            parts += [" ".join(lines), ""]
        parts += [_anytime(runs, 2 * b.phase_s), ""]
    return "\n".join(parts)


def _anytime(runs: dict[str, Any], total_s: float) -> str:
    """The median best hold-out so far of each side (curves.png's lines) at a sixth, a third
    and a half of the phases' time, and at the end (each search's last improvement: phases
    overrun their budget by a trial's last epoch)."""
    import numpy as np
    from compare_searches import anytime, last_improvement

    end = max(last_improvement(runs), total_s)
    grid = np.array([total_s / 6, total_s / 3, total_s / 2, end])
    rows = []
    for side, r in runs.items():
        med = anytime([e["curve"] for e in r.values()], grid, np.random.default_rng(0))[0]
        rows.append([side, *("—" if np.isnan(m) else f"{m:.4f}" for m in med)])
    head = ["median best hold-out so far", *(f"at {s:g} s" for s in grid[:-1]), "at the end"]
    if any("—" in row for row in rows):
        return _table(head, rows) + "\n— : not every seed's search had a complete trial yet."
    return _table(head, rows)


RENDERERS: dict[str, Callable[[], str]] = {
    "compare": compare,
    "interruptions": interruptions,
    "epoch-speed": epoch_speed,
    "pruning": pruning,
    "trial-overhead": trial_overhead,
    "workers": workers,
    "pruners": pruners,
    "levers": levers,
    "budget": lambda: budget("budget"),
    "budget-rerun": lambda: budget("budget_rerun"),
    "slots": slots,
    "slots-summary": slots_summary,
    "real-run": real_run,
    "importances": importances,
    "screening": screening,
}


# ---------------------------------------------------------------- blocks
@functools.cache
def _body(name: str) -> str:
    """A block's text, rendered once per process (README.md and docs/search.md share
    ``compare``, whose statistics and bootstrap are the costly part)."""
    return RENDERERS[name]()


def render(text: str) -> tuple[str, list[str]]:
    """``text`` with every block re-rendered, and the names of the blocks that changed."""
    changed: list[str] = []

    def one(m: re.Match[str]) -> str:
        name = m.group("name")
        if name not in RENDERERS:
            raise SystemExit(f"error: unknown figures block {name!r} (known: {sorted(RENDERERS)})")
        body = _body(name)
        if body != m.group("body"):
            changed.append(name)
        return m.group(1) + body + m.group(4)

    return BLOCK.sub(one, text), changed


def stale(docs: list[Path] = DOCS) -> list[str]:
    """``file: block`` for every block whose text differs from its results."""
    return [
        f"{doc.relative_to(ROOT)}: {name}" for doc in docs for name in render(doc.read_text())[1]
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="list stale blocks, exit 1 if any")
    args = parser.parse_args(argv)
    if args.check:
        behind = stale()
        for line in behind:
            print(f"stale: {line} (python benchmarks/doc_figures.py rewrites it)")
        return 1 if behind else 0
    for doc in DOCS:
        text, changed = render(doc.read_text())
        if changed:
            doc.write_text(text)
            print(f"{doc.relative_to(ROOT)}: {', '.join(changed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
