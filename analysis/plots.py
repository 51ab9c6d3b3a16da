"""PNG plots drawn with matplotlib's Agg canvas (no pyplot state, no optuna.visualization)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.compare import run_epochs
from lenet_lab import record

_MAX_LINES = 30  # individual runs drawn per choice before only the mean is shown


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def _epoch_axis(ax: Any, label: str = "epoch") -> None:
    """Whole-number ticks; a single epoch gets a unit-wide axis centred on it."""
    ax.set_xlabel(label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    xs = [x for line in ax.get_lines() for x in np.asarray(line.get_xdata(), dtype=float)]
    xs += [p[0] for c in ax.collections for p in np.asarray(c.get_offsets(), dtype=float)]
    xs = [x for x in xs if math.isfinite(x)]
    if xs and max(xs) - min(xs) < 1:
        ax.set_xlim(min(xs) - 0.5, max(xs) + 0.5)


def _marks(n: int, size: float = 3) -> dict[str, Any]:
    """Markers on every point of an epoch curve (at most ~40 drawn): a one-epoch run is a
    visible dot, not an invisible zero-length line."""
    return {"marker": "o", "ms": size, "markevery": max(1, math.ceil(n / 40))}


def fit_title(fig: Figure, title: str, fontsize: float = 11) -> None:
    """``fig.suptitle`` wrapped onto as many lines as needed to fit the figure's width."""
    import textwrap

    text = fig.suptitle(title, fontsize=fontsize)
    renderer = fig.canvas.get_renderer()
    width = fig.bbox.width * 0.96
    chars = len(title)
    while chars > 10 and text.get_window_extent(renderer).width > width:
        chars = int(chars * 0.85)
        text.set_text(textwrap.fill(title, chars, break_long_words=True))


def _finite(series: pd.Series) -> pd.Series:
    values = pd.to_numeric(series, errors="coerce").astype(float)
    return values.where(np.isfinite(values))


