"""Reader of the release's hard-pose file (docs/model.md, "Evaluation protocols")."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlpgraph.data.formats.checks import input_error, load_with_keys, location, paired_poses, target_layout
from mlpgraph.layouts import SkeletonLayout


@dataclass
class HardPoses:
    """A user-supplied hard-pose set: 2D normalised, 3D root-relative metres, in one layout."""

    poses_2d: np.ndarray
    poses_3d: np.ndarray
    layout: SkeletonLayout


def _first_item(value: Any, where: str) -> Any:
    """Item 0 of the release's object arrays; a plain numeric array is taken as it is."""
    if isinstance(value, np.ndarray) and value.dtype.hasobject:
        if value.size == 0:
            raise input_error(where, "object array is empty; expected item 0 to be the poses")
        return value.reshape(-1)[0]
    return value


def read_hard_poses(
    path: str | os.PathLike[str], layout: str | SkeletonLayout = "h36m16"
) -> HardPoses:
    """Read the release's hard-pose file: keys ``pose_3d``, ``pose_2d``.

    Each is an object array whose item 0 is (N, J, 3) / (N, J, 2); 2D must be normalised screen
    coordinates, 3D metres (made root-relative here).
    """
    target = target_layout(layout)
    content = load_with_keys(path, ("pose_3d", "pose_2d"))
    p2d = _first_item(content["pose_2d"], location(path, "pose_2d"))
    p3d = _first_item(content["pose_3d"], location(path, "pose_3d"))
    poses_2d, poses_3d = paired_poses(path, "pose_2d", "pose_3d", p2d, p3d, target)
    return HardPoses(poses_2d=poses_2d, poses_3d=poses_3d, layout=target)
