"""Assemble report.md, trials.csv, epochs.csv and the plots for one or more sweeps."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import compare, plots, search_views
from analysis.columns import param_columns
from analysis.job_overrides import command_line, format_value
from analysis.load import AnalysisError, PathLike, Runs, load_sweeps
from analysis.markdown import fmt, mapping, table
from analysis.sweep_info import SweepInfo
from lab_optuna.names import IMPORTANCES_CSV
from lenet_lab import record

_RANK_COLUMNS = [
    "study",
    "trial",
    "job",
    record.STATUS,
    record.BEST_VAL_ACC,
    record.BEST_EPOCH,
    record.EPOCHS_RUN,
    record.WALL_TIME_S,
    "final_gap",
]


@dataclass
class ReportResult:
    """What :func:`write_report` produced."""

    out_dir: Path
    report: Path
    trials_csv: Path
    epochs_csv: Path
    runs: Runs
    plots: list[Path] = field(default_factory=list)
    best_command: str | None = None


def _sweep_of(runs: Runs, sweep_dir: Any) -> SweepInfo | None:
    return next((s for s in runs.sweeps if str(s.path) == str(sweep_dir)), None)


def best_command(runs: Runs, index: Any) -> str:
    """``python train.py …`` reproducing trial ``index`` (a label of ``runs.trials``).

    Built from the job's ``.hydra/overrides.yaml`` without sweeper-internal keys; phase-2
    pinned values not already overridden are appended. Trials without a job dir (study-only)
    are rebuilt from their parameter columns.
    """
    row = runs.trials.loc[index]
    overrides = list(runs.details.loc[index, "overrides"] or [])
    sweep = _sweep_of(runs, row["sweep_dir"])
    pinned = (sweep.pinned if sweep else None) or {}
    if not overrides:
        overrides = [
            f"{col}={format_value(row[col])}"
            for col in param_columns(runs.trials)
            if not _missing(row[col])
        ]
    return command_line(overrides, extra=pinned)


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _img(path: Path | None, alt: str) -> list[str]:
    return [f"![{alt}]({path.name})", ""] if path is not None else []


class _Builder:
    """Collects report lines and plot paths while the sections are rendered."""

    def __init__(self, runs: Runs, out_dir: Path, top: int, draw: bool) -> None:
        self.runs, self.out_dir, self.top, self.draw = runs, out_dir, top, draw
        self.trials = runs.trials
        self.lines: list[str] = []
        self.plots: list[Path] = []
        self.best = compare.best_index(self.trials)
        self.command = best_command(runs, self.best) if self.best is not None else None

    def plot(self, func: Any, name: str, *args: Any) -> Path | None:
        if not self.draw:
            return None
        path = func(*args, self.out_dir / name)
        if path is not None:
            self.plots.append(path)
        return path

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    # ------------------------------------------------------------------ sections
    def overview(self) -> None:
        t = self.trials
        self.add("# Sweep report", "")
        rows = []
        for s in self.runs.sweeps:
            mine = t[t["sweep_dir"] == str(s.path)]
            sweeper = "optuna" if s.is_optuna else (s.sweeper or "basic").split(".")[-1]
            rows.append(
                {
                    "sweep_dir": str(s.path),
                    "study": s.study,
                    "sweeper": sweeper,
                    "trials": len(mine),
                    "job_dirs": int(mine["job"].notna().sum()),
                }
            )
        self.add(table(pd.DataFrame(rows)), "")
        launched = [
            f"- `{s.label}` launched as: `python train.py -m {' '.join(s.task_overrides)}`"
            for s in self.runs.sweeps
            if s.task_overrides
        ]
        if launched:
            self.add(*launched, "")
        counts = t[record.STATUS].value_counts()
        self.add("**Status counts:** " + ", ".join(f"{k}: {v}" for k, v in counts.items()), "")

    def chain(self) -> None:
        """Study by study: what each selected on (the hold-out) or reported (the test split,
        mean ± std over its seeds) — phase 1 → phase 2 → final on one table."""
        t = self.trials
        if "objective" not in t.columns or t["study"].nunique() < 2:
            return
        rows = []
        for study, g in t.groupby("study", sort=False):
            done = g[g[record.STATUS].isin(record.FINISHED) & g["objective"].notna()]
            if done.empty:
                continue
            split = ", ".join(sorted({str(v) for v in done[record.VAL_SPLIT].dropna()})) or "-"
            values = done["objective"].astype(float)
            if split == "test" and len(done) > 1:
                shown = ", ".join(f"{v:.4f}" for v in values)
                if "seed" in done.columns and done["seed"].notna().all():  # in seed order
                    ordered = done.assign(objective=values).sort_values("seed", kind="stable")
                    shown = ", ".join(
                        f"seed {fmt(s)}: {v:.4f}"
                        for s, v in zip(ordered["seed"], ordered["objective"])
                    )
                result = f"**{values.mean():.4f} ± {values.std():.4f}** ({shown})"
            else:
                best = done.loc[values.idxmax()]
                result = f"best {best['objective']:.4f} (trial {best['trial']})"
            rows.append(
                {"study": study, "objective on": split, "runs": len(done), "result": result}
            )
        if len(rows) < 2:
            return
        self.add(
            "## Selection chain",
            "",
            "Each study's objective (the value its sweeper was told) and the split it came "
            "from: studies on the hold-out select; a study on the test split reports, "
            "mean ± std over its runs (seeds).",
            "",
            table(pd.DataFrame(rows)),
            "",
        )

    def best_trials(self) -> None:
        varied = compare.varied_columns(self.trials)
        self.add(f"## Best trials (top {self.top} by best_val_acc)", "")
        top = compare.ranked(self.trials, self.top)
        if top.empty:
            self.add("No trial has a best_val_acc yet.", "")
            return
        if not top[record.STATUS].isin(record.FINISHED).all():
            self.add("_No trial finished normally; ranking unfinished trials._", "")
        shown = top[[c for c in _RANK_COLUMNS if c in top.columns] + varied]
        self.add(table(shown.assign(rank=range(1, len(shown) + 1))[["rank", *shown.columns]]), "")
        fixed = compare.constant_params(self.trials)
        if fixed:
            self.add(
                "Same in every trial: "
                + ", ".join(f"`{k}={format_value(v)}`" for k, v in fixed.items())
                + "",
                "",
            )

    def best_config(self) -> None:
        self.add("## Best configuration", "")
        if self.best is None:
            self.add("No trial has a value yet.", "")
            return
        row = self.trials.loc[self.best]
        detail = self.runs.details.loc[self.best]
        self.add(
            f"- study `{row['study']}`, trial {fmt(row['trial'])}, job `{fmt(row['job'])}`"
            f" ({row['status']})",
            f"- best_val_acc **{fmt(row['best_val_acc'], 'acc')}** at epoch "
            f"{fmt(row['best_epoch'])} of {fmt(row['epochs_run'])} run "
            f"(budget {fmt(row['max_epochs'])}), wall time {fmt(row['wall_time_s'])} s",
        )
        if detail.get("path"):
            self.add(f"- directory: `{detail['path']}`")
        self.add("", "Reproduce it with:", "", "```bash", str(self.command), "```", "")
        run = compare.run_epochs(self.runs.epochs, row["sweep_dir"], row["job"])
        self.add(
            *_img(
                self.plot(
                    plots.best_curves,
                    "best_curves.png",
                    run,
                    f"best trial: {row['study']} #{fmt(row['trial'])}",
                ),
                "best trial curves",
            )
        )

    def comparisons(self) -> None:
        found = compare.comparisons_by_study(self.trials)
        if not found:
            return
        several = self.trials["study"].nunique(dropna=False) > 1
        self.add(
            "## Comparisons by choice",
            "",
            f"Statistics over finished trials ({'/'.join(sorted(record.FINISHED))}); "
            "`n_other` counts the other trials with that choice. `mean_final_gap` "
            "is train_acc - val_acc at the last epoch (overfitting).",
            "",
        )
        if several:
            self.add(
                "Each choice is compared within one study only, where the other "
                "parameters were searched or pinned alike (studies are never pooled).",
                "",
            )
        for study, col, result in found:
            mine = self.trials[self.trials["study"] == study]
            heading, name = (
                (f"{col} (study {study})", f"compare_{_safe(str(study))}_{_safe(col)}.png")
                if several
                else (col, f"compare_{_safe(col)}.png")
            )
            self.add(f"### {heading}", "", table(result, index=True), "")
            self.add(
                *_img(
                    self.plot(plots.group_curves, name, mine, self.runs.epochs, col),
                    f"validation curves by {heading}",
                )
            )

    def early_stopping(self) -> None:
        info = compare.early_stopping_summary(self.trials)
        if not info["n"]:
            return
        self.add("## Early stopping", "")
        budgets = ", ".join(str(b) for b in info.get("budgets", [])) or "unknown"
        line = f"Budget (max_epochs): {budgets}. Mean epochs run: {info['mean_epochs_run']:.1f}"
        if "mean_budget_fraction" in info:
            line += f" ({info['mean_budget_fraction']:.0%} of the budget)"
        self.add(line + f"; {info['n_stopped_early']} of {info['n']} runs stopped early.", "")
        if "table" in info:
            delta = info["acc_delta"]
            verb = "cost" if delta < 0 else "gained"
            self.add(
                table(info["table"], index=True),
                "",
                f"Stopped-early runs {verb} {abs(delta) * 100:.2f} accuracy points on "
                "average vs full-length runs (mean best_val_acc; runs differ in other "
                "parameters too).",
                "",
            )
        self.add(
            *_img(
                self.plot(plots.epochs_vs_budget, "early_stopping.png", self.trials),
                "epochs run vs budget",
            )
        )

    def lr_schedules(self) -> None:
        keys = compare.lr_varying_keys(self.runs.epochs)
        if not keys:
            return
        t = self.trials
        key_index = pd.MultiIndex.from_tuples(keys)
        cand = t[pd.MultiIndex.from_frame(t[["sweep_dir", "job"]]).isin(key_index)]
        best_first = compare.ranked(cand)
        cand = best_first if not best_first.empty else cand
        if "scheduler" in cand.columns and cand["scheduler"].notna().any():
            cand = cand.drop_duplicates("scheduler")
        cand = cand.head(6)
        self.add(
            "## Learning-rate schedules",
            "",
            f"{len(keys)} run(s) change the learning rate during training; "
            "shown: the best run per scheduler.",
            "",
        )
        rows, panels = [], []
        for _, r in cand.iterrows():
            run = compare.run_epochs(self.runs.epochs, r["sweep_dir"], r["job"])
            name = r["scheduler"] if "scheduler" in cand.columns else ""
            vl = run["val_loss"] if "val_loss" in run.columns else pd.Series(dtype=float)
            best_ep = run.loc[vl.idxmin(), "epoch"] if vl.notna().any() else None
            rows.append(
                {
                    "study": r["study"],
                    "trial": r["trial"],
                    "scheduler": name,
                    "lr_first": run["lr"].iloc[0],
                    "lr_last": run["lr"].iloc[-1],
                    "min_val_loss_epoch": best_ep,
                    record.BEST_VAL_ACC: r[record.BEST_VAL_ACC],
                }
            )
            panels.append((r["sweep_dir"], r["job"], f"{r['study']} #{fmt(r['trial'])} {name}"))
        self.add(table(pd.DataFrame(rows)), "")
        self.add(
            *_img(
                self.plot(plots.lr_trace, "lr_trace.png", self.runs.epochs, panels),
                "learning rate vs val loss",
            )
        )

    def optuna(self) -> None:
        sweeps = [s for s in self.runs.sweeps if s.is_optuna]
        if not sweeps:
            return
        self.add("## Optuna studies", "")
        imp_tables: dict[str, pd.DataFrame] = {}
        for s in sweeps:
            mine = self.trials[self.trials["sweep_dir"] == str(s.path)]
            self.add(f"### {s.study} (`{s.path}`)", "")
            counts = compare.outcome_counts(mine)
            self.add("Trials: " + ", ".join(f"{k} {v}" for k, v in counts.items()), "")
            if s.results:
                self.add(f"Sweeper's best value: **{fmt(s.results.get('best_value'), 'acc')}**")
                best_params = s.results.get("best_params") or {}
                if isinstance(best_params, dict) and best_params:
                    self.add(
                        "", "Best params (optimization_results.yaml):", "", mapping(best_params)
                    )
                self.add("")
            if s.pinned:
                self.add("Pinned from phase 1 (pinned.yaml):", "", mapping(s.pinned), "")
            imp, source = s.importances, IMPORTANCES_CSV
            shown = s.importance_table if s.importance_table is not None else imp
            if imp is None:
                params = compare.varied_columns(mine)
                imp, source = (
                    compare.approx_importances(mine, params),
                    (
                        "approximate: share of best_val_acc variance explained (eta2), "
                        "computed here because importances.csv is missing"
                    ),
                )
                shown = imp
            elif shown is not None and len(shown.columns) > 2:
                names = [c for c in shown.columns if c not in ("param", "objective")]
                source += f": Optuna's evaluators, each summing to 1; the plot shows `{names[0]}`"
            if not imp.empty and shown is not None:
                self.add(f"Parameter importances ({source}):", "", table(shown), "")
                imp_tables[s.study] = imp
        self.add(
            *_img(
                self.plot(plots.importances, "importances.png", imp_tables), "parameter importances"
            )
        )

    def search_views(self) -> None:
        """The optimisation history, parallel coordinates, the two most important parameters and
        the timeline of each
        Optuna sweep; a view that cannot be drawn is one line saying why."""
        sweeps = [s for s in self.runs.sweeps if s.is_optuna]
        if not sweeps:
            return
        self.add("## Search views", "")
        used: set[str] = set()
        for s in sweeps:
            suffix = ""
            if len(sweeps) > 1:
                self.add(f"### {s.study} (`{s.path}`)", "")
                suffix = "_" + _safe(s.study if _safe(s.study) not in used else s.label)
                used.add(suffix[1:])
            for view in search_views.views_of(s):
                if view.skip:
                    self.add(f"_{view.title.capitalize()}: not drawn ({view.skip})._", "")
                    continue
                path = self.plot(view.draw, f"{view.stem}{suffix}.png")
                if path is not None:
                    self.add(view.sentence, "", *_img(path, view.title))
                if view.note:
                    self.add(view.note, "")

    def stats(self) -> None:
        if self.best is None:
            return
        row = self.trials.loc[self.best]
        run = compare.run_epochs(self.runs.epochs, row["sweep_dir"], row["job"])
        summary = compare.stats_summary(run)
        if summary.empty:
            return
        self.add(
            "## Parameter and feature statistics (best trial)",
            "",
            "First vs last epoch of the weight (`param_*`) and input/output feature "
            "(`feat_*`) statistics.",
            "",
            table(summary),
            "",
        )
        self.add(
            *_img(
                self.plot(
                    plots.stats_curves, "stats.png", run, f"{row['study']} #{fmt(row['trial'])}"
                ),
                "statistics",
            )
        )

    def problems(self) -> None:
        t = self.trials
        bad = t[~t[record.STATUS].isin(record.FINISHED)]
        if bad.empty:
            return
        reasons = self.runs.details.loc[bad.index, "reason"]
        shown = bad[
            ["study", "trial", "job", record.STATUS, record.EPOCHS_RUN, record.BEST_VAL_ACC]
        ].assign(reason=reasons)
        self.add("## Unfinished, failed and pruned trials", "", table(shown), "")

    def files(self, written: Iterable[str]) -> None:
        self.add("## Files", "", *[f"- `{name}`" for name in written], "")


def build_report(runs: Runs, out_dir: Path, top: int = 10, draw: bool = True) -> _Builder:
    """Render every section (drawing plots into ``out_dir``); returns the filled builder."""
    b = _Builder(runs, out_dir, top, draw)
    b.overview()
    b.chain()
    b.best_trials()
    b.best_config()
    b.comparisons()
    b.early_stopping()
    b.lr_schedules()
    b.optuna()
    b.search_views()
    b.stats()
    b.problems()
    return b


def write_report(
    dirs: PathLike | Iterable[PathLike],
    out: PathLike | None = None,
    top: int = 10,
    draw: bool = True,
) -> ReportResult:
    """Load sweeps and write report.md, trials.csv, epochs.csv and PNG plots.

    Output goes to ``out`` or else the first sweep dir. Raises :class:`AnalysisError`.
    """
    runs = load_sweeps(dirs)
    out_dir = Path(out) if out is not None else runs.sweeps[0].path
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        b = build_report(runs, out_dir, top=top, draw=draw)
        trials_csv, epochs_csv = out_dir / "trials.csv", out_dir / "epochs.csv"
        runs.trials.to_csv(trials_csv, index=False)
        runs.epochs.to_csv(epochs_csv, index=False)
        b.files(["trials.csv", "epochs.csv", *[p.name for p in b.plots]])
        report = out_dir / "report.md"
        report.write_text("\n".join(b.lines), encoding="utf-8")
    except OSError as exc:
        raise AnalysisError(f"{out_dir}: cannot write outputs ({exc.strerror or exc})") from exc
    return ReportResult(
        out_dir=out_dir,
        report=report,
        trials_csv=trials_csv,
        epochs_csv=epochs_csv,
        runs=runs,
        plots=b.plots,
        best_command=b.command,
    )
