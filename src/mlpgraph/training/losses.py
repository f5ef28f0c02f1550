"""The training losses (docs/model.md, "Training recipe"): the lifting network's and the refinement's."""

from __future__ import annotations

import torch
import torch.nn.functional as fn
from torch import Tensor

from mlpgraph.layouts import SkeletonLayout, get_layout


def mpjpe_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean per-joint position error (mean Euclidean distance over joints and batch), in the inputs' unit."""
    return torch.linalg.vector_norm(pred - target, dim=-1).mean()


def symmetry_penalty(pose: Tensor, layout: str | SkeletonLayout) -> Tensor:
    """Mean over the layout's left/right bone pairs (and the batch) of |left bone| - |right bone|.

    Signed, as released (so it rewards a shorter left side); kept only for fidelity. The release
    sums the per-pair batch means (docs/baselines.md section 5); this is that sum divided by the
    number of pairs (six for h36m16/17), the definition of docs/model.md ("Training recipe").
    """
    lay = layout if isinstance(layout, SkeletonLayout) else get_layout(layout)
    bones = torch.as_tensor(lay.bones, device=pose.device)
    pairs = torch.as_tensor(lay.symmetric_bone_pairs, device=pose.device)
    lengths = torch.linalg.vector_norm(pose[:, bones[:, 0]] - pose[:, bones[:, 1]], dim=-1)
    return (lengths[:, pairs[:, 0]] - lengths[:, pairs[:, 1]]).mean()


def lifting_loss(pred: Tensor, target: Tensor, l1_weight: float = 0.01) -> Tensor:
    """The main network's loss: (1 - w) MPJPE + w L1 (mean absolute error over every coordinate)."""
    return (1.0 - l1_weight) * mpjpe_loss(pred, target) + l1_weight * fn.l1_loss(pred, target)


def refinement_loss(
    refined: Tensor, target: Tensor, layout: str | SkeletonLayout, symmetry_weight: float = 0.01
) -> Tensor:
    """The refinement's loss: MPJPE(refined, target) + ``symmetry_weight`` * sym(refined)."""
    return mpjpe_loss(refined, target) + symmetry_weight * symmetry_penalty(refined, layout)
