"""The derived hard-pose set (docs/model.md, "Evaluation protocols"): the test poses farthest from any training pose."""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from mlpgraph.evaluation.nearest_pose import SearchWork, hardest_poses, nearest_distances_brute_force
from mlpgraph.layouts import root_relative

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
    brute_force: bool = False,
    work: SearchWork | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The hardest test poses: (indices into the test set, hardness in mm), hardest first.

    Candidates are every ``every``-th test frame (0, every, 2 * every, ...). A candidate's hardness
    is the distance to its nearest training pose, measured as the mean per-joint Euclidean distance
    of the root-relative poses (``root``: the layout's root joint) in mm; exact, over every
    training pose. The top ``ceil(fraction * candidates)`` are kept; the order is a stable sort by
    decreasing hardness, so ties go to the lower index and the result is deterministic.
    Poses are (M, J, 3) / (N, J, 3) metres, searched on ``device`` by
    :func:`~mlpgraph.evaluation.nearest_pose.hardest_poses` (bound and refine); ``brute_force``
    compares every pair instead (the reference, in blocks of ``chunk`` training poses within about
    ``memory_mb``), with the same result bit for bit. ``work`` (if given) receives the search's counts.
    """
    if every < 1 or not 0.0 < fraction <= 1.0 or chunk < 1:
        raise ValueError(
            f"derive_hard_poses: need every >= 1, 0 < fraction <= 1, chunk >= 1 (got {every}, {fraction}, {chunk})"
        )
    device = torch.device(device)
    candidates = torch.arange(0, len(test_poses_3d), every)
    test = _root_relative_mm(torch.as_tensor(test_poses_3d)[candidates], root, device)
    train = _root_relative_mm(train_poses_3d, root, device)
    if train.shape[1] != test.shape[1]:
        raise ValueError(f"derive_hard_poses: train poses have {train.shape[1]} joints, test {test.shape[1]}")
    if len(train) == 0 or len(test) == 0:
        raise ValueError("derive_hard_poses: empty training or test poses")
    keep = math.ceil(fraction * len(test))
    log.info("hard poses: the %d hardest of %d candidates, %d training poses", keep, len(test), len(train))
    if brute_force:
        hardness = nearest_distances_brute_force(test, train, chunk, memory_mb).cpu().double().numpy()
        order = np.argsort(-hardness, kind="stable")[:keep]
        return candidates.numpy()[order], hardness[order]
    found, hardness = hardest_poses(test, train, keep, work)
    return candidates.numpy()[found.cpu().numpy()], hardness.cpu().double().numpy()


def _root_relative_mm(poses: np.ndarray | torch.Tensor, root: int, device: torch.device) -> torch.Tensor:
    """(N, J, 3) metre poses as root-relative float32 mm on ``device``."""
    t = torch.as_tensor(poses).to(device=device, dtype=torch.float32)
    if t.dim() != 3 or t.shape[-1] != 3:
        raise ValueError(f"derive_hard_poses: poses must have shape (N, J, 3), got {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError("derive_hard_poses: poses must be finite")
    return root_relative(t, root).mul_(1000.0).contiguous()
