"""The report's search views: Optuna's plots on a real stored study (history, slices, parallel
coordinates, contour) and our timeline of the slots with its utilisation on hand-made tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from matplotlib.figure import Figure
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from analysis import write_report
from analysis.search_views import most_important, timeline_view, views_of
from analysis.sweep_info import SweepInfo
from analysis.timeline import STATE_COLORS, assign_rows, build_timeline, draw_timeline, utilisation

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
    draw_timeline(line, tmp_path / "t.png")
    ax = saved.figures[0].axes[0]
    bars = {p.get_gid(): p for p in ax.patches if p.get_gid()}
    assert set(bars) == {"COMPLETE", "PRUNED", "FAIL"}
    for state, color in STATE_COLORS.items():
        assert np.allclose(bars[state].get_facecolor()[:3], _rgb(color))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["COMPLETE", "PRUNED", "FAIL"]
    view = timeline_view(info_for(TABLE))
    assert "Slot utilisation: **0.55** = busy 33.0 trial-s / (2 row(s) x 30.0 s span)" in str(
        view.note
    )


def _rgb(color: str) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb

    return to_rgb(color)


# --------------------------------------------------------------------------- Optuna's views


def stored(tmp_path: Path, n_params: int = 2, complete: bool = True) -> SweepInfo:
    """A real SQLite study of 6 trials (4 complete, a pruned and a failed one) over a log
    ``lr`` and a categorical ``optimizer``, and the SweepInfo of its sweep folder."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    db = tmp_path / "optuna.db"
    study = optuna.create_study(
        study_name="phase1", storage=f"sqlite:///{db}", direction="maximize"
    )
    dists = {
        "lr": FloatDistribution(1e-4, 1.0, log=True),
        "optimizer": CategoricalDistribution(["sgd", "adam"]),
    }
    dists = dict(list(dists.items())[:n_params])
    rows = [(0.001, "sgd", 0.6), (0.01, "adam", 0.9), (0.1, "sgd", 0.7), (0.5, "adam", 0.8)]
    for lr, opt, value in rows:
        params = {"lr": lr, "optimizer": opt}
        study.add_trial(
            optuna.trial.create_trial(
                params={k: params[k] for k in dists},
                distributions=dists,
                value=value if complete else None,
                state=TrialState.COMPLETE if complete else TrialState.PRUNED,
            )
        )
    for state in (TrialState.PRUNED, TrialState.FAIL):
        study.add_trial(
            optuna.trial.create_trial(params={}, distributions={}, state=state, value=None)
        )
    return SweepInfo(
        path=tmp_path,
        label="phase1",
        sweeper_config={"storage": f"sqlite:///{db}", "study_name": "phase1"},
        study_trials=TABLE,
        is_optuna=True,
        study_name="phase1",
    )


def test_optuna_views_are_drawn_from_the_stored_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = Saved(monkeypatch)
    info = stored(tmp_path)
    views = {v.stem: v for v in views_of(info)}
    assert list(views) == ["history", "slices", "parallel", "contour", "timeline"]
    for stem in ("history", "slices", "parallel", "contour"):
        view = views[stem]
        assert view.skip is None and view.sentence.count(".") >= 1
        data = view.draw(tmp_path / f"{stem}.png").read_bytes()  # type: ignore[misc]
        assert data.startswith(b"\x89PNG") and len(data) > 1000
    # the contour's axes come from the stored distributions: lr was searched log
    contour = saved.figures[3]
    assert {ax.get_xscale() for ax in contour.axes if ax.get_xlabel() == "lr"} == {"log"}


def test_the_two_most_important_params_lead() -> None:
    imp = pd.DataFrame({"param": ["other", "optimizer", "lr"], "importance": [0.5, 0.2, 0.3]})
    assert most_important(imp, ["optimizer", "lr"]) == (["lr", "optimizer"], True)
    assert most_important(None, ["optimizer", "lr", "x"]) == (["optimizer", "lr"], False)
    assert most_important(imp.head(2), ["optimizer", "lr"]) == (["optimizer", "lr"], False)


def test_contour_names_its_two_params_and_why(tmp_path: Path) -> None:
    info = stored(tmp_path)
    info.importances = pd.DataFrame({"param": ["optimizer", "lr"], "importance": [0.7, 0.3]})
    contour = {v.stem: v for v in views_of(info)}["contour"]
    assert "(`optimizer`, `lr`, by importances.csv)" in contour.sentence
    info.importances = None
    contour = {v.stem: v for v in views_of(info)}["contour"]
    assert "(`lr`, `optimizer`, the first two: no importances.csv)" in contour.sentence


def test_views_are_skipped_with_one_line(tmp_path: Path) -> None:
    memory = info_for(TABLE)  # storage: null
    skips = {v.stem: v.skip for v in views_of(memory)}
    assert skips["parallel"] == "the study was kept in memory (hydra.sweeper.storage: null)"
    assert skips["timeline"] is None
    gone = info_for(TABLE)
    gone.sweeper_config = {"storage": f"sqlite:///{tmp_path}/none.db", "study_name": "s"}
    assert views_of(gone)[0].skip == f"its database {tmp_path}/none.db is not there"
    one = stored(tmp_path / "one", n_params=1)
    skips = {v.stem: v.skip for v in views_of(one)}
    assert "1 searched parameter(s)" in str(skips["parallel"]) == str(skips["contour"])
    assert skips["history"] is None and skips["slices"] is None
    pruned = stored(tmp_path / "pruned", complete=False)
    assert {v.skip for v in views_of(pruned)[:4]} == {"no complete trial"}


def test_the_report_says_why_a_view_is_missing(tmp_path: Path) -> None:
    sweep = tmp_path / "s"
    job = sweep / "trial_0" / ".hydra"
    job.mkdir(parents=True)
    (job / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"sweeper": {"params": SPACE}}}))
    (job.parent / "trial.json").write_text('{"number": 0, "study": "s", "state": "COMPLETE"}')
    TABLE.drop(columns=["datetime_start"]).to_csv(sweep / "study_trials.csv", index=False)
    text = write_report(sweep).report.read_text()
    assert "## Search views" in text
    assert "_Parallel coordinates: not drawn (the study was kept in memory" in text
    assert "_Timeline of the trials: not drawn (no trial with both datetime_start" in text
