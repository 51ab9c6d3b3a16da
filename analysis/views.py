"""The report's search views of one Optuna sweep: what each shows (one sentence), how to
draw it, or why it cannot be drawn."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from analysis import search_plots
from analysis.search_space import (
    axes,
    complete,
    declared_space,
    most_important,
    searched,
    sweeper_config,
)
from analysis.sweep_info import SweepInfo
from analysis.timeline import build_timeline


@dataclass
class View:
    """One view: its file stem, alt text and sentence; ``draw(path)``, or ``skip`` why not."""

    stem: str
    title: str
    sentence: str = ""
    draw: Callable[[Path], Path] | None = None
    skip: str | None = None
    #: A line written under the image (the timeline's utilisation).
    note: str | None = None


def _label(config: dict) -> str:
    direction = config.get("direction")
    shown = f" ({direction})" if isinstance(direction, str) else ""
    return f"objective{shown}"


def _two_params_missing(table: pd.DataFrame | None, names: list[str]) -> str | None:
    """Why a view over two or more searched parameters cannot be drawn, or None."""
    if table is None:
        return "no study_trials.csv"
    if len(names) < 2:
        return f"{len(names)} searched parameter(s); it needs 2"
    return None


def parallel_view(info: SweepInfo) -> View:
    """Parallel coordinates over the searched parameters, coloured by the objective."""
    view = View("parallel", "parallel coordinates")
    table, names = info.study_trials, searched(info.study_trials)
    view.skip = _two_params_missing(table, names)
    if view.skip is None:
        config = sweeper_config(info)
        space = declared_space(config)
        order = most_important(info.importances, names, len(names))[0]
        view.sentence = (
            "Parallel coordinates: each line is one trial across the objective and the searched "
            "parameters (most important first; numeric axes scaled to their searched range, "
            "log where the search was log; categorical axes as evenly spaced levels), coloured "
            "by its objective; pruned and failed trials in grey underneath."
        )
        view.draw = partial(
            search_plots.parallel_coordinates, table, axes(table, space, order), _label(config)
        )
    return view


def heat_map_view(info: SweepInfo) -> View:
    """Mean objective over the plane of the two most important parameters."""
    view = View("contour", "objective over the two most important parameters")
    table, names = info.study_trials, searched(info.study_trials)
    view.skip = _two_params_missing(table, names)
    if view.skip is None and not complete(table).any():
        view.skip = "no complete trial with a value"
    if view.skip is None:
        (x, y), ranked = most_important(info.importances, names)
        config = sweeper_config(info)
        x_axis, y_axis = axes(table, declared_space(config), [x, y])
        why = "by importances.csv" if ranked else "the first two searched: no importances.csv"
        view.sentence = (
            f"Heat map of the two most important parameters (`{x}`, `{y}`, {why}): each cell "
            "is the mean objective of the complete trials in it (blank: none), each dot a "
            "trial coloured alike, a grey x a pruned or failed trial."
        )
        view.draw = partial(search_plots.heat_map, table, x_axis, y_axis, _label(config))
    return view


def timeline_view(info: SweepInfo) -> View:
    """The trials as bars on their slots' rows, and the slot utilisation under it."""
    view = View("timeline", "timeline of the trials")
    line = build_timeline(info.study_trials)
    if line is None:
        view.skip = "no trial with both datetime_start and datetime_complete in study_trials.csv"
        return view
    rows = (
        "its slot as the sweeper recorded it (`slot`)"
        if line.recorded_slots
        else "assigned greedily by start time so that trials that overlapped are on different rows"
    )
    view.sentence = (
        f"Timeline: one row per slot ({rows}; per machine when several ran trials), each trial "
        "a bar from its start to its end coloured by its state; gaps are idle slot time."
    )
    view.draw = partial(search_plots.timeline, line)
    untimed = f"; {line.untimed} trial(s) without both timestamps not shown" if line.untimed else ""
    view.note = (
        f"Slot utilisation: **{line.utilisation:.2f}** = busy {line.busy:.1f} trial-s / "
        f"({len(line.labels)} row(s) x {line.span:.1f} s span){untimed}."
    )
    return view


def views_of(info: SweepInfo) -> list[View]:
    """The three search views of one sweep, in report order."""
    return [parallel_view(info), heat_map_view(info), timeline_view(info)]
