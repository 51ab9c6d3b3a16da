"""Tiny Markdown helpers (no tabulate dependency)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def fmt(value: Any, column: str = "") -> str:
    """Format one cell: accuracies with 4 decimals, other floats with 4 significant digits."""
    if value is None or value is pd.NA:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "-"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if "acc" in column or "gap" in column or "importance" in column:
            return f"{value:.4f}"
        if (
            value.is_integer()
            and abs(value) < 1e6
            and ("epoch" in column or column in ("n", "trial"))
        ):
            return str(int(value))
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(df: pd.DataFrame, index: bool = False) -> str:
    """Render a DataFrame as a GitHub-flavoured Markdown table."""
    if index:
        df = df.reset_index()
    header = [str(c) for c in df.columns]
    lines = [
        "| " + " | ".join(h.replace("|", "\\|") for h in header) + " |",
        "|" + "|".join(" --- " for _ in header) + "|",
    ]
    for row in df.itertuples(index=False):
        cells = [fmt(v, c) for v, c in zip(row, header, strict=True)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mapping(items: dict[str, Any]) -> str:
    """Render a dict as a two-column Markdown table."""
    df = pd.DataFrame({"key": list(items), "value": [fmt(v) for v in items.values()]})
    return table(df)
