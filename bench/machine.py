"""Where a benchmark's numbers were taken: the machine description every ``bench/*.py`` records."""

from __future__ import annotations

import os
import platform
from typing import Any

import numpy as np
import torch


def machine_info(devices: list[str]) -> dict[str, Any]:
    """CPU count and affinity, threads, platform, library versions and the ``devices`` timed."""
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "devices": devices,
    }
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
    return info
