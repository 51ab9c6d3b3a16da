"""The report's search views on hand-made tables: parallel coordinates, the heat map of the
two most important parameters and the trials' timeline with its slot utilisation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.figure import Figure

from analysis import search_plots, write_report
from analysis.search_space import axes, declared_space, most_important
from analysis.sweep_info import SweepInfo
from analysis.timeline import assign_rows, build_timeline, utilisation
from analysis.views import heat_map_view, parallel_view, timeline_view

T0 = pd.Timestamp("2026-01-01 12:00:00")
SPACE = {"optimizer": "choice(sgd, adam)", "lr": "tag(log, interval(0.0001, 1.0))"}


def stamp(seconds: float) -> str:
    return str(T0 + pd.Timedelta(seconds=seconds))


def study_trials(
    rows: list[tuple[int, str, float | None, str, float, float, float]],
) -> pd.DataFrame:
    """``(number, state, value, optimizer, lr, start_s, end_s)`` rows as study_trials.csv."""
    return pd.DataFrame(
        {
            "number": [r[0] for r in rows],
            "state": [r[1] for r in rows],
            "value": [r[2] for r in rows],
            "params_optimizer": [r[3] for r in rows],
            "params_lr": [r[4] for r in rows],
            "datetime_start": [stamp(r[5]) for r in rows],
            "datetime_complete": [stamp(r[6]) for r in rows],
        }
    )


TABLE = study_trials(
    [
        (0, "COMPLETE", 0.7, "sgd", 0.001, 0, 10),
        (1, "COMPLETE", 0.9, "adam", 0.01, 5, 15),
        (2, "PRUNED", None, "sgd", 0.1, 15, 20),
        (3, "FAIL", None, "adam", 0.0001, 22, 30),
    ]
)


def info_for(table: pd.DataFrame | None, importances: pd.DataFrame | None = None) -> SweepInfo:
    return SweepInfo(
        path=Path("/nonexistent"),
        label="s",
        sweeper_config={"params": SPACE, "direction": "maximize"},
        study_trials=table,
        importances=importances,
        is_optuna=True,
    )


class Saved:
    """The real figures the views save (``Figure.savefig`` still runs)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.figures: list[Any] = []
        original = Figure.savefig

        def savefig(fig: Any, *args: Any, **kwargs: Any) -> Any:
            self.figures.append(fig)
            return original(fig, *args, **kwargs)

        monkeypatch.setattr(Figure, "savefig", savefig)


# --------------------------------------------------------------------------- timeline


def test_overlapping_trials_go_on_different_rows() -> None:
    assert assign_rows([(0, 10), (5, 15), (15, 20), (22, 30)]) == [0, 1, 0, 0]
    assert assign_rows([(0, 4), (1, 3), (2, 5)]) == [0, 1, 2]
    assert assign_rows([(5, 6), (0, 5)]) == [0, 0]  # one starts when the other ends


def test_utilisation_is_busy_over_slots_times_span() -> None:
    # busy 10 + 10 + 5 + 8 = 33 s over 2 slots x 30 s
    assert utilisation([(0, 10), (5, 15), (15, 20), (22, 30)], 2) == pytest.approx(33 / 60)
    assert utilisation([(0, 10), (10, 20)], 1) == pytest.approx(1.0)
    assert utilisation([], 2) == 0.0


def test_timeline_of_a_study_table() -> None:
    line = build_timeline(TABLE)
    assert line is not None and not line.recorded_slots and line.untimed == 0
    assert list(line.bars["row"]) == [0, 1, 0, 0]
    assert line.labels == ["slot 0", "slot 1"]
    assert list(line.bars["state"]) == ["COMPLETE", "COMPLETE", "PRUNED", "FAIL"]
    assert line.busy == pytest.approx(33) and line.span == pytest.approx(30)
    assert line.utilisation == pytest.approx(33 / 60)


def test_timeline_uses_recorded_slots_and_hosts() -> None:
    table = TABLE.assign(user_attrs_slot=[1, 0, 1, 1])
    line = build_timeline(table)
    assert line is not None and line.recorded_slots
    assert list(line.bars["row"]) == [1, 0, 1, 1] and line.labels == ["slot 0", "slot 1"]
    hosts = TABLE.assign(user_attrs_host=["a:1", "b:2", "a:1", "b:3"])
    line = build_timeline(hosts)
    assert line is not None
    assert line.labels == ["a slot 0", "b slot 0"]  # per machine, greedily within each
    assert list(line.bars["row"]) == [0, 1, 0, 1]


def test_timeline_without_timestamps_is_skipped_with_a_reason() -> None:
    untimed = TABLE.assign(datetime_complete=None)
    assert build_timeline(untimed) is None
    view = timeline_view(info_for(untimed))
    assert view.draw is None and "datetime_complete" in str(view.skip)
    running = TABLE.copy()
    running.loc[3, "datetime_complete"] = None
    line = build_timeline(running)
    assert line is not None and line.untimed == 1 and len(line.bars) == 3


def test_timeline_bars_are_coloured_by_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = Saved(monkeypatch)
    line = build_timeline(TABLE)
    assert line is not None
    search_plots.timeline(line, tmp_path / "t.png")
    ax = saved.figures[0].axes[0]
    bars = {p.get_gid(): p for p in ax.patches if p.get_gid()}
    assert set(bars) == {"COMPLETE", "PRUNED", "FAIL"}
    for state, color in search_plots.STATE_COLORS.items():
        assert np.allclose(bars[state].get_facecolor()[:3], _rgb(color))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["COMPLETE", "PRUNED", "FAIL"]
    view = timeline_view(info_for(TABLE))
    assert "Slot utilisation: **0.55** = busy 33.0 trial-s / (2 row(s) x 30.0 s span)" in str(
        view.note
    )


