"""The search views of an Optuna sweep: parallel coordinates, a heat map of two parameters
and the trials' timeline (matplotlib's Agg canvas, as ``plots.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.patches import Patch

from analysis.plots import _figure, _save
from analysis.search_space import PARAM_PREFIX, Axis, complete, objective
from analysis.timeline import Timeline

GREY = "0.65"
#: Bar colour of each Optuna trial state in the timeline (others: grey).
STATE_COLORS = {"COMPLETE": "tab:green", "PRUNED": "tab:orange", "FAIL": "tab:red"}
_BINS = 8  # heat-map cells along a numeric axis


def _norm(values: pd.Series) -> Normalize:
    lo, hi = float(values.min()), float(values.max())
    return Normalize(lo, hi) if hi > lo else Normalize(lo - 0.5, hi + 0.5)


def _colorbar(fig: Any, ax: Any, norm: Normalize, label: str) -> None:
    from matplotlib.cm import ScalarMappable

    fig.colorbar(ScalarMappable(norm=norm, cmap="viridis"), ax=ax, label=label)


def parallel_coordinates(
    study_trials: pd.DataFrame, axes: list[Axis], label: str, path: Path
) -> Path:
    """One line per trial across ``axes`` (each scaled to [0, 1]) and the objective, coloured
    by the objective; trials without a value (pruned, failed) grey, drawn underneath."""
    values = objective(study_trials)
    ok = complete(study_trials)
    columns = [a.scale(study_trials[PARAM_PREFIX + a.name]) for a in axes]
    norm = _norm(values[ok]) if ok.any() else Normalize(0, 1)
    ys = np.column_stack([norm(values.to_numpy()), *columns])
    fig = _figure(max(6.0, 1.6 * (len(axes) + 1)), 4.6)
    ax = fig.subplots()
    cmap = colormaps["viridis"]
    xs = np.arange(len(axes) + 1)
    for i in np.flatnonzero(~ok.to_numpy()):
        ax.plot(xs, ys[i], color=GREY, lw=1, alpha=0.6, zorder=1, gid="grey")
    for i in sorted(np.flatnonzero(ok.to_numpy()), key=lambda i: values.iloc[i]):
        ax.plot(xs, ys[i], color=cmap(ys[i, 0]), lw=1.6, alpha=0.9, zorder=2, gid="trial")
    for x in xs:
        ax.axvline(x, color="0.3", lw=0.8, zorder=0)
    if ok.any():
        lo, hi = norm.vmin, norm.vmax
        ax.text(0, -0.06, f"{lo:.4g}", ha="center", va="top", fontsize=7)
        ax.text(0, 1.06, f"{hi:.4g}", ha="center", va="bottom", fontsize=7)
    for x, a in enumerate(axes, start=1):
        if a.categorical:
            step = 1 / max(1, len(a.levels) - 1)
            for i, level in enumerate(a.levels):
                ax.text(x + 0.04, i * step, level, fontsize=7, va="center", zorder=3)
        else:
            lo, hi = f"{a.low:.3g}", f"{a.high:.3g}" + (" (log)" if a.log else "")
            ax.text(x, -0.06, lo, ha="center", va="top", fontsize=7)
            ax.text(x, 1.06, hi, ha="center", va="bottom", fontsize=7)
    ax.set_xticks(xs, ["objective", *[a.name for a in axes]], rotation=20, fontsize=8)
    ax.set_yticks([])
    ax.set_ylim(-0.15, 1.15)
    ax.set_xlim(-0.3, len(axes) + 0.6)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.set_title("parallel coordinates (grey: pruned/failed)", fontsize=10)
    _colorbar(fig, ax, norm, label)
    return _save(fig, path)


def _cells(a: Axis, values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cell edges, cell of each value (-1: none), point positions) along one heat-map axis,
    in the axis' data coordinates (levels 0..n-1; numbers as they are, log-spaced if log)."""
    if a.categorical:
        pos = a.scale(values) * max(1, len(a.levels) - 1)
        edges = np.arange(len(a.levels) + 1) - 0.5
        cell = np.where(np.isnan(pos), -1, np.round(np.nan_to_num(pos, nan=-1))).astype(int)
        return edges, cell, pos
    x = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
    lo, hi = (a.low, a.high) if a.high > a.low else (a.low - 0.5, a.high + 0.5)
    edges = np.geomspace(lo, hi, _BINS + 1) if a.log and lo > 0 else np.linspace(lo, hi, _BINS + 1)
    cell = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, _BINS - 1)
    return edges, np.where(np.isnan(x), -1, cell), x


