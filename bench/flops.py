"""What "fraction of peak" is measured against: training FLOPs per sample and the device's bfloat16 peak.

Training FLOPs are PyTorch's FLOP counter (``torch.utils.flop_counter.FlopCounterMode``, matrix
products only, as ``bench/models.py`` counts forward FLOPs) over one forward and one backward
pass of the released loss, split into the two. The peak is given two ways, labelled apart: a
large bfloat16 matmul measured on the device (float32 on a CPU without native bfloat16), and the
datasheet's dense (no sparsity) bfloat16 tensor-core peak looked up by the device's name
(:data:`NOMINAL_BF16_PEAKS`).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mlpgraph.layouts import get_layout
from mlpgraph.training import lifting_loss
from mlpgraph.training.speed import native_bfloat16
from models import matmul_peak

# Datasheet dense bfloat16 tensor-core peaks (FLOP/s, without 2:4 sparsity), matched in order as
# substrings of torch.cuda.get_device_name(): the specific names before the generic ones.
NOMINAL_BF16_PEAKS: tuple[tuple[str, float], ...] = (
    ("H200 NVL", 835e12),
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),  # SXM, e.g. "NVIDIA H100 80GB HBM3"
    ("A100", 312e12),
)
NOMINAL_SOURCE = "datasheet dense bfloat16 tensor-core peak by device name (bench/flops.py NOMINAL_BF16_PEAKS)"


def nominal_bf16_peak(device_name: str | None) -> float | None:
    """The datasheet dense bfloat16 peak of the device called ``device_name``, or None when not in the table."""
    for key, peak in NOMINAL_BF16_PEAKS:
        if device_name is not None and key in device_name:
            return peak
    return None


def device_peaks(device: torch.device) -> dict[str, Any]:
    """The measured matmul peak of ``device`` and, for a CUDA device in the table, its nominal bfloat16 peak.

    Measured in bfloat16 where it is native (what training runs in there), else in float32 (a CPU dry
    run, where bfloat16 is emulated and training runs in float32).
    """
    dtype = torch.bfloat16 if native_bfloat16(device) else torch.float32
    size = 8192 if device.type == "cuda" else 512
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {
        "device_name": name,
        "measured_matmul_flops_per_s": matmul_peak(device, size=size, dtype=dtype),
        "measured_matmul_dtype": str(dtype).removeprefix("torch."),
        "measured_matmul_size": size,
        "nominal_bf16_dense_flops_per_s": nominal_bf16_peak(name),
        "nominal_source": NOMINAL_SOURCE,
    }


def training_flops(model: nn.Module, device: torch.device, batch: int) -> dict[str, float]:
    """Forward and backward FLOPs per sample of one training step of ``model`` (a copy, train mode, float32).

    ``forward`` counts the forward pass and the loss, ``backward`` the gradients; ``train`` is their sum.
    Divided by ``batch``, the step's: products of weights alone are per step, not per sample.
    """
    model = copy.deepcopy(model).to(device).train()
    joints = get_layout(model.config["layout"]).num_joints
    windows = torch.randn(batch, int(model.config.get("frames", 1)), joints, 2, device=device)
    target = torch.randn(batch, joints, 3, device=device)
    forward, backward = FlopCounterMode(display=False), FlopCounterMode(display=False)
    with forward:
        loss = lifting_loss(model(windows), target)
    with backward:
        loss.backward()
    counts = {"forward": forward.get_total_flops() / batch, "backward": backward.get_total_flops() / batch}
    counts["train"] = counts["forward"] + counts["backward"]
    return counts
