"""benchmarks/compare_searches.py: the report's statistics on a hand-made summary, and (slow) the
smoke mode end to end: two sides over two paired seeds on tiny data, resumable, rendered."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "benchmarks" / "compare_searches.py"
KEYS = {"final_test", "holdout_best", "wall_s", "trials", "epochs", "curve"}


def load_compare():
    spec = importlib.util.spec_from_file_location("compare_searches", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["compare_searches"] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


def entry(final: float, curve: list[list[float]]) -> dict:
    return {
        "final_test": final,
        "holdout_best": curve[-1][1],
        "wall_s": 10.0,
        "trials": 3,
        "epochs": 9,
        "curve": curve,
    }


def test_report_statistics_on_a_hand_made_summary(tmp_path):
    compare = load_compare()
    a = {
        str(s): entry(v, [[1.0, 0.5], [5.0, v]]) for s, v in enumerate([0.90, 0.92, 0.94, 0.96], 1)
    }
    b = {
        str(s): entry(v, [[2.0, 0.4], [6.0, v]]) for s, v in enumerate([0.91, 0.90, 0.93, 0.96], 1)
    }
    table, figures = compare.report_table({"ours": a, "random": b})
    st = figures["stats"]["ours"]
    assert st["n"] == 4 and st["median"] == pytest.approx(0.93)
    assert (st["q1"], st["q3"]) == (pytest.approx(0.915), pytest.approx(0.945))
    assert st["iqr"] == pytest.approx(0.03)
    # ours wins seeds 2 and 3, loses 1, ties 4 (half): 2.5 / 4
    assert figures["pairs"]["ours>random"]["win_rate"] == pytest.approx(0.625)
    assert figures["pairs"]["random>ours"]["win_rate"] == pytest.approx(0.375)
    assert figures["pairs"]["ours>random"]["mean_diff"] == pytest.approx(0.02 / 4)
    sd = np.std([-0.01, 0.02, 0.01, 0.0], ddof=1)  # the paired differences, seeds 1-4
    k = 2.8 if importlib.util.find_spec("scipy") is None else 3.182 + 0.978  # t_.975 + t_.8, 3 df
    assert figures["pairs"]["ours>random"]["detectable_diff"] == pytest.approx(k * sd / 2, rel=1e-3)
    assert "| ours | 4 | 0.9300 | 0.9150–0.9450 | — | 62% of 4" in table
    # the anytime median: nothing before the first trial, then the step function
    med, lo, hi = compare.anytime(
        [e["curve"] for e in a.values()], np.array([0.0, 1.0, 5.0]), np.random.default_rng(0)
    )
    assert np.isnan(med[0]) and med[1] == pytest.approx(0.5) and med[2] == pytest.approx(0.93)
    assert lo[2] <= med[2] <= hi[2]
    (tmp_path / "summary.json").write_text(json.dumps({"proxy": {"ours": a, "random": b}}))
    png, md = compare.report(tmp_path)
    assert png.stat().st_size > 0 and "## proxy" in md.read_text()


def run_harness(out, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def check_entries(side: dict, seeds: set[str]) -> None:
    assert set(side) == seeds
    for e in side.values():
        assert KEYS <= set(e) and 0.0 <= e["final_test"] <= 1.0 and e["trials"] >= 1
        times = [t for t, _ in e["curve"]]
        bests = [v for _, v in e["curve"]]
        assert times == sorted(times) and bests == sorted(bests)


def test_compare_smoke_one_search(tmp_path):
    """The harness on tiny data, one seed of ours (phase1 -> phase2 -> final as they ship):
    its summary entry, a rerun that skips it, and the report."""
    run_harness(tmp_path, "--smoke", "--seeds", "1", "--sides", "ours", "--phase-s", "2")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary) == {"smoke"} and set(summary["smoke"]) == {"ours"}
    check_entries(summary["smoke"]["ours"], {"1"})
    rerun = run_harness(tmp_path, "--smoke", "--seeds", "1", "--sides", "ours")
    assert "done, skipped" in rerun.stdout
    run_harness(tmp_path, "--report")
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert "| ours | 1 |" in (tmp_path / "report.md").read_text()


@pytest.mark.slow
def test_compare_smoke_two_sides_two_paired_seeds(tmp_path):
    run_harness(tmp_path, "--smoke", "--phase-s", "3")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary) == {"smoke"} and set(summary["smoke"]) == {"ours", "plugin_like"}
    for side in summary["smoke"].values():
        check_entries(side, {"1", "2"})
    assert "done, skipped" in run_harness(tmp_path, "--smoke").stdout  # resumable
    run_harness(tmp_path, "--report")
    assert "| ours | 2 | " in (tmp_path / "report.md").read_text()
    assert "wins vs plugin_like" in (tmp_path / "report.md").read_text()
