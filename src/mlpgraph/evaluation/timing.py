"""Inference time of a lifting network: median seconds per forward pass and poses per second."""

from __future__ import annotations

import logging
import math
import platform
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mlpgraph.evaluation.prediction import eval_mode

log = logging.getLogger(__name__)


def inference_time(
    model: nn.Module,
    example_shape: Sequence[int],
    device: str | torch.device,
    batch_sizes: Sequence[int] = (1, 256),
    warmup: int = 5,
    min_runs: int = 20,
    min_seconds: float = 0.0,
) -> dict:
    """Median seconds per forward pass and poses per second, per batch size, on ``device``.

    ``example_shape`` is one sample's input shape, e.g. (T, J, 2). For each batch size: ``warmup``
    untimed passes, then at least ``min_runs`` timed passes (and at least ``min_seconds`` of them)
    on random input, in eval mode under ``torch.inference_mode``, each bracketed by a device
    synchronisation on CUDA / MPS so the time covers the kernels, not just their launch.

    Returns ``{"device", "device_name", "torch_threads", "batch": {str(batch size): {"median_s",
    "poses_per_s", "runs"}}}``.
    """
    device = torch.device(device)
    result: dict[str, Any] = {
        "device": str(device),
        "device_name": _device_name(device),
        "torch_threads": torch.get_num_threads(),
        "batch": {},
    }
    with eval_mode(device, model), torch.inference_mode():
        for size in batch_sizes:
            x = torch.randn((size, *example_shape), device=device)
            median, runs = _median_forward_seconds(model, x, device, warmup, min_runs, min_seconds)
            result["batch"][str(size)] = {
                "median_s": median,
                "poses_per_s": size / median if median > 0 else math.inf,
                "runs": runs,
            }
            log.info("inference batch %d on %s: median %.3g s, %.0f poses/s", size, device, median, size / median)
    return result


def _median_forward_seconds(
    model: nn.Module, x: torch.Tensor, device: torch.device, warmup: int, min_runs: int, min_seconds: float
) -> tuple[float, int]:
    """(median seconds, number of timed passes) of ``model`` on the batch ``x``, after ``warmup`` untimed passes."""
    for _ in range(warmup):
        model(x)
    _synchronise(device)
    times: list[float] = []
    while len(times) < min_runs or sum(times) < min_seconds:
        _synchronise(device)
        start = time.perf_counter()
        model(x)
        _synchronise(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(times)


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or device.type
