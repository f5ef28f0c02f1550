"""The torch device a run computes on: ``train.device`` (or a ``--device`` option) resolved once, up front.

``torch.device("cuda:7")`` succeeds on any machine; the mistake only shows when the first tensor
moves there, as a traceback deep inside torch. :func:`resolve_device` checks that the device
exists on this machine and refuses one that does not with one line naming the setting it came
from, before any data is read. The schema (:mod:`mlpgraph.params_schema`) checks the spelling
only: ``snakemake -n`` on a login node without a GPU must still accept ``cuda``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from mlpgraph.errors import UserInputError

PARAMS_KEY = "train.device"


def _cuda_devices() -> str:
    """What this machine has, for an error message: ``no CUDA device`` or ``2 CUDA devices (cuda:0 to cuda:1)``."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        return "no CUDA device" + ("" if torch.backends.cuda.is_built() else " (this PyTorch is built without CUDA)")
    return f"{count} CUDA device{'s' if count > 1 else ''} (cuda:0{f' to cuda:{count - 1}' if count > 1 else ''})"


def _problem(device: torch.device) -> str | None:
    """Why ``device`` cannot be used on this machine, or None when it can."""
    if device.type == "cpu":
        return None
    if device.type == "cuda":
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if available == 0 or (device.index is not None and device.index >= available):
            return f"this machine has {_cuda_devices()}"
        return None
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        return None if mps is not None and mps.is_available() else "MPS is not available on this machine"
    return "expected auto, cpu, mps, cuda or cuda:N"


def resolve_device(name: str | torch.device, key: str = PARAMS_KEY) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else checked to exist on this machine.

    ``key`` names the setting the value came from (``train.device``, ``params.yaml: train.device``,
    ``--device``); an unknown or unavailable device is a one-line :class:`UserInputError` naming it.
    """
    if isinstance(name, str) and name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise UserInputError(f"{key}: {name!r} is not a device (expected auto, cpu, mps, cuda or cuda:N)") from None
    problem = _problem(device)
    if problem is not None:
        raise UserInputError(f"{key}: {name} is not available ({problem})")
    return device


def params_device(params: Mapping[str, Any], params_file: str | os.PathLike[str] | None = None) -> torch.device:
    """``train.device`` of ``params`` resolved (:func:`resolve_device`); errors name ``params_file`` and the key."""
    key = f"{params_file}: {PARAMS_KEY}" if params_file is not None else PARAMS_KEY
    return resolve_device(params["train"]["device"], key)
