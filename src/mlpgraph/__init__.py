"""mlpgraph: lifting 2D keypoints to root-relative 3D poses with MLP-Graph and its graph baselines.

``mlpgraph.Lifter`` is the Python API for lifting people's 2D keypoints (:mod:`mlpgraph.lifter`);
it is imported on first use, so ``import mlpgraph`` stays light (the workflow engines import it).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Lifter", "__version__"]


def __getattr__(name: str) -> Any:
    """``mlpgraph.Lifter``, imported on first use (it pulls in PyTorch)."""
    if name == "Lifter":
        from mlpgraph.lifter import Lifter

        return Lifter
    raise AttributeError(f"module 'mlpgraph' has no attribute {name!r}")
