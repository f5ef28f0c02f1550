"""Checks shared by the readers of the community's files: locations, shapes, units, layouts.

Every check raises :class:`UserInputError` with one line that names the file and, where it
applies, the key, subject, action and camera of the problem (see :func:`location`).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from mlpgraph.errors import UserInputError
from mlpgraph.io import load_community_npz
from mlpgraph.layouts import (
    MODEL_LAYOUTS,
    SkeletonLayout,
    get_layout,
    layout_for_joint_count,
    root_relative,
    select_joints,
)

JOINT_COUNTS_3D = (16, 17, 32)
JOINT_COUNTS_2D = (16, 17)
# Typical body extent (largest joint offset from the root, median over frames) per unit: about
# 1 in metres, 100 in centimetres, 1000 in millimetres. Upper bounds of each unit's range:
MIN_BODY_EXTENT_M = 0.1
MAX_BODY_EXTENT_M = 10.0
MAX_BODY_EXTENT_CM = 300.0
MAX_BODY_EXTENT_MM = 10_000.0
# A frame whose extent exceeds this many times the sequence's typical extent is a glitch; one
# below this fraction of it has all joints at one point (all-zero poses).
OUTLIER_EXTENT_FACTOR = 10.0
COLLAPSED_EXTENT_FRACTION = 1e-3
# World coordinates of the 3D (metres) lie in a capture volume, not kilometres away.
MAX_WORLD_M = 1000.0
# Normalised screen coordinates lie within about [-1, 1]; pixels of any real image exceed this.
MAX_NORMALISED_ABS = 2.0
# Normalised coordinates (x across [-1, 1], y across +-h/w) more than an image size beyond the
# edges, for aspect ratios up to 2:1: farther is another unit.
MAX_NORMALISED_LIMIT = 6.0
# The community's 2D detections run a few frames past the mocap (docs/data.md): at most this
# many frames, or this fraction of the 3D's frames, are trimmed; a longer 2D is refused.
MAX_EXTRA_2D_FRAMES = 100
MAX_EXTRA_2D_FRACTION = 0.05


def location(
    path: str | os.PathLike[str],
    key: str | None = None,
    subject: str | None = None,
    action: str | None = None,
    camera: int | None = None,
) -> str:
    """``file: key K, subject S, action 'A', camera C`` with the parts that apply."""
    parts = []
    if key is not None:
        parts.append(f"key {key!r}")
    if subject is not None:
        parts.append(f"subject {subject}")
    if action is not None:
        parts.append(f"action {action!r}")
    if camera is not None:
        parts.append(f"camera {camera}")
    return f"{path}: " + ", ".join(parts) if parts else str(path)


def input_error(where: str, problem: str) -> UserInputError:
    """The error for ``problem`` found at ``where`` (a :func:`location`)."""
    return UserInputError(f"{where}: {problem}")


def load_with_keys(path: str | os.PathLike[str], keys: tuple[str, ...]) -> dict[str, Any]:
    """Load a community npz and require ``keys`` in it."""
    content = load_community_npz(path)
    missing = [k for k in keys if k not in content]
    if missing:
        present = sorted(content)
        raise UserInputError(f"{path}: missing key {missing[0]!r} (keys present: {present})")
    return content


def check_sequence(
    array: Any, where: str, coords: int, joint_counts: tuple[int, ...], what: str
) -> np.ndarray:
    """Validate one (T, J, coords) float, finite, non-empty sequence; return it as float32."""
    if not isinstance(array, np.ndarray):
        raise input_error(where, f"{what} must be a numpy array, got {type(array).__name__}")
    if array.ndim != 3 or array.shape[-1] != coords:
        raise input_error(where, f"{what} must have shape (T, J, {coords}), got {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise input_error(where, f"{what} has dtype {array.dtype}; expected floating point")
    if array.shape[0] == 0:
        raise input_error(where, f"{what} is empty (0 frames)")
    if array.shape[1] not in joint_counts:
        expected = ", ".join(map(str, joint_counts))
        raise input_error(where, f"{what} has {array.shape[1]} joints; expected one of {expected}")
    with np.errstate(over="ignore", invalid="ignore"):
        converted = np.ascontiguousarray(array, dtype=np.float32)  # the dtype the pipeline uses
    bad = int(np.count_nonzero(~np.isfinite(converted)))
    if bad:
        if np.isfinite(array).all():
            raise input_error(where, f"{what} contains {bad} values beyond float32's range (|x| > 3.4e38)")
        raise input_error(where, f"{what} contains {bad} NaN or infinite values")
    return converted


def frame_extents(poses: np.ndarray) -> np.ndarray:
    """(T,) largest joint offset (any axis) from the root (joint 0) per frame."""
    offsets = np.abs(root_relative(poses.astype(np.float64), 0)).reshape(poses.shape[0], -1)
    return offsets.max(axis=1)


def body_extent(poses: np.ndarray) -> float:
    """Median over frames of the largest joint offset from the root (joint 0): ~1 in metres."""
    return float(np.median(frame_extents(poses)))


def check_body(poses: np.ndarray, where: str, what: str) -> None:
    """Refuse frames whose joints all coincide (all-zero poses) or lie far beyond the sequence's typical extent."""
    extents = frame_extents(poses)
    typical = float(np.median(extents))
    collapsed = extents <= COLLAPSED_EXTENT_FRACTION * typical
    if collapsed.any():
        raise input_error(
            where,
            f"{what} has {int(collapsed.sum())} of {len(extents)} frames with all joints at one point "
            f"(first: frame {int(np.argmax(collapsed))}); zero-length bones are not a pose",
        )
    far = extents > OUTLIER_EXTENT_FACTOR * typical
    if far.any():
        frame = int(np.argmax(far))
        raise input_error(
            where,
            f"{what} frame {frame}: a joint lies {extents[frame]:.4g} from the root, over "
            f"{OUTLIER_EXTENT_FACTOR:g} times the typical body extent {typical:.4g} (a glitch?)",
        )


