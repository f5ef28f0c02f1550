"""Reader of the MPI-INF-3DHP test set in PoseAug's or P-STMO's format (docs/model.md, "Evaluation protocols")."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlpgraph.cameras import check_in_image, normalise_screen
from mlpgraph.data.formats.checks import (
    as_dict,
    check_body,
    check_millimetres,
    check_pixels,
    check_sequence,
    input_error,
    location,
    paired_poses,
    target_layout,
)
from mlpgraph.errors import UserInputError
from mlpgraph.io import load_community_npz
from mlpgraph.layouts import MPI3DHP17, SkeletonLayout, root_relative, select_joints

log = logging.getLogger(__name__)

# MPI-INF-3DHP test sequences: image size (w, h) and scene kind (docs/model.md, "Evaluation protocols").
MPI3DHP_SEQUENCES: dict[str, tuple[tuple[int, int], str]] = {
    "TS1": ((2048, 2048), "GS"),
    "TS2": ((2048, 2048), "GS"),
    "TS3": ((2048, 2048), "noGS"),
    "TS4": ((2048, 2048), "noGS"),
    "TS5": ((1920, 1080), "outdoor"),
    "TS6": ((1920, 1080), "outdoor"),
}


@dataclass
class Test3DHP:
    """MPI-INF-3DHP test poses: 2D normalised screen coordinates, 3D root-relative metres.

    ``scene`` is "GS"/"noGS"/"outdoor" per sample (None for PoseAug's file, which has no labels);
    ``sequence`` is the test sequence per sample ("TS1".."TS6"; "all" for PoseAug's file).
    """

    poses_2d: np.ndarray
    poses_3d: np.ndarray
    scene: np.ndarray | None
    sequence: np.ndarray
    source_format: str
    layout: SkeletonLayout


_3DHP_FORMATS = (
    "expected PoseAug's test_3dhp.npz (keys 'pose2d', 'pose3d') or P-STMO's data_test_3dhp.npz "
    "(key 'data' = {TS1..TS6: {'data_2d', 'data_3d', 'valid'}})"
)


def read_3dhp_test(
    path: str | os.PathLike[str], layout: str | SkeletonLayout = "h36m16"
) -> Test3DHP:
    """Read a 3DHP test file in PoseAug's or P-STMO's format (detected from the keys)."""
    target = target_layout(layout)
    content = load_community_npz(path)
    if {"pose2d", "pose3d"} <= set(content):
        return _read_3dhp_poseaug(path, content, target)
    if "data" in content:
        return _read_3dhp_pstmo(path, content["data"], target)
    raise UserInputError(
        f"{path}: unknown 3DHP test format (keys {sorted(content)}); {_3DHP_FORMATS}"
    )


def _read_3dhp_poseaug(path: Any, content: dict[str, Any], target: SkeletonLayout) -> Test3DHP:
    """PoseAug's flat ``pose2d`` (normalised) and ``pose3d`` (metres), without scene labels."""
    poses_2d, poses_3d = paired_poses(
        path, "pose2d", "pose3d", content["pose2d"], content["pose3d"], target
    )
    return Test3DHP(
        poses_2d=poses_2d,
        poses_3d=poses_3d,
        scene=None,
        sequence=np.full(poses_2d.shape[0], "all"),
        source_format="poseaug",
        layout=target,
    )


def _sequence_sort_key(name: str) -> tuple[int, str]:
    """TS1, TS2, ..., TS10 in numeric order; other names last."""
    match = re.fullmatch(r"TS(\d+)", name)
    return (int(match.group(1)) if match else 1 << 30, name)


def _pstmo_arrays(where: str, seq: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One P-STMO sequence's (pixels, millimetres, valid) after checking their keys and shapes."""
    if not isinstance(seq, dict):
        raise input_error(where, f"must be a dict, got {type(seq).__name__}")
    missing = [k for k in ("data_2d", "data_3d", "valid") if k not in seq]
    if missing:
        raise input_error(where, f"missing key {missing[0]!r} (keys present: {sorted(seq)})")
    pixels, mm, valid = seq["data_2d"], seq["data_3d"], seq["valid"]
    for what, arr, coords in (("data_2d", pixels, 2), ("data_3d", mm, 3)):
        if not isinstance(arr, np.ndarray) or arr.ndim != 3 or arr.shape[-1] != coords:
            shape = getattr(arr, "shape", type(arr).__name__)
            raise input_error(where, f"{what} must have shape (T, 17, {coords}), got {shape}")
        if arr.shape[1] != MPI3DHP17.num_joints:
            raise input_error(where, f"{what} has {arr.shape[1]} joints; expected 17 (3DHP order)")
    num_frames = mm.shape[0]
    if pixels.shape[0] != num_frames:
        raise input_error(where, f"data_2d has {pixels.shape[0]} frames, data_3d has {num_frames}")
    if not isinstance(valid, np.ndarray) or valid.size != num_frames:
        size = getattr(valid, "size", type(valid).__name__)
        raise input_error(where, f"valid must hold one flag per frame ({num_frames}), got {size}")
    if not (np.issubdtype(valid.dtype, np.number) or valid.dtype == np.bool_):
        raise input_error(where, f"valid has dtype {valid.dtype}; expected numbers or booleans")
    return pixels, mm, valid


def _pstmo_sequence(
    path: Any, name: str, seq: Any, target: SkeletonLayout
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(2D, 3D, scene, sequence name) of one sequence's valid frames in ``target``; None if none is valid."""
    where = f"{path}: key 'data', sequence {name}"
    if name not in MPI3DHP_SEQUENCES:
        raise input_error(
            where,
            f"unknown sequence (expected {', '.join(MPI3DHP_SEQUENCES)}; image size "
            "and scene depend on it)",
        )
    pixels, mm, valid = _pstmo_arrays(where, seq)
    keep = valid.reshape(-1) != 0
    if not keep.any():
        log.warning("%s: no valid frames; skipped", where)
        return None
    pixels = check_sequence(pixels[keep], where, 2, (17,), "data_2d")
    mm = check_sequence(mm[keep], where, 3, (17,), "data_3d")
    check_pixels(pixels, where, "data_2d")
    check_body(mm, where, "data_3d")
    check_millimetres(mm, where, "data_3d")
    (width, height), scene = MPI3DHP_SEQUENCES[name]
    check_in_image(pixels, width, height, where, "data_2d")
    count = int(keep.sum())
    return (
        normalise_screen(select_joints(pixels, MPI3DHP17, target), width, height),
        root_relative(select_joints(mm, MPI3DHP17, target) / 1000.0, target.root),
        np.full(count, scene),
        np.full(count, name),
    )


def _read_3dhp_pstmo(path: Any, data: Any, target: SkeletonLayout) -> Test3DHP:
    """P-STMO's per-sequence pixels and millimetres (valid frames only), with scene labels."""
    sequences = as_dict(data, location(path, "data"), "key 'data'")
    parts = [_pstmo_sequence(path, name, sequences[name], target) for name in sorted(sequences, key=_sequence_sort_key)]
    kept = [part for part in parts if part is not None]
    if not kept:
        raise input_error(location(path, "data"), "no valid frames in any sequence")
    poses_2d, poses_3d, scenes, names = zip(*kept, strict=True)
    return Test3DHP(
        poses_2d=np.concatenate(poses_2d).astype(np.float32),
        poses_3d=np.concatenate(poses_3d).astype(np.float32),
        scene=np.concatenate(scenes),
        sequence=np.concatenate(names),
        source_format="pstmo",
        layout=target,
    )
