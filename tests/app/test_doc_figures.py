"""The docs' rendered figures match the committed result files (``benchmarks/doc_figures.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
import doc_figures  # noqa: E402


def test_every_block_matches_its_results() -> None:
    assert doc_figures.stale() == []
    names = {
        m.group("name")
        for doc in doc_figures.DOCS
        for m in doc_figures.BLOCK.finditer(doc.read_text())
    }
    assert names == set(doc_figures.RENDERERS)  # every renderer is used somewhere


def test_a_block_behind_its_results_is_rewritten(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("intro\n<!-- figures: epoch-speed -->\n| old | 8.33 |\n<!-- /figures -->\nend\n")
    text, changed = doc_figures.render(doc.read_text())
    assert changed == ["epoch-speed"] and "8.33" not in text
    assert text.startswith("intro\n<!-- figures: epoch-speed -->\nThe file is") and text.endswith(
        "<!-- /figures -->\nend\n"
    )
    assert doc_figures.render(text) == (text, [])
