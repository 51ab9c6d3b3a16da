"""benchmarks/budget.sh in smoke mode: both sides (ours: phase1/phase2, plugin_like)
run phase 1 and phase 2 under a tiny time budget, then the final stage, on tiny data; the
studies come back as CSV and summary.json holds every figure the real run reports."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pandas as pd
import pytest

from conftest import ENV_ROOT, REPO_ROOT

FIELDS = (
    "final_test_mean",
    "final_test_seeds",
    "holdout_best",
    "wall_s",
    "trials",
    "epochs_trained",
)
STUDIES = {
    "ours": ("phase1", "phase2", "final"),
    "plugin_like": ("phase1_plugin_like", "phase2_plugin_like", "final"),
}


@pytest.mark.slow
def test_budget_script_smoke(tmp_path, tiny_data_factory):
    out, work = tmp_path / "out", tmp_path / "work"
    env = os.environ.copy()
    env.update(
        {
            ENV_ROOT: str(tiny_data_factory()),
            "PY": sys.executable,
            "OUT": str(out),
            "WORK": str(work),
            "PHASE_S": "8",
            "EPOCHS_MF": "3",
            "EPOCHS_FLAT": "2",
            "MIN_RESOURCE": "1",
            "FINAL_JOBS": "1",
            "SEEDS": "choice(1, 2)",
            "EXTRA": "data.holdout_size=128",
        }
    )
    proc = subprocess.run(
        ["bash", str(REPO_ROOT / "benchmarks" / "budget.sh")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == set(STUDIES)
    for side, studies in STUDIES.items():
        s = summary[side]
        assert all(s[k] is not None for k in FIELDS), (side, s)
        assert s["final_seeds"] == [1, 2] and len(s["final_test_seeds"]) == 2
        assert all(0.0 <= v <= 1.0 for v in s["final_test_seeds"])
        assert math.isclose(s["final_test_mean"], sum(s["final_test_seeds"]) / 2, abs_tol=1e-4)
        assert 0.0 < s["holdout_best"] <= 1.0
        stages = s["stages"]
        assert s["trials"] == stages["phase1"]["trials"] + stages["phase2"]["trials"] >= 2
        assert s["epochs_trained"] == sum(st["epochs_trained"] for st in stages.values()) > 0
        assert math.isclose(s["wall_s"], sum(st["wall_s"] for st in stages.values()), abs_tol=0.2)
        assert stages["phase1"]["ended"] == stages["phase2"]["ended"] == "timeout"
        assert stages["final"]["ended"] == "grid" and stages["final"]["running"] == 0
        assert s["holdout_best"] == stages["phase2"]["best_value"]
        # the caps: ours trains up to EPOCHS_MF, plugin_like every complete trial EPOCHS_FLAT
        for name in studies:
            table = pd.read_csv(out / side / f"{name}.csv")
            assert (
                len(table) == stages[("phase1", "phase2", "final")[studies.index(name)]]["trials"]
            )
        phase1 = pd.read_csv(out / side / f"{studies[0]}.csv")
        runs = phase1["user_attrs_epochs_run"]
        assert runs.max() <= (3 if side == "ours" else 2)
        if side == "plugin_like":
            complete = phase1[phase1["state"] == "COMPLETE"]["user_attrs_epochs_run"]
            assert (complete == 2).all() and len(complete) > 0
