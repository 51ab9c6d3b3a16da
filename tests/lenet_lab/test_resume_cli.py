"""A run continues after its last finished epoch, from the command line: killed (SIGKILL),
Ctrl-C, SIGTERM, a state of another config (one line, exit 2)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_resume import STATEFUL, rows, saved_epoch

from conftest import ENV_ROOT, REPO_ROOT
from lenet_lab import resume
from lenet_lab.record import read_summary

EPOCHS = 6


@pytest.fixture(scope="module")
def data_root(tiny_data_factory) -> Path:
    return tiny_data_factory(n_train=2048, n_test=256)  # epochs long enough to kill one


def start(data_root: Path, out: Path, *overrides: str) -> subprocess.Popen:
    env = {**os.environ, ENV_ROOT: str(data_root)}
    cmd = [sys.executable, "train.py", *overrides, f"hydra.run.dir={out}"]
    return subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(data_root: Path, out: Path, *overrides: str) -> str:
    proc = start(data_root, out, *overrides)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output[-3000:]
    return output


def wait_for_epoch(out: Path, epoch: int, proc: subprocess.Popen) -> None:
    """Until the run's saved state holds ``epoch`` finished epochs."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        if saved_epoch(out) >= epoch:
            return
        time.sleep(0.02)
    raise AssertionError(f"epoch {epoch} never finished")


def weights(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, weights_only=True)
    return state["model"] if "model" in state else state


def test_a_killed_run_continues_to_the_uninterrupted_result(tmp_path, data_root):
    overrides = (*STATEFUL, f"trainer.epochs={EPOCHS}")
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    finish(data_root, whole, *overrides)
    proc = start(data_root, cut, *overrides)
    wait_for_epoch(cut, 3, proc)
    proc.kill()  # SIGKILL: no handler runs, the process is gone mid-epoch
    proc.wait()
    assert read_summary(cut) is None or read_summary(cut)["epochs_run"] < EPOCHS
    output = finish(data_root, cut, *overrides)
    assert "continuing the run saved in" in output
    assert rows(cut) == rows(whole)  # every metric of every epoch, to the last digit
    for name in (resume.STATE_FILE, "best.pt"):
        a, b = weights(whole / name), weights(cut / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    summary = read_summary(cut)
    assert summary["epochs_run"] == EPOCHS and summary["resumed_from"][0] >= 3


def test_ctrl_c_and_sigterm_save_the_state_and_say_how_to_continue(tmp_path, data_root):
    overrides = (*STATEFUL, f"trainer.epochs={EPOCHS}")
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        out = tmp_path / sig.name
        proc = start(data_root, out, *overrides)
        wait_for_epoch(out, 2, proc)
        proc.send_signal(sig)
        output, _ = proc.communicate(timeout=60)
        assert proc.returncode == code, output[-3000:]
        assert "the state is saved; continue the run with:" in output
        command = output.split("continue the run with:")[1].strip().splitlines()[0]
        assert command.startswith("python") and f"hydra.run.dir={out}" in command
        assert "Traceback" not in output
        assert saved_epoch(out) >= 2
        words = command.split()[2:]  # what the user runs: the same overrides, the same folder
        finish(data_root, out, *[w for w in words if not w.startswith("hydra.run.dir=")])
        assert read_summary(out)["epochs_run"] == EPOCHS


def test_a_foreign_state_is_one_error_line_from_the_command_line(tmp_path, data_root):
    out = tmp_path / "run"
    finish(data_root, out, *STATEFUL, "trainer.epochs=1")
    proc = start(data_root, out, *STATEFUL, "trainer.epochs=1", "data.batch_size=32")
    output, _ = proc.communicate(timeout=120)
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, output[-3000:]
    assert "data.batch_size: 64 -> 32" in errors[0] and "Traceback" not in output
