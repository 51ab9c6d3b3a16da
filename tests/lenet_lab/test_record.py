"""The run record: statuses and summary.json round trip."""

from __future__ import annotations

import json
import math

from lenet_lab.record import FIELDS, FINISHED, STATUS, Status, read_summary, write_summary


def test_summary_round_trip_keeps_field_order_and_status(tmp_path):
    path = tmp_path / "summary.json"
    write_summary(
        path, {"extra": 1, "best_val_acc": 0.9, STATUS: Status.EARLY_STOPPED, "objective": math.nan}
    )
    text = json.loads(path.read_text())
    assert list(text) == ["status", "objective", "best_val_acc", "extra"]
    assert text["status"] == "early_stopped" and text["objective"] is None  # no NaN in JSON
    summary = read_summary(tmp_path)  # the run dir works too
    assert summary[STATUS] is Status.EARLY_STOPPED and summary[STATUS] in FINISHED
    assert f"{summary[STATUS]}" == "early_stopped"


def test_missing_or_corrupt_summary_reads_as_none(tmp_path):
    assert read_summary(tmp_path / "summary.json") is None
    (tmp_path / "summary.json").write_text("{half")
    assert read_summary(tmp_path) is None


def test_status_words_are_the_lab_words():
    assert {s.value for s in Status} == {
        "running",
        "completed",
        "early_stopped",
        "pruned",
        "diverged",
        "failed",
        "interrupted",
    }
    assert "completed" in FINISHED and "pruned" not in FINISHED
    assert set(FIELDS) >= {"status", "objective", "best_val_acc", "val_split"}


def test_each_status_word_is_spelled_only_in_the_record_module():
    """The trainer and train.py compare and write statuses through ``Status``; a quoted
    status word anywhere else in them would be a second spelling."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    words = "|".join(s.value for s in Status)
    pattern = re.compile(rf"""["']({words})["']""")
    files = [*sorted((root / "lenet_lab").glob("*.py")), root / "train.py"]
    found = [
        f"{p.name}: {m.group(0)}"
        for p in files
        if p.name != "record.py"
        for m in pattern.finditer(p.read_text())
    ]
    assert found == []