def _rgb(color: str) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb

    return to_rgb(color)


# --------------------------------------------------------------------------- axes


def test_axes_follow_the_declared_space() -> None:
    space = declared_space({"params": {**SPACE, "batch": "choice(32, 64, 128)", "bad": "x("}})
    table = TABLE.assign(params_batch=[128.0, 32.0, 64.0, 32.0])
    opt, lr, batch = axes(table, space, ["optimizer", "lr", "batch"])
    assert opt.categorical and opt.levels == ["sgd", "adam"]
    assert list(opt.scale(table["params_optimizer"])) == [0, 1, 0, 1]
    assert not lr.categorical and lr.log and (lr.low, lr.high) == (0.0001, 1.0)
    assert lr.scale(pd.Series([0.0001, 0.01, 1.0])) == pytest.approx([0, 0.5, 1])
    assert batch.categorical and batch.levels == ["32", "64", "128"]  # CSV's 128.0 is 128
    assert list(batch.scale(table["params_batch"])) == [1, 0, 0.5, 0]
    unknown = axes(table, {}, ["lr"])[0]
    assert not unknown.log and (unknown.low, unknown.high) == (0.0001, 0.1)


def test_heat_map_picks_the_two_most_important_params() -> None:
    imp = pd.DataFrame({"param": ["other", "optimizer", "lr"], "importance": [0.5, 0.2, 0.3]})
    assert most_important(imp, ["optimizer", "lr"]) == (["lr", "optimizer"], True)
    assert most_important(None, ["optimizer", "lr", "x"]) == (["optimizer", "lr"], False)
    assert most_important(imp.head(2), ["optimizer", "lr"]) == (["optimizer", "lr"], False)
    view = heat_map_view(info_for(TABLE, imp))
    assert "(`lr`, `optimizer`, by importances.csv)" in view.sentence
    view = heat_map_view(info_for(TABLE))
    assert "(`optimizer`, `lr`, the first two searched: no importances.csv)" in view.sentence


def test_heat_map_cells_hold_the_mean_objective(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = Saved(monkeypatch)
    table = study_trials(
        [
            (0, "COMPLETE", 0.6, "sgd", 0.001, 0, 1),
            (1, "COMPLETE", 0.8, "sgd", 0.001, 1, 2),
            (2, "COMPLETE", 0.9, "adam", 0.5, 2, 3),
            (3, "PRUNED", None, "adam", 0.001, 3, 4),
        ]
    )
    opt, lr = axes(table, declared_space({"params": SPACE}), ["optimizer", "lr"])
    search_plots.heat_map(table, opt, lr, "objective", tmp_path / "h.png")
    ax = saved.figures[0].axes[0]
    mesh = next(c for c in ax.collections if hasattr(c, "get_array") and c.get_array().ndim == 2)
    cells = mesh.get_array()
    filled = sorted(float(v) for v in cells.compressed())
    assert filled == pytest.approx([0.7, 0.9])  # (0.6 + 0.8) / 2 in one cell; the pruned: none
    assert ax.get_yscale() == "log"
    grey = [c for c in ax.collections if c.get_gid() == "grey"]
    assert len(grey) == 1 and len(grey[0].get_offsets()) == 1


# --------------------------------------------------------------------------- parallel


def test_parallel_coordinates_grey_pruned_and_failed_underneath(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = Saved(monkeypatch)
    view = parallel_view(info_for(TABLE))
    assert view.draw is not None and view.draw(tmp_path / "p.png").stat().st_size > 1000
    ax = saved.figures[0].axes[0]
    grey = [line for line in ax.get_lines() if line.get_gid() == "grey"]
    coloured = [line for line in ax.get_lines() if line.get_gid() == "trial"]
    assert len(grey) == 2 and len(coloured) == 2
    assert all(g.get_zorder() < c.get_zorder() for g in grey for c in coloured)
    assert coloured[0].get_color() != coloured[1].get_color()
    # the best trial (0.9, adam, lr 0.01) is drawn last, at the top of the objective axis
    assert list(coloured[-1].get_ydata()) == pytest.approx([1, 1, 0.5])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["objective", "optimizer", "lr"]
    assert saved.figures[0].axes[1].get_ylabel() == "objective (maximize)"  # the colorbar


def test_views_are_skipped_with_one_line(tmp_path: Path) -> None:
    assert parallel_view(info_for(None)).skip == "no study_trials.csv"
    one = TABLE.drop(columns=["params_lr"])
    assert "1 searched parameter(s)" in str(parallel_view(info_for(one)).skip)
    assert "1 searched parameter(s)" in str(heat_map_view(info_for(one)).skip)
    sweep = tmp_path / "s"
    job = sweep / "trial_0" / ".hydra"
    job.mkdir(parents=True)
    (job / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"sweeper": {"params": SPACE}}}))
    (job.parent / "trial.json").write_text('{"number": 0, "study": "s", "state": "COMPLETE"}')
    one.drop(columns=["datetime_start"]).to_csv(sweep / "study_trials.csv", index=False)
    text = write_report(sweep).report.read_text()
    assert "## Search views" in text
    assert "_Parallel coordinates: not drawn (1 searched parameter(s); it needs 2)._" in text
    assert "_Timeline of the trials: not drawn (no trial with both datetime_start" in text
