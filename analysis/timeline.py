"""Which slot ran which trial when: rows of a sweep's timeline and its slot utilisation.

Read from ``study_trials.csv`` (each trial's ``datetime_start`` and ``datetime_complete``).
A trial's row is its slot when the sweeper recorded one (``user_attrs_slot``, with
``hydra.sweeper.slot_overrides``); otherwise trials are put on rows greedily, in order of
start, so that two trials that overlapped in time are on different rows (as many rows as
trials ever ran at once). When trials ran on several machines (the host part of
``user_attrs_host``), each machine gets its own rows.

Utilisation is the one definition ``benchmarks/slots.py`` measures with: busy trial-seconds
/ (slots x span), span from the first trial's start to the last one's end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.patches import Patch

from analysis.plots import _figure, _save
from lab_optuna import names

START, COMPLETE = "datetime_start", "datetime_complete"
HOST_COLUMN = f"user_attrs_{names.HOST}"
#: ``lab_optuna.names.SLOT`` (the slot a trial ran in, with ``slot_overrides``).
SLOT_COLUMN = f"user_attrs_{names.SLOT}"
GREY = "0.65"
#: Bar colour of each Optuna trial state (others: grey).
STATE_COLORS = {"COMPLETE": "tab:green", "PRUNED": "tab:orange", "FAIL": "tab:red"}


def utilisation(intervals: Sequence[tuple[float, float]], slots: int) -> float:
    """Busy time / (``slots`` x span) of ``(start, end)`` intervals (seconds); 0 when empty."""
    if not intervals or slots < 1:
        return 0.0
    busy = sum(end - start for start, end in intervals)
    span = max(end for _, end in intervals) - min(start for start, _ in intervals)
    return busy / (slots * span) if span > 0 else 0.0


def assign_rows(intervals: Sequence[tuple[float, float]]) -> list[int]:
    """A row per interval, greedily in order of start: the lowest row free by then (a trial
    starting when another ends may take its row); overlapping intervals never share one."""
    order = sorted(range(len(intervals)), key=lambda i: (intervals[i][0], intervals[i][1]))
    ends: list[float] = []
    rows = [0] * len(intervals)
    for i in order:
        start, end = intervals[i]
        free = next((r for r, last in enumerate(ends) if last <= start), None)
        if free is None:
            free = len(ends)
            ends.append(end)
        ends[free] = end
        rows[i] = free
    return rows


@dataclass
class Timeline:
    """Bars (one per timed trial) and the rows they sit on."""

    #: ``number, state, start, end`` (seconds from the first start), ``row`` (0 = top).
    bars: pd.DataFrame
    #: A label per row, e.g. ``slot 0`` or ``node1 slot 1``.
    labels: list[str]
    #: True when the rows are the sweeper's own slots (``user_attrs_slot``).
    recorded_slots: bool
    #: Trials without both timestamps (still running, or never started).
    untimed: int

    @property
    def span(self) -> float:
        """Seconds from the first trial's start to the last one's end."""
        return float(self.bars["end"].max() - self.bars["start"].min())

    @property
    def busy(self) -> float:
        """Trial-seconds: the sum of the bars' lengths."""
        return float((self.bars["end"] - self.bars["start"]).sum())

    @property
    def utilisation(self) -> float:
        """Busy time / (rows x span): :func:`utilisation` over every row."""
        pairs = list(zip(self.bars["start"], self.bars["end"], strict=True))
        return utilisation(pairs, len(self.labels))


def _hosts(table: pd.DataFrame) -> pd.Series:
    """The machine of each trial (``host`` of ``host:pid``), ``""`` when not recorded."""
    if HOST_COLUMN not in table.columns:
        return pd.Series("", index=table.index)
    return table[HOST_COLUMN].map(lambda v: str(v).rsplit(":", 1)[0] if isinstance(v, str) else "")


def _slots(table: pd.DataFrame) -> pd.Series | None:
    """The recorded slot of every trial, or None unless every trial has one."""
    if SLOT_COLUMN not in table.columns:
        return None
    slots = pd.to_numeric(table[SLOT_COLUMN], errors="coerce")
    return slots.astype(int) if slots.notna().all() else None


def build_timeline(study_trials: pd.DataFrame | None) -> Timeline | None:
    """The timeline of a ``study_trials.csv`` table, or None without any timed trial."""
    if study_trials is None or not {START, COMPLETE} <= set(study_trials.columns):
        return None
    start = pd.to_datetime(study_trials[START], errors="coerce")
    end = pd.to_datetime(study_trials[COMPLETE], errors="coerce")
    timed = start.notna() & end.notna()
    if not timed.any():
        return None
    table = study_trials[timed]
    t0 = start[timed].min()
    bars = pd.DataFrame(
        {
            "number": table.get("number", pd.Series(range(len(table)), index=table.index)),
            "state": table.get("state", pd.Series("COMPLETE", index=table.index)).astype(str),
            "start": (start[timed] - t0).dt.total_seconds(),
            "end": (end[timed] - t0).dt.total_seconds(),
        }
    )
    hosts, slots = _hosts(table), _slots(table)
    several = hosts.nunique() > 1
    labels: list[str] = []
    bars["row"] = 0
    for host in sorted(hosts.unique()):
        mine = hosts == host
        if slots is not None:
            local = slots[mine]
            names = sorted(local.unique())
        else:
            pairs = list(zip(bars.loc[mine, "start"], bars.loc[mine, "end"], strict=True))
            local = pd.Series(assign_rows(pairs), index=bars.index[mine])
            names = sorted(local.unique())
        offset = len(labels)
        bars.loc[mine, "row"] = local.map({s: offset + i for i, s in enumerate(names)})
        prefix = f"{host} " if several else ""
        labels += [f"{prefix}slot {s}" for s in names]
    return Timeline(
        bars=bars.reset_index(drop=True),
        labels=labels,
        recorded_slots=slots is not None,
        untimed=int((~timed).sum()),
    )


def draw_timeline(line: Timeline, path: Path) -> Path:
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
