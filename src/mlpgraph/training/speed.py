"""How a training run uses the hardware: the forward's precision and ``torch.compile``.

``train.precision`` and ``train.compile`` (params.yaml) change speed, not the recipe: ``auto``
picks what this machine does natively. Precision ``auto`` is bfloat16 autocast where matrix
products run natively in bfloat16 (a CUDA device of compute capability 8.0 or newer, or a CPU
with AMX or AVX512-BF16 instructions) and float32 elsewhere: on a CPU without them, bfloat16
products are emulated and tens of times slower than float32. ``compile: auto`` compiles the
training forward when the run has at least :data:`COMPILE_MIN_STEPS` optimiser steps (the
compilation costs about a minute per network, and a second one for the epoch's smaller last
batch) and the backend works here (on a CPU it needs a C++ compiler).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
COMPILE_CHOICES = ("auto", True, False)
COMPILE_MIN_STEPS = 20_000
_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class Speed:
    """The resolved settings of one run: ``precision`` float32 | bfloat16 | float16, ``compile`` on or off."""

    precision: str
    compile: bool

    @property
    def scales_loss(self) -> bool:
        """float16 needs loss scaling (a GradScaler); bfloat16 and float32 do not."""
        return self.precision == "float16"

    def autocast(self, device: torch.device) -> AbstractContextManager[Any]:
        """Autocast to the run's reduced precision on ``device``; nothing for float32."""
        dtype = _DTYPES.get(self.precision)
        return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)

    def forward(self, module: nn.Module) -> Callable[..., Any]:
        """What the training step calls: ``module`` itself, or its compiled version."""
        return torch.compile(module) if self.compile else module


def resolve_speed(precision: str, compile_choice: str | bool, device: torch.device, steps: int) -> Speed:
    """``train.precision`` / ``train.compile`` for a run of ``steps`` optimiser steps on ``device``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if compile_choice not in COMPILE_CHOICES:
        raise ValueError(f"compile must be one of {COMPILE_CHOICES}, got {compile_choice!r}")
    if precision == "auto":
        precision = "bfloat16" if native_bfloat16(device) else "float32"
    elif precision == "bfloat16" and not native_bfloat16(device):
        log.warning("train.precision bfloat16: %s has no native bfloat16 matrix products; expect it to be slow", device)
    if compile_choice == "auto":
        compile_choice = steps >= COMPILE_MIN_STEPS and compiler_available(device)
    speed = Speed(precision=precision, compile=bool(compile_choice))
    log.info("training precision %s, torch.compile %s", speed.precision, "on" if speed.compile else "off")
    return speed


def native_bfloat16(device: torch.device) -> bool:
    """True where bfloat16 matrix products run natively: CUDA with compute capability >= 8.0, AMX/AVX512-BF16 CPUs."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.get_device_capability(device)[0] >= 8
    if device.type == "cpu":
        return bool(cpu_flags() & {"amx_bf16", "avx512_bf16"})
    return False


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where there is no such file)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def compiler_available(device: torch.device) -> bool:
    """True when ``torch.compile`` can generate code for ``device``: CUDA, or a CPU with a C++ compiler on PATH."""
    if device.type == "cuda":
        return True
    return device.type == "cpu" and any(shutil.which(name) for name in ("c++", "g++", "clang++"))