def heat_map(
    study_trials: pd.DataFrame, x_axis: Axis, y_axis: Axis, label: str, path: Path
) -> Path:
    """Mean objective of the complete trials per cell of two parameters (blank: no trial),
    with each trial on top as a dot coloured alike (grey x: pruned/failed)."""
    values, ok = objective(study_trials), complete(study_trials).to_numpy()
    x_edges, x_cell, x = _cells(x_axis, study_trials[PARAM_PREFIX + x_axis.name])
    y_edges, y_cell, y = _cells(y_axis, study_trials[PARAM_PREFIX + y_axis.name])
    grid = np.full((len(y_edges) - 1, len(x_edges) - 1), np.nan)
    placed = ok & (x_cell >= 0) & (y_cell >= 0)
    for j, i in set(zip(y_cell[placed], x_cell[placed], strict=True)):
        grid[j, i] = values.to_numpy()[placed & (y_cell == j) & (x_cell == i)].mean()
    norm = _norm(values[ok]) if ok.any() else Normalize(0, 1)
    fig = _figure(6.4, 4.8)
    ax = fig.subplots()
    ax.pcolormesh(
        x_edges, y_edges, np.ma.masked_invalid(grid), cmap="viridis", norm=norm, alpha=0.55
    )
    rng = np.random.default_rng(0)
    jx = rng.uniform(-0.12, 0.12, len(x)) if x_axis.categorical else 0
    jy = rng.uniform(-0.12, 0.12, len(y)) if y_axis.categorical else 0
    ax.scatter(
        (x + jx)[ok],
        (y + jy)[ok],
        c=values[ok],
        cmap="viridis",
        norm=norm,
        s=36,
        edgecolors="k",
        linewidths=0.6,
        zorder=3,
        gid="trial",
    )
    if (~ok).any():
        ax.scatter((x + jx)[~ok], (y + jy)[~ok], marker="x", color=GREY, s=30, zorder=2, gid="grey")
    for a, set_scale, set_ticks, set_label in (
        (x_axis, ax.set_xscale, ax.set_xticks, ax.set_xlabel),
        (y_axis, ax.set_yscale, ax.set_yticks, ax.set_ylabel),
    ):
        if a.categorical:
            set_ticks(range(len(a.levels)), a.levels, fontsize=8)
        elif a.log and a.low > 0:
            set_scale("log")
        set_label(a.name + (" (log)" if a.log else ""))
    ax.set_title(f"mean objective by {x_axis.name} and {y_axis.name}", fontsize=10)
    _colorbar(fig, ax, norm, label)
    return _save(fig, path)


def timeline(line: Timeline, path: Path) -> Path:
    """One row per slot, a bar per trial from its start to its end coloured by its state."""
    bars = line.bars
    fig = _figure(9, max(2.2, 0.45 * len(line.labels) + 1.4))
    ax = fig.subplots()
    for _, bar in bars.iterrows():
        color = STATE_COLORS.get(str(bar["state"]).upper(), GREY)
        ax.barh(
            bar["row"],
            bar["end"] - bar["start"],
            left=bar["start"],
            height=0.7,
            color=color,
            edgecolor="k",
            linewidth=0.5,
            gid=str(bar["state"]).upper(),
        )
        if len(bars) <= 60:
            mid = (bar["start"] + bar["end"]) / 2
            ax.text(mid, bar["row"], str(bar["number"]), ha="center", va="center", fontsize=7)
    ax.set_yticks(range(len(line.labels)), line.labels, fontsize=8)
    ax.set_ylim(len(line.labels) - 0.5, -0.5)
    ax.set_xlim(0, max(line.span, 1e-9))
    ax.set_xlabel("seconds since the first trial started")
    ax.grid(alpha=0.3, axis="x")
    present = [s for s in STATE_COLORS if (bars["state"].str.upper() == s).any()]
    others = set(bars["state"].str.upper()) - set(STATE_COLORS)
    handles = [Patch(color=STATE_COLORS[s], label=s) for s in present]
    handles += [Patch(color=GREY, label=s) for s in sorted(others)]
    ax.legend(
        handles=handles, fontsize=8, loc="upper right", bbox_to_anchor=(1, 1.25), ncol=len(handles)
    )
    ax.set_title("trials by slot (gaps: idle)", fontsize=10, loc="left")
    return _save(fig, path)
