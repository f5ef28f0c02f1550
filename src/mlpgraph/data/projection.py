"""Turning world-space 3D sequences into the community's per-camera 2D files.

Used by the synthetic generator and by fetch for custom data sets without 2D, so both make
their 2D exactly the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlpgraph.cameras import CameraSet
from mlpgraph.data.schema import Positions2D, Positions3D
from mlpgraph.layouts import SkeletonLayout


def project_dataset(positions_3d: Positions3D, cameras: CameraSet) -> Positions2D:
    """Project every (subject, action) world sequence (T, J, 3) through each of the subject's cameras.

    Returns ``{subject: {action: [ (T, J, 2) float32 pixels per camera ]}}``.
    """
    out: Positions2D = {}
    for subject, actions in positions_3d.items():
        cams = cameras.cameras(subject)
        out[subject] = {
            action: [cam.project(cam.world_to_camera(seq.astype(np.float64))).astype(np.float32) for cam in cams]
            for action, seq in actions.items()
        }
    return out


def metadata_2d(layout: SkeletonLayout) -> dict[str, Any]:
    """The ``metadata`` entry of a community 2D file whose sequences are in ``layout``."""
    return {
        "layout_name": "h36m",
        "num_joints": layout.num_joints,
        "keypoints_symmetry": [list(layout.left_joints), list(layout.right_joints)],
    }


def y_up_to_z_up(points: np.ndarray) -> np.ndarray:
    """Map a right-handed Y-up frame to the right-handed Z-up one: (x, y, z) -> (x, -z, y)."""
    return np.stack([points[..., 0], -points[..., 2], points[..., 1]], axis=-1)


def centre_on_ground(sequence: np.ndarray, root: int = 0) -> np.ndarray:
    """Shift a Z-up world sequence (T, J, 3) so its mean root position on the ground plane is the origin."""
    offset = sequence[:, root, :2].mean(axis=0)
    shifted = sequence.copy()
    shifted[..., :2] -= offset
    return shifted
