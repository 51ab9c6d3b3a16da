"""The report's search views of one Optuna sweep: what each shows (one sentence), how to draw
it, or why it cannot be drawn.

The generic views are Optuna's own (``optuna.visualization.matplotlib``) on the stored study,
so axes, categories and log scales come from the distributions every trial carries: the
optimisation history, the objective against each parameter (slices), parallel coordinates and
the contour of the two most important parameters. The timeline of the slots and their
utilisation is ours (``timeline.py``): Optuna has no view of slots.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from analysis.readers import dig, find_job_dirs, read_yaml
from analysis.sweep_info import SweepInfo
from analysis.timeline import build_timeline, draw_timeline
from lab_optuna import names


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


# ---------------------------------------------------------------- the stored study
def _hydra_node(info: SweepInfo) -> dict[str, Any]:
    """``hydra`` of the sweep: ``multirun.yaml``'s, or else the first job's ``hydra.yaml``."""
    if info.sweeper_config:
        return {"sweeper": info.sweeper_config, "runtime": {}}
    try:
        jobs = find_job_dirs(info.path)
    except OSError:
        return {}
    node = dig(read_yaml(jobs[0] / ".hydra" / "hydra.yaml"), "hydra") if jobs else None
    return node if isinstance(node, dict) else {}


def _absolute(url: str, cwd: str | None) -> str:
    """A relative ``sqlite:///`` or ``journal:///`` path made absolute against ``cwd`` (the
    directory the sweep ran from)."""
    for scheme in ("sqlite:///", "journal:///"):
        if url.startswith(scheme) and not url[len(scheme) :].startswith("/") and cwd:
            return scheme + str(Path(cwd) / url[len(scheme) :])
    return url


def stored_study(info: SweepInfo) -> tuple[optuna.Study | None, str | None]:
    """(the sweep's study loaded from its storage, None) or (None, why it cannot be)."""
    hydra = _hydra_node(info)
    url = dig(hydra, "sweeper.storage")
    name = info.study_name or dig(hydra, "sweeper.study_name")
    if not url:
        return None, "the study was kept in memory (hydra.sweeper.storage: null)"
    url = _absolute(str(url), dig(hydra, "runtime.cwd"))
    try:
        if url.startswith("journal:///"):
            from optuna.storages.journal import JournalFileBackend

            path = url[len("journal:///") - 1 :]
            if not Path(path).is_file():
                return None, f"its journal {path} is not there"
            storage: Any = optuna.storages.JournalStorage(JournalFileBackend(path))
        else:
            storage = url
            if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).is_file():
                return None, f"its database {url[len('sqlite:///') :]} is not there"
        return optuna.load_study(study_name=str(name), storage=storage), None
    except Exception as e:  # noqa: BLE001 - a report never fails on one sweep's storage
        return None, f"its study {name!r} could not be loaded ({type(e).__name__})"


def most_important(
    importances: pd.DataFrame | None, params: list[str], n: int = 2
) -> tuple[list[str], bool]:
    """The ``n`` most important of ``params`` by an importances table (``param,
    importance``), topped up in ``params`` order; True when the table chose them all."""
    ranked: list[str] = []
    if importances is not None and not importances.empty:
        table = importances.sort_values("importance", ascending=False, kind="stable")
        ranked = [str(p) for p in table["param"] if str(p) in params]
    chosen = list(dict.fromkeys(ranked))[:n]
    from_table = len(chosen) == n
    chosen += [p for p in params if p not in chosen][: n - len(chosen)]
    return chosen, from_table