def guess_unit(extent: float) -> str | None:
    """The length unit a typical body extent suggests, or None when no unit makes it a body."""
    if MIN_BODY_EXTENT_M <= extent <= MAX_BODY_EXTENT_M:
        return "metres"
    if MAX_BODY_EXTENT_M < extent <= MAX_BODY_EXTENT_CM:
        return "centimetres"
    if MAX_BODY_EXTENT_CM < extent <= MAX_BODY_EXTENT_MM:
        return "millimetres"
    return None


def _check_unit(poses: np.ndarray, where: str, what: str, expected: str) -> None:
    """Refuse 3D poses whose body extent says another unit than ``expected``."""
    extent = body_extent(poses)
    unit = guess_unit(extent)
    if unit is None:
        raise input_error(
            where,
            f"{what} has an implausible body size in any unit (typical body extent {extent:.4g}; "
            f"about 1 m expected, in {expected})",
        )
    if unit != expected:
        raise input_error(where, f"{what} looks like {unit}; expected {expected} (typical body extent {extent:.4g})")


def check_metres(poses: np.ndarray, where: str, what: str) -> None:
    """Refuse 3D poses whose body extent says another unit than metres."""
    _check_unit(poses, where, what, "metres")


def check_millimetres(poses: np.ndarray, where: str, what: str) -> None:
    """Refuse 3D poses whose body extent says another unit than millimetres."""
    _check_unit(poses, where, what, "millimetres")


def check_world(poses: np.ndarray, where: str, what: str) -> None:
    """Refuse world 3D (metres) placed farther than :data:`MAX_WORLD_M` from the origin."""
    largest = float(np.abs(poses).max())
    if largest > MAX_WORLD_M:
        raise input_error(
            where,
            f"{what} reaches {largest:.4g} m from the world origin; expected a capture volume "
            f"(at most {MAX_WORLD_M:g} m)",
        )


def check_not_all_collapsed(points: np.ndarray, where: str, what: str) -> None:
    """Refuse 2D whose joints coincide in every frame (an all-zero sequence)."""
    if not frame_extents(points).any():
        raise input_error(where, f"{what} has all joints at one point in every frame (all zeros?)")


def check_pixels(points: np.ndarray, where: str, what: str) -> None:
    """Refuse 2D points that all lie within the normalised range."""
    check_not_all_collapsed(points, where, what)
    if float(np.abs(points).max()) <= MAX_NORMALISED_ABS:
        raise input_error(
            where,
            f"{what} looks normalised; expected pixels (all |values| <= {MAX_NORMALISED_ABS:g})",
        )


def check_normalised(points: np.ndarray, where: str, what: str) -> None:
    """Refuse 2D points whose typical magnitude says pixels, or that lie far outside the image."""
    typical = float(np.median(np.abs(points)))
    if typical > MAX_NORMALISED_ABS:
        raise input_error(
            where,
            f"{what} looks like pixels (median |value| {typical:.4g}); expected normalised "
            "screen coordinates",
        )
    largest = float(np.abs(points).max())
    if largest > MAX_NORMALISED_LIMIT:
        raise input_error(
            where,
            f"{what} lie far outside the image (|value| up to {largest:.4g}; normalised coordinates "
            f"are within about +-1, at most +-{MAX_NORMALISED_LIMIT:g} is accepted)",
        )


