"""The only figures typed by hand in the report: the MLP-Graph paper's comparison table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PaperFigures:
    """One row of the paper's comparison: Human3.6M, 2D ground truth, 1 frame, 16 joints."""

    method: str
    p1: float
    p2: float
    inference_s: float
    # model_config values a measured row must have to stand beside these figures.
    config: Mapping[str, Any] = field(default_factory=dict)


PAPER_SOURCE = (
    "the MLP-Graph paper's comparison table (Human3.6M, 2D ground truth, 1 frame, 16 joints: "
    "Neck/Nose removed); the paper gives inference time in seconds without stating the batch "
    "size or the device"
)
PAPER_FIGURES: dict[str, PaperFigures] = {
    "semgcn_nonlocal": PaperFigures("SemGCN (non-local)", 40.78, 31.46, 0.012),
    "hgcn": PaperFigures("High-order GCN", 39.52, 31.07, 0.013),
    "wugcn": PaperFigures("Weight Unsharing", 37.83, 30.09, 0.32),
    "modgcn": PaperFigures("ModulatedGCN", 37.43, 29.73, 0.08),
    "mlpgraph": PaperFigures("MLP-Graph", 36.34, 28.97, 0.05, {"aggregation": "diagonal"}),
}
# The paper's setting: a measured row stands beside the paper's figures only in it.
PAPER_KEYPOINTS = "gt"
PAPER_FRAMES = 1
PAPER_LAYOUT = "h36m16"
