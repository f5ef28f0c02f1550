"""The derived hard-pose set (docs/model.md, "Evaluation protocols"): the test poses farthest from any training pose."""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from mlpgraph.layouts import root_relative
from mlpgraph.progress import progress

log = logging.getLogger(__name__)


def derive_hard_poses(
    train_poses_3d: np.ndarray | torch.Tensor,
    test_poses_3d: np.ndarray | torch.Tensor,
    every: int = 5,
    fraction: float = 0.05,
    chunk: int = 8192,
    root: int = 0,
    device: str | torch.device = "cpu",
    memory_mb: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """The hardest test poses: (indices into the test set, hardness in mm), hardest first.

    Candidates are every ``every``-th test frame (0, every, 2 * every, ...). A candidate's hardness
    is the distance to its nearest training pose, measured as the mean per-joint Euclidean distance
    of the root-relative poses (``root``: the layout's root joint) in mm; exact, over every
    training pose. The top ``ceil(fraction * candidates)`` are kept; the order is a stable sort by
    decreasing hardness, so ties go to the lower index and the result is deterministic.
    Poses are (M, J, 3) / (N, J, 3) metres; for the blocks see :func:`_nearest_distances`.
    """
    if every < 1 or not 0.0 < fraction <= 1.0 or chunk < 1:
        raise ValueError(
            f"derive_hard_poses: need every >= 1, 0 < fraction <= 1, chunk >= 1 (got {every}, {fraction}, {chunk})"
        )
    device = torch.device(device)
    candidates = torch.arange(0, len(test_poses_3d), every)
    test = _joint_major_mm(torch.as_tensor(test_poses_3d)[candidates], root, device)
    train = _joint_major_mm(train_poses_3d, root, device)
    if train.shape[0] != test.shape[0]:
        raise ValueError(f"derive_hard_poses: train poses have {train.shape[0]} joints, test {test.shape[0]}")
    if train.shape[1] == 0 or test.shape[1] == 0:
        raise ValueError("derive_hard_poses: empty training or test poses")
    hardness = _nearest_distances(test, train, chunk, memory_mb).cpu().double().numpy()
    keep = math.ceil(fraction * test.shape[1])
    order = np.argsort(-hardness, kind="stable")[:keep]
    return candidates.numpy()[order], hardness[order]


def _joint_major_mm(poses: np.ndarray | torch.Tensor, root: int, device: torch.device) -> torch.Tensor:
    """(N, J, 3) metre poses as root-relative float32 mm on ``device``, joint-major (J, N, 3)."""
    t = torch.as_tensor(poses).to(device=device, dtype=torch.float32)
    if t.dim() != 3 or t.shape[-1] != 3:
        raise ValueError(f"derive_hard_poses: poses must have shape (N, J, 3), got {tuple(t.shape)}")
    return (root_relative(t, root) * 1000.0).transpose(0, 1).contiguous()


def _nearest_distances(test: torch.Tensor, train: torch.Tensor, chunk: int, memory_mb: int) -> torch.Tensor:
    """Each test pose's smallest mean per-joint distance to any training pose; both joint-major (J, N, 3).

    Computed in blocks of (test chunk, ``chunk`` training poses, J) distances (``torch.cdist`` per
    joint, differences not the matrix-product expansion, so near neighbours lose no precision) in
    float32 on the poses' device; the test chunk is sized so that one block stays within about ``memory_mb``.
    """
    num_joints, num_test, num_train = test.shape[0], test.shape[1], train.shape[1]
    chunk = min(chunk, num_train)
    test_chunk = max(1, min(num_test, memory_mb * 2**20 // (2 * 4 * num_joints * chunk)))
    nearest = torch.empty(num_test, dtype=torch.float32, device=test.device)
    starts = range(0, num_test, test_chunk)
    log.info("hard poses: %d candidates x %d training poses, blocks of %d x %d", num_test, num_train, test_chunk, chunk)
    with torch.inference_mode():
        for a in progress(starts, desc="hard poses", total=len(starts), leave=False):
            block = test[:, a : a + test_chunk]
            best = torch.full((block.shape[1],), math.inf, device=test.device)
            for b in range(0, num_train, chunk):
                dist = torch.cdist(block, train[:, b : b + chunk], compute_mode="donot_use_mm_for_euclid_dist")
                best = torch.minimum(best, dist.mean(dim=0).amin(dim=1))
            nearest[a : a + block.shape[1]] = best
    return nearest