# ---------------------------------------------------------------- drawing Optuna's plots
def _draw(plot: str, study: optuna.Study, path: Path, **kw: Any) -> Path:
    """``optuna.visualization.matplotlib.<plot>(study, **kw)`` saved as ``path``; the first
    objective of a multi-objective study."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as vis

    if len(study.directions) > 1:
        kw.update(target=lambda t: t.values[0], target_name="objective 0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = getattr(vis, plot)(study, **kw)
    fig = ax.flat[0].figure if hasattr(ax, "flat") else ax.figure
    fig.set_size_inches(min(max(6.0, fig.get_figwidth()), 15.0), 4.6)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


#: Optuna's views: stem -> (title, its plot in optuna.visualization.matplotlib, sentence).
OPTUNA_VIEWS = {
    "history": (
        "optimisation history",
        "plot_optimization_history",
        "Optimisation history (Optuna's): each complete trial's objective by trial number, "
        "and the best so far as a line.",
    ),
    "slices": (
        "objective vs parameter",
        "plot_slice",
        "Slices (Optuna's): the objective of each complete trial against each searched "
        "parameter (most important first), coloured by trial number; log axes where "
        "searched log.",
    ),
    "parallel": (
        "parallel coordinates",
        "plot_parallel_coordinate",
        "Parallel coordinates (Optuna's): each line is one complete trial across the "
        "objective and the searched parameters (most important first), each axis as the "
        "trials' distributions declare it (log where searched log, categories as levels).",
    ),
    "contour": (
        "objective over the two most important parameters",
        "plot_contour",
        "Contour (Optuna's) of the objective over the two most important parameters "
        "(`{x}`, `{y}`, {how}), interpolated between the complete trials (dots), log axes "
        "where searched log.",
    ),
}


def _optuna_views(study: optuna.Study | None, why: str | None, info: SweepInfo) -> list[View]:
    """Optuna's views of the study, or why each is skipped. The complete trials are read from
    the storage once, into an in-memory copy that every plot then reads."""
    searched: list[str] = []
    if study is not None:
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if done:
            level = optuna.logging.get_verbosity()
            optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" line
            try:
                study = optuna.create_study(directions=study.directions)
            finally:
                optuna.logging.set_verbosity(level)
            study.add_trials(done)
            searched = list(dict.fromkeys(p for t in done for p in t.distributions))
        else:
            study, why = None, "no complete trial"
    ranked = most_important(info.importances, searched, len(searched))[0]
    few = f"{len(searched)} searched parameter(s) in complete trials; it needs 2"
    pair = why or (few if len(searched) < 2 else None)  # parallel and contour need 2 params
    x, y, from_table = "", "", False
    if pair is None:  # the contour's two parameters
        (x, y), from_table = most_important(info.importances, searched)
    imp = names.IMPORTANCES_CSV
    how = f"by {imp}" if from_table else f"the first two: no {imp}"
    kwargs = {
        "slices": {"params": ranked},
        "parallel": {"params": ranked},
        "contour": {"params": [x, y]},
    }
    views = []
    for stem, (title, plot, sentence) in OPTUNA_VIEWS.items():
        view = View(stem, title, skip=pair if stem in ("parallel", "contour") else why)
        if view.skip is None and study is not None:
            view.sentence = sentence.format(x=x, y=y, how=how)
            view.draw = partial(_draw, plot, study, **kwargs.get(stem, {}))
        views.append(view)
    return views


def timeline_view(info: SweepInfo) -> View:
    """The trials as bars on their slots' rows, and the slot utilisation under it."""
    view = View("timeline", "timeline of the trials")
    line = build_timeline(info.study_trials)
    if line is None:
        view.skip = f"no trial with both datetime_start and datetime_complete in {names.TRIALS_CSV}"
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
    view.draw = partial(draw_timeline, line)
    untimed = f"; {line.untimed} trial(s) without both timestamps not shown" if line.untimed else ""
    view.note = (
        f"Slot utilisation: **{line.utilisation:.2f}** = busy {line.busy:.1f} trial-s / "
        f"({len(line.labels)} row(s) x {line.span:.1f} s span){untimed}."
    )
    return view


def views_of(info: SweepInfo) -> list[View]:
    """The search views of one sweep, in report order."""
    return [*_optuna_views(*stored_study(info), info), timeline_view(info)]
