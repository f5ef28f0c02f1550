"""Pose refinement (Cai et al. ICCV'19 ``post_refine``, docs/baselines.md section 5) and the 2D lifting it needs.

The refinement blends the network's root-relative pose P with X~, the centre frame's 2D lifted
with P's depths: a per-joint, per-axis sigmoid gate s gives xy = s * P_xy + (1 - s) * X~_xy, and
z = P_z. X~ needs the absolute root depth: ``root_depth: gt`` (the release's oracle) or
``estimate_root_depth`` (from the 2D scale and the training set's mean bone lengths).
:func:`lifted_estimate` is X~ for samples of a :class:`~mlpgraph.data.batches.PoseArrays`, the one
place where training and evaluation build it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from mlpgraph.data import schema
from mlpgraph.errors import UserInputError
from mlpgraph.layouts import SkeletonLayout, get_layout, root_relative

if TYPE_CHECKING:
    from mlpgraph.data.batches import PoseArrays

ROOT_DEPTHS = ("gt", "estimated")


class PoseRefinement(nn.Module):
    """(P, X~), each (N, J, 3) -> refined (N, J, 3).

    ``cat((P, X~), -1)`` flattened to 6J (per joint: P_x, P_y, P_z, X~_x, X~_y, X~_z), then
    Linear(6J -> 1024), ReLU, Dropout(0.5), Linear(1024 -> 2J), Sigmoid = s (N, J, 2);
    xy = s * P_xy + (1 - s) * X~_xy, z = P_z. 132,128 parameters at J = 16, 140,322 at J = 17.
    """

    def __init__(self, layout: str | SkeletonLayout = "h36m16", hidden_dim: int = 1024, dropout: float = 0.5) -> None:
        super().__init__()
        lay = layout if isinstance(layout, SkeletonLayout) else get_layout(layout)
        if not isinstance(hidden_dim, int) or hidden_dim < 1:
            raise ValueError(f"hidden_dim must be a positive integer, got {hidden_dim!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.layout = lay
        self.num_joints = lay.num_joints
        self.config: dict[str, Any] = {"layout": lay.name, "hidden_dim": hidden_dim, "dropout": float(dropout)}
        j = lay.num_joints
        self.net = nn.Sequential(
            nn.Linear(6 * j, hidden_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, 2 * j),
            nn.Sigmoid(),
        )

    def forward(self, pred: Tensor, lifted: Tensor) -> Tensor:
        """Refined (N, J, 3) from the prediction P and the lifted estimate X~, both (N, J, 3)."""
        for name, t in (("pred", pred), ("lifted", lifted)):
            if t.dim() != 3 or t.shape[1:] != (self.num_joints, 3):
                raise ValueError(
                    f"PoseRefinement: {name} must have shape (N, {self.num_joints}, 3) for layout "
                    f"{self.layout.name}, got {tuple(t.shape)}"
                )
        if pred.shape[0] != lifted.shape[0]:
            raise ValueError(f"PoseRefinement: batch sizes differ, pred {pred.shape[0]} vs lifted {lifted.shape[0]}")
        n = pred.shape[0]
        gate = self.net(torch.cat((pred, lifted), dim=-1).reshape(n, -1)).view(n, self.num_joints, 2)
        xy = gate * pred[..., :2] + (1 - gate) * lifted[..., :2]
        return torch.cat((xy, pred[..., 2:]), dim=-1)


def lift_with_depth(uv: Tensor, pred: Tensor, root_depth: Tensor, focal: Tensor, centre: Tensor) -> Tensor:
    """X~: the 2D ``uv`` (N, J, 2) back-projected with ``pred``'s (N, J, 3) depths, root-relative.

    As the release's ``get_uvd2xyz``: depth_0 = z_root, depth_j = z_root + P_j,z (j >= 1);
    (x, y)_j = (uv_j - c) * depth_j / f; then subtract the root, so row 0 is 0 and z_j = P_j,z.
    ``root_depth`` (N,) is the absolute root depth (metres), ``focal`` and ``centre`` (N, 2) are the
    normalised intrinsics (f = focal / w * 2, c = normalised principal point). The root is joint 0.
    """
    n, _ = _check_pose_pair(uv, pred, "lift_with_depth")
    root_depth = root_depth.reshape(n, 1)
    depth = root_depth + pred[..., 2]
    depth = torch.cat((root_depth, depth[:, 1:]), dim=1)
    xy = (uv - centre.reshape(n, 1, 2)) * depth[..., None] / focal.reshape(n, 1, 2)
    xyz = torch.cat((xy, depth[..., None]), dim=-1)
    return root_relative(xyz, 0)


def estimate_root_depth(
    uv: Tensor,
    pred: Tensor,
    focal: Tensor,
    mean_bone_lengths: Tensor,
    layout: str | SkeletonLayout,
    centre: Tensor | None = None,
    eps: float = 1e-8,
) -> Tensor:
    """Absolute root depth z_root (N,) from the 2D scale, for ``root_depth: estimated``.

    1. Rescale P (root-relative, root = the layout's root joint) so that its total bone length equals
       that of ``mean_bone_lengths`` (B,) (the training set's mean per bone, in ``layout.bones``
       order): P' = k P, k = sum_b L_b / sum_b |bone_b(P)|. This fixes the metric size of the body.
    2. With the pinhole model u_j = c + f (X_r + P'_j,xy) / (z_root + P'_j,z) and the root's ray
       X_r = z_root (u_r - c) / f, each joint gives, per axis,
       z_root (r_j - r_r) = P'_j,xy - r_j P'_j,z with rays r = (u - c) / f; the least-squares
       solution is z_root = sum_j (r_j - r_r).(P'_j,xy - r_j P'_j,z) / sum_j |r_j - r_r|^2.
    Exact for a noise-free pose with the right bone lengths; errors in P's proportions and depths
    and in the 2D map into z_root about proportionally. ``centre`` defaults to the image centre,
    which is 0 in normalised screen coordinates.
    """
    lay = layout if isinstance(layout, SkeletonLayout) else get_layout(layout)
    n, j = _check_pose_pair(uv, pred, "estimate_root_depth")
    if j != lay.num_joints:
        raise ValueError(f"estimate_root_depth: {j} joints but layout {lay.name} has {lay.num_joints}")
    bones = torch.as_tensor(lay.bones, device=pred.device)
    lengths = torch.as_tensor(mean_bone_lengths, dtype=pred.dtype, device=pred.device)
    if lengths.shape != (len(bones),):
        raise ValueError(
            f"estimate_root_depth: mean_bone_lengths must have shape ({len(bones)},) for layout {lay.name}, "
            f"got {tuple(lengths.shape)}"
        )
    root = lay.root
    pose = root_relative(pred, root)
    pose_lengths = (pose[:, bones[:, 0]] - pose[:, bones[:, 1]]).norm(dim=-1).sum(dim=1)
    pose = pose * (lengths.sum() / pose_lengths.clamp_min(eps))[:, None, None]
    c = torch.zeros_like(uv[:, :1]) if centre is None else centre.reshape(n, 1, 2)
    rays = (uv - c) / focal.reshape(n, 1, 2)
    diff = root_relative(rays, root)
    target = pose[..., :2] - rays * pose[..., 2:]
    return (diff * target).sum(dim=(1, 2)) / (diff * diff).sum(dim=(1, 2)).clamp_min(eps)


def _check_pose_pair(uv: Tensor, pred: Tensor, where: str) -> tuple[int, int]:
    if uv.dim() != 3 or uv.shape[-1] != 2:
        raise ValueError(f"{where}: uv must have shape (N, J, 2), got {tuple(uv.shape)}")
    if pred.dim() != 3 or pred.shape[-1] != 3 or pred.shape[:2] != uv.shape[:2]:
        raise ValueError(f"{where}: pred must have shape {(*uv.shape[:2], 3)} to match uv, got {tuple(pred.shape)}")
    return uv.shape[0], uv.shape[1]


def mean_bone_lengths(poses_3d: Tensor, layout: str | SkeletonLayout) -> Tensor:
    """(B,) mean length of each of ``layout.bones`` over poses (N, J, 3): the training set's body size."""
    lay = layout if isinstance(layout, SkeletonLayout) else get_layout(layout)
    poses = torch.as_tensor(poses_3d)
    bones = torch.as_tensor(lay.bones, device=poses.device)
    return (poses[:, bones[:, 0]] - poses[:, bones[:, 1]]).norm(dim=-1).mean(dim=0)


def refinement_input(
    uv: Tensor,
    pred: Tensor,
    intrinsics: Tensor,
    layout: str | SkeletonLayout,
    root_depth: Tensor | None = None,
    bone_lengths: Tensor | None = None,
    flipped: Tensor | bool = False,
) -> Tensor:
    """X~ for a batch: the centre frame's 2D ``uv`` lifted with ``pred``'s depths.

    ``intrinsics`` (N, >= 4) holds the normalised (f_x, f_y, c_x, c_y) of each sample's camera (the
    processed file's per-sequence ``intrinsics``). ``root_depth`` (N,) is the ground-truth absolute
    root depth (``root_depth: gt``, the release's oracle); without it the depth is estimated from
    the 2D with ``bone_lengths`` (``root_depth: estimated``). Samples that were flipped horizontally
    (``flipped``: bool or (N,) mask) see a mirrored principal point, c_x -> -c_x.
    """
    focal = intrinsics[:, 0:2]
    centre = intrinsics[:, 2:4].clone()
    mirror = torch.as_tensor(flipped, device=uv.device, dtype=torch.bool).expand(uv.shape[0])
    centre[:, 0] = torch.where(mirror, -centre[:, 0], centre[:, 0])
    if root_depth is None:
        if bone_lengths is None:
            raise ValueError("refinement_input: without a ground-truth root depth, bone_lengths are needed")
        root_depth = estimate_root_depth(uv, pred, focal, bone_lengths, layout, centre)
    return lift_with_depth(uv, pred, root_depth, focal, centre)


def lifted_estimate(
    data: PoseArrays,
    indices: Tensor,
    windows: Tensor,
    pred: Tensor,
    pad: int,
    root_depth: str = "gt",
    bone_lengths: Tensor | None = None,
    flipped: Tensor | bool = False,
) -> Tensor:
    """X~ for samples ``indices`` of ``data``: the centre frame of ``windows`` lifted with ``pred``'s depths.

    ``flipped`` (bool or (N,) mask) says which samples' windows were flipped horizontally.

    Intrinsics are each sample's sequence's (``meta['intrinsics']``); ``root_depth`` "gt" uses
    ``meta['root_3d'][:, 2]`` (the release's oracle, unchanged by a horizontal flip), "estimated"
    estimates it from the 2D with ``bone_lengths``.
    """
    if schema.INTRINSICS not in data.meta:
        raise UserInputError("refinement needs meta['intrinsics'] (per sequence) in the data")
    indices = indices.to(device=data.device, dtype=torch.long)
    intrinsics = data.meta[schema.INTRINSICS][data.sequence[indices]].to(pred.dtype)
    depth = None
    if root_depth == "gt":
        if schema.ROOT_3D not in data.meta:
            raise UserInputError("refinement with root_depth 'gt' needs meta['root_3d'] in the data")
        depth = data.meta[schema.ROOT_3D][indices, 2].to(pred.dtype)
    elif bone_lengths is None:
        raise ValueError("lifted_estimate: root_depth 'estimated' needs bone_lengths")
    uv = windows[:, pad].to(pred.dtype)
    return refinement_input(uv, pred, intrinsics, data.layout, depth, bone_lengths, flipped)
