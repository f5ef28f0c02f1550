"""mlpgraph: lifting 2D keypoints to root-relative 3D poses with MLP-Graph and its graph baselines.

``mlpgraph.Lifter`` is the Python API for lifting people's 2D keypoints (:mod:`mlpgraph.lifter`).
It is imported on first use (:data:`LAZY_ATTRIBUTES`), so ``import mlpgraph`` stays light: the
workflow engines and the data stages import the package without PyTorch. The stage-dependency
check (tests/test_stage_deps.py) counts :mod:`mlpgraph.lifter` for exactly the code that names
``mlpgraph.Lifter``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
# Public names imported on first use: name -> the module that defines it.
LAZY_ATTRIBUTES = {"Lifter": "mlpgraph.lifter"}
__all__ = ["Lifter", "__version__"]


def __getattr__(name: str) -> Any:
    """``mlpgraph.Lifter``, imported on first use (it pulls in PyTorch)."""
    module = LAZY_ATTRIBUTES.get(name)
    if module is None:
        raise AttributeError(f"module 'mlpgraph' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
