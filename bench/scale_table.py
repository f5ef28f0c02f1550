"""``bench/scale.py``'s table in Markdown: per stage, wall time, peak RSS, disk written and how it was measured."""

from __future__ import annotations

from typing import Any

EXTRAPOLATED_MARK = "≈ "


def duration(seconds: float) -> str:
    """Seconds as ``12.3 s``, ``4.5 min`` or ``2.1 h``."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def size(num_bytes: float) -> str:
    """Bytes as ``0 B``, ``12 kB``, ``345 MB`` or ``1.23 GB`` (powers of 1000)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.2f} {unit}" if unit == "GB" else f"{num_bytes / scale:.0f} {unit}"
    return f"{num_bytes:.0f} B"


def _row(row: dict[str, Any]) -> str:
    if not row.get("timed", True):
        return f"| {row['stage']} | – | – | – | {row['how']} |"
    wall = EXTRAPOLATED_MARK * row["extrapolated"] + duration(row["wall_s"])
    rss = size(row["peak_rss_mb"] * 2**20)
    return f"| {row['stage']} | {wall} | {rss} | {size(row['disk_bytes'])} | {row['how']} |"


def _total(rows: list[dict[str, Any]]) -> str:
    timed = [row for row in rows if row.get("timed", True)]
    wall = sum(row["wall_s"] for row in timed)
    mark = EXTRAPOLATED_MARK if any(row["extrapolated"] for row in timed) else ""
    rss = max((row["peak_rss_mb"] for row in timed), default=0.0) * 2**20
    disk = sum(row["disk_bytes"] for row in timed)
    return f"| **total** | **{mark}{duration(wall)}** | {size(rss)} (largest) | {size(disk)} | the rows above in turn |"


def _header(results: dict[str, Any]) -> list[str]:
    data, machine = results["data"], results["machine"]
    sizes = []
    if "train_samples" in data:
        sizes.append(f"{data['train_samples']:,} training")
    if "test_samples" in data:
        sizes.append(f"{data['test_samples']:,} test")
    described = f" ({' and '.join(sizes)} 2D poses, synthetic)" if sizes else " (synthetic data)"
    device = machine.get("cuda_device") or "CPU only"
    threads = results["settings"].get("threads")
    threads_text = f"{threads} torch thread{'s' * (threads != 1)} per stage" if threads else "torch's default threads"
    load = results.get("load_average_before")
    load_text = f"; load average {load[0]:.1f} at the start" if load else ""
    return [
        f"Scale `{results['scale']}`{described}, measured {results['date']} on {machine['cpu_count']} CPU cores "
        f"({device}; torch {machine['torch']}, {threads_text}{load_text}):",
        "",
        "```",
        results["command"],
        "```",
        "",
    ]


def _training_run(results: dict[str, Any]) -> list[str]:
    """A line on what a whole training run costs: epochs x (one epoch + the per-epoch test evaluation)."""
    rows = {row["stage"]: row for row in results["rows"]}
    epochs = results["data"].get("epochs")
    parts = []
    for stage, row in rows.items():
        if not stage.startswith("train_spatial@"):
            continue
        experiment = stage.split("@", 1)[1]
        evaluation = rows.get(f"evaluate_h36m@{experiment}", {}).get("probe", {})
        if epochs and "predict_whole_s_extrapolated" in evaluation:
            run = epochs * (row["probe"]["epoch_s_extrapolated"] + evaluation["predict_whole_s_extrapolated"])
            parts.append(f"{experiment} ≈ {duration(run)}")
    if not parts:
        return []
    return [
        "",
        f"A training run is {epochs} such epochs, each followed by a test-split evaluation: "
        + ", ".join(parts) + ".",
    ]


def format_markdown(results: dict[str, Any]) -> str:
    """The header, the table (a total row when complete) and the notes, as Markdown."""
    lines = _header(results)
    lines += ["| stage | wall time | peak RSS | disk written | how measured |", "|---|---:|---:|---:|---|"]
    lines += [_row(row) for row in results["rows"]]
    if results.get("complete"):
        lines.append(_total(results["rows"]))
    lines += [
        "",
        f"{EXTRAPOLATED_MARK.strip()}: extrapolated from the timed part named in the last column; the other rows ran "
        "whole. Peak RSS is each stage's own process (`ru_maxrss`); disk written is the size of the files it "
        "created or rewrote (outputs and MLflow records).",
    ]
    lines += _training_run(results)
    if results.get("failed"):
        lines += ["", f"**Stopped:** {results['failed']}"]
    elif not results.get("complete"):
        lines += ["", "**Partial:** the run has not finished (or was interrupted)."]
    return "\n".join(lines) + "\n"
