"""Markdown and table artifacts that each flow run leaves in Prefect."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

# Metrics shown first in the retrain table; the rest follow in name order.
KEY_METRICS = ("rmse", "mae", "phm08_score", "p10_p90_coverage", "state_accuracy", "engines")


def metrics_rows(
    challenger: Mapping[str, float], champion: Mapping[str, float] | None
) -> list[dict[str, Any]]:
    """Return one row per metric with the challenger's and the champion's value."""
    names = [name for name in KEY_METRICS if name in challenger]
    names += sorted(name for name in challenger if name not in KEY_METRICS)
    return [
        {
            "metric": name,
            "challenger": _rounded(challenger[name]),
            "champion": None if champion is None else _rounded(champion.get(name, math.nan)),
        }
        for name in names
    ]


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "(no rows)"
    columns = list(rows[0])
    lines = [
        "| " + " | ".join(columns) + " |",
        "| " + " | ".join("---" for _ in columns) + " |",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(column)) for column in columns) + " |")
    return "\n".join(lines)


def _rounded(value: float) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 4)


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")