def check_extra_frames(frames_2d: int, frames_3d: int, where: str) -> None:
    """Refuse 2D shorter than the 3D, or longer by more than the community's few trimmed frames."""
    if frames_2d < frames_3d:
        raise input_error(
            where, f"2D sequence has {frames_2d} frames, the 3D has {frames_3d} (shorter 2D is refused)"
        )
    allowed = max(MAX_EXTRA_2D_FRAMES, int(MAX_EXTRA_2D_FRACTION * frames_3d))
    if frames_2d - frames_3d > allowed:
        raise input_error(
            where,
            f"2D sequence has {frames_2d} frames, the 3D has {frames_3d}: at most {allowed} extra 2D frames "
            "are trimmed (detections a few frames past the mocap); another recording or frame rate?",
        )


def as_dict(value: Any, where: str, what: str) -> dict[Any, Any]:
    """``value`` if it is a non-empty dict with string keys."""
    if not isinstance(value, dict):
        raise input_error(where, f"{what} must be a dict, got {type(value).__name__}")
    if not value:
        raise input_error(where, f"{what} is empty")
    for name in value:
        if not isinstance(name, str):
            raise input_error(where, f"{what} has a non-string key {name!r}")
    return value


def require_one_joint_count(path: Any, data: dict[str, dict[str, Any]], what: str) -> int:
    """The one joint count of all sequences (per camera for 2D); mixed counts are refused."""
    first: tuple[str, str, int] | None = None
    for subject, actions in data.items():
        for action, value in actions.items():
            for cam, seq in enumerate(value if isinstance(value, list) else [value]):
                joints = seq.shape[1]
                if first is None:
                    first = (subject, action, joints)
                elif joints != first[2]:
                    camera = cam if isinstance(value, list) else None
                    raise input_error(
                        location(path, subject=subject, action=action, camera=camera),
                        f"{what} sequence has {joints} joints, but subject {first[0]}, action "
                        f"{first[1]!r} has {first[2]} (one joint count per file)",
                    )
    assert first is not None  # as_dict refused empty containers
    return first[2]


def convert_layout(array: np.ndarray, target: SkeletonLayout, where: str, what: str) -> np.ndarray:
    """Joint axis from the layout implied by the joint count to ``target``, by joint name."""
    source = layout_for_joint_count(array.shape[1], where)
    missing = [n for n in target.joint_names if n not in source.joint_names]
    if missing:
        raise input_error(
            where,
            f"{what} has {source.num_joints} joints ({source.name}), which cannot give layout "
            f"{target.name} (no {', '.join(missing)})",
        )
    return np.ascontiguousarray(select_joints(array, source, target))


def target_layout(layout: str | SkeletonLayout) -> SkeletonLayout:
    """``layout`` as a :class:`SkeletonLayout`, refused unless a model can use it."""
    target = get_layout(layout)
    if target.name not in MODEL_LAYOUTS:
        raise UserInputError(f"layout {target.name!r}: expected one of {list(MODEL_LAYOUTS)}")
    return target


def paired_poses(
    path: Any, key_2d: str, key_3d: str, p2d: Any, p3d: Any, target: SkeletonLayout
) -> tuple[np.ndarray, np.ndarray]:
    """Validate flat (N, J, 2) normalised / (N, J, 3) metre arrays and map them to ``target``."""
    where_2d, where_3d = location(path, key_2d), location(path, key_3d)
    poses_2d = check_sequence(p2d, where_2d, 2, JOINT_COUNTS_2D, "2D poses")
    poses_3d = check_sequence(p3d, where_3d, 3, JOINT_COUNTS_2D, "3D poses")
    if poses_2d.shape[:2] != poses_3d.shape[:2]:
        raise input_error(
            where_2d,
            f"2D poses have shape {poses_2d.shape[:2]} (N, J), the 3D poses {poses_3d.shape[:2]}",
        )
    check_normalised(poses_2d, where_2d, "2D poses")
    check_body(poses_3d, where_3d, "3D poses")
    check_metres(poses_3d, where_3d, "3D poses")
    check_not_all_collapsed(poses_2d, where_2d, "2D poses")
    poses_2d = convert_layout(poses_2d, target, where_2d, "2D")
    poses_3d = root_relative(convert_layout(poses_3d, target, where_3d, "3D"), target.root)
    return poses_2d, poses_3d.astype(np.float32)
