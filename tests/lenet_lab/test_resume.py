"""A run continues after its last finished epoch (in process): a bad state file, a state of
another config, an ended run, the CUDA graph's step; the command line: test_resume_cli.py."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pytest
import torch

from conftest import compose_config
from lenet_lab import resume
from lenet_lab.callbacks import Callback
from lenet_lab.run import train

#: Every stateful part of a run: dropout and augmentation (RNG), a scheduler, weight
#: averaging, early stopping's counter (patience high enough to run every epoch).
STATEFUL = (
    "trainer.progress_bar=false",
    "trainer.device=cpu",
    "trainer.save_samples=false",
    "regularizer=dropout",
    "scheduler=cosine",
    "averaging=ema",
    "augmentation=hflip_shift",
    "early_stopping=val_loss",
    "early_stopping.patience=50",
)


def saved_epoch(out: Path) -> int:
    try:
        return int(torch.load(out / resume.STATE_FILE, weights_only=True)["epoch"])
    except Exception:  # noqa: BLE001 - not written yet
        return 0


def rows(out: Path) -> list[dict[str, str]]:
    with (out / "metrics.csv").open(newline="") as f:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]


def _cfg(*overrides: str):
    return compose_config(*STATEFUL, "trainer.save_curves=false", *overrides)


def test_a_truncated_state_falls_back_to_the_previous_one(tmp_path, tiny_env, caplog):
    cfg = _cfg("trainer.epochs=3")
    out = tmp_path / "run"
    train(cfg, out)
    before = rows(out)
    state = out / resume.STATE_FILE
    state.write_bytes(state.read_bytes()[:1000])  # a write cut short (disk full, a crash)
    with caplog.at_level(logging.WARNING, logger="lenet_lab.resume"):
        train(cfg, out)
    warning = [r.getMessage() for r in caplog.records if "is unreadable" in r.getMessage()]
    assert len(warning) == 1 and str(state) in warning[0] and "state.prev.pt" in warning[0]
    assert "after epoch 3" in warning[0]  # the last epoch's state, saved before the end
    assert rows(out) == before


def test_a_state_of_another_config_is_refused_in_one_line(tmp_path, tiny_env):
    out = tmp_path / "run"
    train(_cfg("trainer.epochs=1"), out)
    before = (out / "metrics.csv").read_text()
    with pytest.raises(resume.StateError) as refused:
        train(_cfg("trainer.epochs=1", "optimizer=adam"), out)
    message = str(refused.value)
    assert "\n" not in message and "another config" in message
    assert "optimizer._target_: torch.optim.SGD -> torch.optim.Adam" in message
    assert (out / "metrics.csv").read_text() == before  # nothing trained


def test_both_states_unreadable_is_one_line(tmp_path, tiny_env):
    out = tmp_path / "run"
    out.mkdir()
    (out / resume.STATE_FILE).write_bytes(b"not a state")
    with pytest.raises(resume.StateError, match="start this run over") as refused:
        train(_cfg("trainer.epochs=1"), out)
    assert str(out / resume.STATE_FILE) in str(refused.value)


def test_an_ended_run_is_only_recorded_again(tmp_path, tiny_env):
    cfg = _cfg("early_stopping.patience=1", "early_stopping.min_delta=10", "trainer.epochs=8")
    out = tmp_path / "run"
    first = train(cfg, out)
    assert first["status"] == "early_stopped"
    again = train(cfg, out)
    for key in ("status", "reason", "best_val_acc", "best_epoch", "epochs_run"):
        assert again[key] == first[key], key
    assert again["resumed_from"] == []  # nothing trained again


def test_differing_keys_ignore_where_and_how_a_run_runs():
    saved = {"trainer": {"epochs": 5, "num_threads": 1}, "optimizer": {"lr": 0.1}}
    now = {"trainer": {"epochs": 5, "num_threads": 2}, "optimizer": {"lr": 0.01}}
    assert resume.differing_keys(saved, now) == ["optimizer.lr: 0.1 -> 0.01"]


class _StopAfter(Callback):
    """Ctrl-C inside epoch ``epoch``'s callbacks: its state is not saved, the one before is."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_end(self, run, epoch, metrics) -> None:
        if epoch == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.parametrize(
    "device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)], ids=["cpu", "cuda"]
)
def test_an_interrupted_run_continues_in_process(tmp_path, tiny_env, device):
    """The same in one process (what gpu_check.sh runs on a GPU, with the CUDA graph): the
    continued run's metrics equal the uninterrupted run's, exactly on the CPU, within float
    tolerance on CUDA (its kernels need not be bitwise reproducible)."""
    overrides = [o for o in STATEFUL if not o.startswith("trainer.device")]
    cfg = compose_config(*overrides, f"trainer.device={device}", "trainer.epochs=4")
    train(cfg, tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut", callbacks=[_StopAfter(3)])
    assert saved_epoch(tmp_path / "cut") == 2
    summary = train(cfg, tmp_path / "cut")
    assert summary["resumed_from"] == [2] and summary["epochs_run"] == 4
    whole, cut = rows(tmp_path / "whole"), rows(tmp_path / "cut")
    assert [r["epoch"] for r in cut] == ["1", "2", "3", "4"]
    if device == "cpu":
        assert cut == whole
    else:
        for a, b in zip(whole, cut, strict=True):
            for key in ("train_loss", "val_loss", "val_acc"):
                assert float(b[key]) == pytest.approx(float(a[key]), rel=1e-3, abs=1e-3), key


def test_a_state_of_another_version_starts_the_run_over(tmp_path, tiny_env, caplog):
    cfg = _cfg("trainer.epochs=2")
    out = tmp_path / "run"
    train(cfg, out)
    state = torch.load(out / resume.STATE_FILE, weights_only=True)
    torch.save({**state, "format": resume.FORMAT - 1}, out / resume.STATE_FILE)
    with caplog.at_level(logging.WARNING, logger="lenet_lab.resume"):
        summary = train(cfg, out)
    said = [r.getMessage() for r in caplog.records if "another version" in r.getMessage()]
    assert len(said) == 1 and "starts over from epoch 0" in said[0]
    assert summary["resumed_from"] == [] and summary["epochs_run"] == 2
