"""The GPU benchmark's goal and its printed report (``bench/gpu.py`` measures, this says how it reads)."""

from __future__ import annotations

from typing import Any

GOAL: dict[str, Any] = {
    "model": "mlpgraph_f243",
    "samples": 1_560_000,
    "seconds": 10.0,
    "training_pflop": 0.95,
    "hardware": "one H200-class GPU",
}
GOAL_TEXT = "a full 243-frame epoch (1.56 M samples, about 0.95 PFLOP of training) in under 10 s on one H200-class GPU"


def goal_result(rows: list[dict[str, Any]], models: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The goal and this run's best full-scale epoch of its model (measured or extrapolated, as labelled)."""
    out: dict[str, Any] = {**GOAL, "text": GOAL_TEXT}
    if GOAL["model"] in models:
        out["counted_release_pflop"] = models[GOAL["model"]]["release_epoch_pflop_full_scale"]
    done = [row for row in rows if row["model"] == GOAL["model"] and "error" not in row]
    if not done:
        return {**out, "met": None}
    best = min(done, key=lambda row: row["full_scale_epoch_s"])
    return {
        **out,
        "variant": best["variant"],
        "epoch_s": best["full_scale_epoch_s"],
        "basis": best["full_scale_basis"],
        "met": best["full_scale_epoch_s"] < GOAL["seconds"],
    }


def _table(head: list[str], lines: list[list[str]]) -> str:
    lines = [head, *lines]
    widths = [max(len(line[i]) for line in lines if i < len(line)) for i in range(len(head))]
    out = [" | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)) for line in lines]
    out.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(out)


def _percent(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{100 * fraction:.1f}"


def _training_line(row: dict[str, Any]) -> list[str]:
    if "error" in row:
        return [row["model"], row["variant"], f"failed: {row['error'][:100]}"]
    memory = row["peak_memory_bytes"]
    return [
        row["model"],
        row["variant"],
        row["precision"],
        f"{row['samples_per_s']:,.0f}",
        f"{row['epoch_s']:,.2f} ({row['epoch_basis']})",
        f"{row['full_scale_epoch_s']:,.2f}",
        f"{row['warmup_s']:.1f} ({row['first_step_s']:.1f})",
        "n/a" if memory is None else f"{memory / 2**30:.2f}",
        f"{row['achieved_flops_per_s'] / 1e12:,.3g}",
        _percent(row["fraction_of_measured_peak"]),
        _percent(row["fraction_of_nominal_peak"]),
    ]


def _goal_line(goal: dict[str, Any], device: str) -> str:
    text = f"goal: {goal['text']}"
    if goal["met"] is None:
        return f"{text}; this run: no {goal['model']} result"
    verdict = "met" if goal["met"] else "not met"
    return f"{text}; this run on {device}: {goal['epoch_s']:,.2f} s ({goal['basis']}, {goal['variant']}): {verdict}"


def format_report(results: dict[str, Any]) -> str:
    """The training and inference tables, the peaks used and the goal line."""
    samples = f"{results['training'][0]['samples']:,}" if results["training"] else "?"
    train_head = ["model", "variant", "precision", "samples/s", f"epoch s, {samples} samples", "1.56 M epoch s",
                  "warm-up s (first step)", "peak GiB", "TFLOP/s", "% measured peak", "% nominal peak"]
    inference_head = ["model", "batch", "precision", "path", "ms", "poses/s"]
    inference = [[row["model"], str(row["batch"]), row["precision"], row["path"], f"{row['latency_ms']:.3f}",
                  f"{row['poses_per_s']:,.0f}"] for row in results["inference"]]
    peaks = results["peaks"]
    nominal = peaks["nominal_bf16_dense_flops_per_s"]
    device = peaks["device_name"] or results["device"]
    peak_line = (
        f"peak of {device}: measured {peaks['measured_matmul_flops_per_s'] / 1e12:,.3g} TFLOP/s "
        f"({peaks['measured_matmul_size']}^2 {peaks['measured_matmul_dtype']} matmul); nominal bfloat16 "
        + ("n/a (not in the table)" if nominal is None else f"{nominal / 1e12:,.0f} TFLOP/s (datasheet, dense)")
    )
    compiled = [row for row in results["training"] if row.get("graph_breaks") or row.get("cudagraph_skips")]
    parts = [
        "training (FLOP/s: the arithmetic that trains, counted by PyTorch's FLOP counter)",
        _table(train_head, [_training_line(row) for row in results["training"]]),
        *[f"{row['model']} {row['variant']}: {row['graph_breaks']} graph breaks, "
          f"{row['cudagraph_skips'] or 0} CUDA graph skips" for row in compiled],
        "",
        "inference (eval mode, no autograd, model only)",
        _table(inference_head, inference),
        "",
        peak_line,
        _goal_line(results["goal"], device),
    ]
    if results["dry_run"]:
        parts.append("dry run on a CPU: checks the harness; the figures say nothing about a GPU")
    return "\n".join(parts)
