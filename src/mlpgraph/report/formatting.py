"""How the report writes numbers and Markdown tables."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

DASH = "—"


def finite(value: float | None) -> bool:
    """Whether ``value`` is a number to show (neither missing nor NaN)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def fmt_1(value: float | None) -> str:
    """mm or %, one decimal; a dash for a missing value."""
    return f"{value:.1f}" if finite(value) else DASH


def fmt_pair(first: float | None, second: float | None) -> str:
    """``P1 / P2`` with one decimal each."""
    return f"{fmt_1(first)} / {fmt_1(second)}"


def fmt_count(value: float | None) -> str:
    """An integer with thousands separators."""
    return f"{int(value):,}" if finite(value) else DASH


def fmt_ms(seconds: float | None) -> str:
    """Seconds shown as milliseconds with two decimals."""
    return f"{seconds * 1000:.2f}" if finite(seconds) else DASH


def fmt_run_id(run_id: str | None) -> str:
    """An MLflow run id as code, or "not tracked" when the stage ran without MLflow."""
    return f"`{run_id}`" if run_id else "not tracked"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str = "") -> list[str]:
    """A Markdown table; ``align`` has one letter per column (``l`` or ``r``, default ``l``)."""
    marks = [("---:" if align[i : i + 1] == "r" else "---") for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines
