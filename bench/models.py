"""Model benchmarks: size, cost and speed of every network in the paper's table.

For each configuration in ``mlpgraph.models.PAPER_CONFIGS`` (MLP-Graph 1-frame and 243-frame,
the four graph baselines, the refinement module), on CPU and on CUDA when available:
parameters, FLOPs per pose (PyTorch's FLOP counter), latency of one forward pass at batch 1
and batch 256 (median of timed runs after warm-up, eval mode, no autograd) and poses/s at
batch 256. For MLP-Graph, its default fast arithmetic (``mlpgraph.models.joint_major``: one
per-joint weight per graph convolution, BatchNorm folded, what ``predict`` and the evaluation
stages run) is timed beside the release's arithmetic (``use_arithmetic("release")``, the plain
path) in the same run, the two taking turns over :data:`ROUNDS` rounds so that the machine's
drift falls on both alike, and the achieved FLOP/s is given as a fraction of the machine's
measured matmul peak.

    .venv/bin/python bench/models.py                      # -> metrics/bench_models.json
"""

from __future__ import annotations

import argparse
import copy
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from machine import machine_info
from mlpgraph.layouts import get_layout
from mlpgraph.models import PAPER_CONFIGS, MLPGraph, build_model, count_parameters
from results_file import refuse_bad_out, write_results

log = logging.getLogger("bench.models")
# Rounds over which the paths of one network (plain, fast) take turns being timed.
ROUNDS = 5


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(
    fn: Callable[[], Any], device: torch.device, min_runs: int, min_seconds: float, warmup: int = 3
) -> float:
    """Median seconds of ``fn()`` over at least ``min_runs`` runs and ``min_seconds``, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times: list[float] = []
    began = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - began < min_seconds:
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
        if len(times) >= 10 * min_runs and time.perf_counter() - began > 3 * min_seconds:
            break
    return statistics.median(times)


def matmul_peak(device: torch.device, size: int = 2048, dtype: torch.dtype = torch.float32) -> float:
    """Measured FLOP/s of a large square matmul in ``dtype``: the reference for "fraction of peak"."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    seconds = time_call(lambda: a @ b, device, min_runs=5, min_seconds=1.0)
    return 2 * size**3 / seconds


def example_inputs(name: str, model: nn.Module, batch: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Random inputs of the right shape for one forward pass of ``model``."""
    joints = get_layout(model.config["layout"]).num_joints
    if name == "refine":
        return (torch.randn(batch, joints, 3, device=device), torch.randn(batch, joints, 3, device=device))
    frames = int(model.config.get("frames", 1))
    return (torch.randn(batch, frames, joints, 2, device=device),)


def flops_per_pose(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> float:
    """FLOPs of one forward pass divided by the batch size."""
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(*inputs)
    return counter.get_total_flops() / inputs[0].shape[0]


def bench_model(
    label: str,
    name: str,
    models: dict[str, nn.Module],
    device: torch.device,
    batches: tuple[int, ...],
    min_seconds: float,
) -> dict[str, dict[str, Any]]:
    """One row per path of ``models`` (the same network by other arithmetic): FLOPs, latency per batch
    size, throughput at the largest batch.

    With several paths their timings interleave over :data:`ROUNDS` rounds (the median of the
    rounds' medians), so a machine's drift during the run falls on every path alike.
    """
    rounds = ROUNDS if len(models) > 1 else 1
    rows: dict[str, dict[str, Any]] = {}
    inputs = {b: example_inputs(name, next(iter(models.values())), b, device) for b in batches}
    for path, model in models.items():
        rows[path] = {"model": label, "registry_name": name, "device": str(device)}
        rows[path]["flops_per_pose"] = flops_per_pose(model, inputs[batches[-1]])
    for b in batches:
        times: dict[str, list[float]] = {path: [] for path in models}
        for round_ in range(rounds):
            for path, model in models.items():
                with torch.inference_mode():
                    times[path].append(
                        time_call(
                            lambda m=model, b=b: m(*inputs[b]),
                            device,
                            min_runs=max(1, 10 // rounds),
                            min_seconds=min_seconds / rounds,
                            warmup=3 if round_ == 0 else 1,
                        )
                    )
        for path in models:
            seconds = statistics.median(times[path])
            rows[path][f"latency_b{b}_ms"] = seconds * 1e3
            rows[path][f"poses_per_s_b{b}"] = b / seconds
    largest = batches[-1]
    for row in rows.values():
        row["achieved_flops_per_s"] = row["flops_per_pose"] * row[f"poses_per_s_b{largest}"]
    return rows


def run(devices: list[str], batches: tuple[int, ...], min_seconds: float) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine_info(devices), "rows": [], "batches": list(batches)}
    for device_name in devices:
        device = torch.device(device_name)
        peak = matmul_peak(device)
        results.setdefault("matmul_peak_flops_per_s", {})[device_name] = peak
        log.info("%s: float32 matmul peak %.1f GFLOP/s", device_name, peak / 1e9)
        for label, config in PAPER_CONFIGS.items():
            torch.manual_seed(0)
            name = config.model
            model = build_model(name, **config.overrides).to(device).eval()
            params = count_parameters(model)
            log.info("%s on %s (%d parameters)", label, device_name, params)
            paths = {"plain": model}
            if isinstance(model, MLPGraph):
                paths = {"plain": copy.deepcopy(model).use_arithmetic("release"), "fast": model}
            rows = bench_model(label, name, paths, device, batches, min_seconds)
            for path, row in rows.items():
                row["parameters"] = params
                row["path"] = path
                row["fraction_of_matmul_peak"] = row["achieved_flops_per_s"] / peak
                if path == "fast":
                    row["speedup_over_plain"] = {
                        f"b{b}": rows["plain"][f"latency_b{b}_ms"] / row[f"latency_b{b}_ms"] for b in batches
                    }
                results["rows"].append(row)
    return results


def format_table(results: dict[str, Any]) -> str:
    """The human-readable table printed to stdout."""
    batches = results["batches"]
    head = ["model", "path", "device", "params", "MFLOP/pose"]
    head += [f"b{b} ms" for b in batches] + [f"poses/s b{batches[-1]}", "% peak", "speed-up"]
    lines = [head]
    for row in results["rows"]:
        speedup = row.get("speedup_over_plain", {}).get(f"b{batches[-1]}")
        lines.append(
            [
                row["model"],
                row["path"],
                row["device"],
                f"{row['parameters']:,}",
                f"{row['flops_per_pose'] / 1e6:,.2f}",
                *[f"{row[f'latency_b{b}_ms']:.3f}" for b in batches],
                f"{row[f'poses_per_s_b{batches[-1]}']:,.0f}",
                f"{100 * row['fraction_of_matmul_peak']:.1f}",
                f"{speedup:.2f}x" if speedup else "",
            ]
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = [" | ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    out.insert(1, "-+-".join("-" * w for w in widths))
    peaks = ", ".join(f"{d}: {p / 1e9:,.1f} GFLOP/s" for d, p in results["matmul_peak_flops_per_s"].items())
    return "\n".join([*out, f"float32 matmul peak (2048x2048): {peaks}"])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("metrics/bench_models.json"))
    parser.add_argument("--device", action="append", help="cpu and/or cuda (default: cpu, and cuda when available)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 256])
    parser.add_argument("--min-seconds", type=float, default=1.0, help="minimum timed seconds per measurement")
    args = parser.parse_args(argv)
    refuse_bad_out(parser, args.out)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    results = run(devices, tuple(args.batches), args.min_seconds)
    write_results(args.out, results)
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
