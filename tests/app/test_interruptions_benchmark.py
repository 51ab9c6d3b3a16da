"""benchmarks/interruptions.py in smoke mode on tiny data: real sweep workers killed with
SIGKILL and started again, before (trainer.resume=false) and after; the checkpoint's cost."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

pytestmark = pytest.mark.slow  # ~6 worker starts per side: make test-all


def test_interruptions_script_measures_both_sides(tmp_path):
    out = tmp_path / "interruptions.json"
    cmd = [sys.executable, str(REPO_ROOT / "benchmarks" / "interruptions.py"), "--smoke"]
    cmd += ["--work", str(tmp_path / "work"), "--json", str(out)]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    epochs = result["settings"]["epochs"]
    for side, resume in (("before", False), ("after", True)):
        r = result["sides"][side]
        assert r["problems"] == [] and r["resume"] is resume
        assert len(r["kills"]) == 2
        final = r["final_trial"]
        assert final["state"] == "COMPLETE" and final["epochs_run"] == epochs
        assert list(r["trial_states"].values()) == ["FAIL", "FAIL", "COMPLETE"]
        for kill in r["kills"]:
            assert kill["epochs_lost"] == kill["finished"] - kill["resumed_after"]
            assert kill["seconds_lost"] > 0
    assert all(k["resumed_after"] == 0 for k in result["sides"]["before"]["kills"])
    assert result["sides"]["before"]["final_trial"]["resumed_from"] == []
    assert result["sides"]["after"]["epochs_lost_max"] <= 1
    assert result["same_curve_both_sides"]  # continued or restarted: the same run on the CPU
    ck = result["checkpoint"]
    assert ck["repetitions"] == 20 and ck["save_s_median"] > 0 and ck["state_bytes"] > 0
    assert ck["ratio"] == pytest.approx(ck["save_s_median"] / ck["mean_epoch_s"], rel=3e-2)
    assert "target: checkpoint" in proc.stdout