def _label(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def best_curves(run: pd.DataFrame, title: str, path: Path) -> Path | None:
    """Loss and accuracy (train and val) per epoch of one run."""
    if run.empty:
        return None
    fig = _figure(10, 3.8)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, metric in ((ax_loss, "loss"), (ax_acc, "acc")):
        for split in ("train", "val"):
            col = f"{split}_{metric}"
            if col in run.columns:
                ax.plot(run["epoch"], _finite(run[col]), label=split, **_marks(len(run)))
        _epoch_axis(ax)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fit_title(fig, title)
    return _save(fig, path)


def group_curves(
    trials: pd.DataFrame, epochs: pd.DataFrame, column: str, path: Path
) -> Path | None:
    """Val-loss and val-acc curves overlaid per choice of ``column`` (thin: runs, bold: mean).

    Pass the trials of one study (the report does): choices are compared within a study.
    """
    if epochs.empty or not {"val_loss", "val_acc"} & set(epochs.columns):
        return None
    keyed = trials[trials[column].notna() & trials["job"].notna()]
    merged = epochs.merge(keyed[["sweep_dir", "job", column]], on=["sweep_dir", "job"])
    if merged.empty:
        return None
    fig = _figure(11, 4)
    axes = fig.subplots(1, 2)
    colors = _colors(merged[column].unique())
    for ax, metric in zip(axes, ("val_loss", "val_acc"), strict=True):
        if metric not in merged.columns:
            continue
        for choice, sub in merged.groupby(column, sort=False):
            color = colors[choice]
            runs = list(sub.groupby(["sweep_dir", "job"], sort=False))
            if len(runs) <= _MAX_LINES:
                for _, run in runs:
                    run = run.sort_values("epoch")
                    ax.plot(
                        run["epoch"],
                        _finite(run[metric]),
                        color=color,
                        alpha=0.25,
                        lw=1,
                        **_marks(len(run), 2),
                    )
            mean = sub.assign(v=_finite(sub[metric])).groupby("epoch")["v"].mean()
            ax.plot(
                mean.index,
                mean.values,
                color=color,
                lw=2.2,
                label=f"{_label(choice)} (n={len(runs)})",
                **_marks(len(mean), 4),
            )
        _epoch_axis(ax)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    studies = list(dict.fromkeys(trials["study"].dropna().astype(str)))
    where = f" (study {studies[0]})" if len(studies) == 1 else ""
    fit_title(fig, f"validation curves by {column}{where}")
    return _save(fig, path)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return textwrap.fill(text, width, break_long_words=True)


def _colors(values: Iterable[Any]) -> dict[Any, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {v: cmap(i % 10) for i, v in enumerate(values)}


def _grid(n: int, width: float, height: float):
    """A figure with ``n`` panels, up to 3 per row; returns (figure, flat array of axes)."""
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = _figure(width * cols, height * rows)
    return fig, np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()


def lr_trace(epochs: pd.DataFrame, runs: list[tuple[Any, Any, str]], path: Path) -> Path | None:
    """Val loss with the learning rate on a log secondary axis, one panel per run.

    ``runs`` holds ``(sweep_dir, job, title)``.
    """
    panels = [(run_epochs(epochs, s, j), title) for s, j, title in runs]
    panels = [(r, t) for r, t in panels if not r.empty and "lr" in r.columns]
    if not panels:
        return None
    fig, axes = _grid(len(panels), 4.6, 3.4)
    for ax, (run, title) in zip(axes, panels, strict=False):
        if "val_loss" in run.columns:
            ax.plot(
                run["epoch"],
                _finite(run["val_loss"]),
                color="tab:blue",
                label="val_loss",
                **_marks(len(run)),
            )
        ax.set_ylabel("val_loss", color="tab:blue")
        ax.set_title(_wrap(title, 45), fontsize=9)
        ax.grid(alpha=0.3)
        lr = _finite(run["lr"])
        ax2 = ax.twinx()
        ax2.plot(
            run["epoch"], lr.where(lr > 0), color="tab:red", ls="--", label="lr", **_marks(len(run))
        )
        _epoch_axis(ax)
        ax2.set_yscale("log")
        ax2.set_ylabel("learning rate (log)", color="tab:red")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    return _save(fig, path)


def importances(tables: dict[str, pd.DataFrame], path: Path) -> Path | None:
    """Horizontal bars of parameter importance, one panel per study."""
    tables = {k: v for k, v in tables.items() if not v.empty}
    if not tables:
        return None
    height = max(2.5, 0.4 * max(len(t) for t in tables.values()) + 1.2)
    fig = _figure(5 * len(tables), height)
    axes = np.atleast_1d(fig.subplots(1, len(tables), squeeze=False)).ravel()
    for ax, (study, table) in zip(axes, tables.items(), strict=True):
        table = table.iloc[::-1]
        ax.barh(table["param"].astype(str), table["importance"].astype(float), color="tab:blue")
        ax.set_xlabel("importance")
        ax.set_title(str(study))
        ax.grid(alpha=0.3, axis="x")
    return _save(fig, path)


def epochs_vs_budget(trials: pd.DataFrame, path: Path) -> Path | None:
    """Epochs run vs best_val_acc, stopped-early runs highlighted, budget as a dashed line."""
    data = trials[trials[record.EPOCHS_RUN].notna() & trials[record.BEST_VAL_ACC].notna()]
    if data.empty:
        return None
    fig = _figure(6.5, 4)
    ax = fig.subplots()
    flag = data[record.STOPPED_EARLY].fillna(False).astype(bool)
    for mask, label, color in (
        (flag, "stopped early", "tab:orange"),
        (~flag, "full budget / other", "tab:blue"),
    ):
        sub = data[mask]
        if not sub.empty:
            ax.scatter(
                sub[record.EPOCHS_RUN].astype(float),
                sub[record.BEST_VAL_ACC],
                label=label,
                color=color,
                s=22,
                alpha=0.8,
            )
    for budget in data[record.MAX_EPOCHS].dropna().unique():
        ax.axvline(float(budget), color="grey", ls="--", lw=1, gid="budget")
    _epoch_axis(ax, "epochs run (dashed: max_epochs budget)")
    ax.set_ylabel(record.BEST_VAL_ACC)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def stats_curves(run: pd.DataFrame, title: str, path: Path) -> Path | None:
    """Mean +- std over epochs of the parameter and feature statistics of one run."""
    groups = [g for g in ("param", "feat_in", "feat_out") if f"{g}_mean" in run.columns]
    if run.empty or not groups:
        return None
    fig = _figure(4.2 * len(groups), 3.4)
    axes = np.atleast_1d(fig.subplots(1, len(groups), squeeze=False)).ravel()
    for ax, group in zip(axes, groups, strict=True):
        mean = _finite(run[f"{group}_mean"])
        ax.plot(run["epoch"], mean, label="mean", **_marks(len(run)))
        if f"{group}_std" in run.columns:
            std = _finite(run[f"{group}_std"])
            ax.fill_between(run["epoch"], mean - std, mean + std, alpha=0.25, label="+- std")
        for bound in ("min", "max"):
            if f"{group}_{bound}" in run.columns:
                ax.plot(
                    run["epoch"],
                    _finite(run[f"{group}_{bound}"]),
                    ls=":",
                    label=bound,
                    **_marks(len(run), 2),
                )
        ax.set_title(group)
        _epoch_axis(ax)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fit_title(fig, title)
    return _save(fig, path)
