"""Readers and validation of the community's data files (``data.md``, ``model.md``).

Every reader checks what it reads and raises :class:`UserInputError` with one line that names
the file and, where it applies, the key, subject, action and camera of the problem, e.g.
``data_2d_h36m_gt.npz: subject S9, action 'Walking 1', camera 2: 2D sequence has 95 frames, the
3D has 100 (shorter 2D is refused)``. Files are loaded through the restricted unpickler of
:mod:`mlpgraph.io`, never with plain ``allow_pickle=True``.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlpgraph.cameras import CameraSet, load_cameras
from mlpgraph.data import schema
from mlpgraph.errors import UserInputError
from mlpgraph.io import load_community_npz, sha256_file
from mlpgraph.layouts import (
    MODEL_LAYOUTS,
    MPI3DHP17,
    SkeletonLayout,
    get_layout,
    layout_for_joint_count,
    select_joints,
)

log = logging.getLogger(__name__)

Positions3D = dict[str, dict[str, np.ndarray]]
Positions2D = dict[str, dict[str, list[np.ndarray]]]

FPS = 50
JOINT_COUNTS_3D = (16, 17, 32)
JOINT_COUNTS_2D = (16, 17)
# A root-relative body spans about 1 m; anything above this many "metres" is millimetres.
MAX_BODY_EXTENT_M = 10.0
# Normalised screen coordinates lie within about [-1, 1]; pixels of any real image exceed this.
MAX_NORMALISED_ABS = 2.0

# MPI-INF-3DHP test sequences: image size (w, h) and scene kind (model.md).
MPI3DHP_SEQUENCES: dict[str, tuple[tuple[int, int], str]] = {
    "TS1": ((2048, 2048), "GS"),
    "TS2": ((2048, 2048), "GS"),
    "TS3": ((2048, 2048), "noGS"),
    "TS4": ((2048, 2048), "noGS"),
    "TS5": ((1920, 1080), "outdoor"),
    "TS6": ((1920, 1080), "outdoor"),
}


def _where(
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


def _fail(where: str, problem: str) -> UserInputError:
    return UserInputError(f"{where}: {problem}")


def _load(path: str | os.PathLike[str], keys: tuple[str, ...]) -> dict[str, Any]:
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
        raise _fail(where, f"{what} must be a numpy array, got {type(array).__name__}")
    if array.ndim != 3 or array.shape[-1] != coords:
        raise _fail(where, f"{what} must have shape (T, J, {coords}), got {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise _fail(where, f"{what} has dtype {array.dtype}; expected floating point")
    if array.shape[0] == 0:
        raise _fail(where, f"{what} is empty (0 frames)")
    if array.shape[1] not in joint_counts:
        expected = ", ".join(map(str, joint_counts))
        raise _fail(where, f"{what} has {array.shape[1]} joints; expected one of {expected}")
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise _fail(where, f"{what} contains {bad} NaN or infinite values")
    return np.ascontiguousarray(array, dtype=np.float32)


def body_extent(poses: np.ndarray) -> float:
    """Median over frames of the largest joint offset from the root (joint 0): ~1 in metres."""
    offsets = np.abs(poses - poses[:, :1, :]).reshape(poses.shape[0], -1)
    return float(np.median(offsets.max(axis=1)))


def _check_metres(poses: np.ndarray, where: str, what: str) -> None:
    extent = body_extent(poses)
    if extent > MAX_BODY_EXTENT_M:
        raise _fail(
            where,
            f"{what} looks like millimetres; expected metres (typical body extent {extent:.4g})",
        )


def _check_millimetres(poses: np.ndarray, where: str, what: str) -> None:
    extent = body_extent(poses)
    if extent <= MAX_BODY_EXTENT_M:
        raise _fail(
            where,
            f"{what} looks like metres; expected millimetres (typical body extent {extent:.4g})",
        )


def _check_pixels(points: np.ndarray, where: str, what: str) -> None:
    if float(np.abs(points).max()) <= MAX_NORMALISED_ABS:
        raise _fail(
            where,
            f"{what} looks normalised; expected pixels (all |values| <= {MAX_NORMALISED_ABS:g})",
        )


def _check_normalised(points: np.ndarray, where: str, what: str) -> None:
    typical = float(np.median(np.abs(points)))
    if typical > MAX_NORMALISED_ABS:
        raise _fail(
            where,
            f"{what} looks like pixels (median |value| {typical:.4g}); expected normalised "
            "screen coordinates",
        )


def _as_dict(value: Any, where: str, what: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise _fail(where, f"{what} must be a dict, got {type(value).__name__}")
    if not value:
        raise _fail(where, f"{what} is empty")
    for name in value:
        if not isinstance(name, str):
            raise _fail(where, f"{what} has a non-string key {name!r}")
    return value


def read_positions_3d(path: str | os.PathLike[str]) -> Positions3D:
    """Read ``positions_3d`` = {subject: {action: (T, J, 3)}} world metres, J in {16, 17, 32}.

    Returned arrays are float32 in the file's own layout (see :func:`layout_for_joint_count`).
    """
    content = _load(path, ("positions_3d",))
    subjects = _as_dict(content["positions_3d"], _where(path, "positions_3d"), "positions_3d")
    out: Positions3D = {}
    for subject, actions in subjects.items():
        actions = _as_dict(actions, _where(path, subject=subject), "the subject's entry")
        out[subject] = {}
        for action, seq in actions.items():
            where = _where(path, subject=subject, action=action)
            poses = check_sequence(seq, where, 3, JOINT_COUNTS_3D, "3D sequence")
            _check_metres(poses, where, "3D sequence")
            out[subject][action] = poses
    _require_one_joint_count(path, out, "3D")
    return out


def _camera_list(value: Any, where: str) -> list[Any]:
    if isinstance(value, np.ndarray) and value.dtype.hasobject and value.ndim == 1:
        value = list(value)
    if not isinstance(value, list | tuple):
        raise _fail(where, f"expected a list of per-camera arrays, got {type(value).__name__}")
    if not value:
        raise _fail(where, "the list of cameras is empty")
    return list(value)


def read_positions_2d(path: str | os.PathLike[str]) -> tuple[Positions2D, dict[str, Any]]:
    """Read ``positions_2d`` = {subject: {action: [(T, J, 2) pixels per camera]}} and ``metadata``.

    J must be 16 or 17 and the same throughout the file; ``metadata`` is optional (PoseAug's
    files lack parts of it) but, when it states ``num_joints``, must agree with the arrays.
    """
    content = _load(path, ("positions_2d",))
    subjects = _as_dict(content["positions_2d"], _where(path, "positions_2d"), "positions_2d")
    metadata = content.get("metadata", {})
    if not isinstance(metadata, dict):
        raise _fail(_where(path, "metadata"), f"must be a dict, got {type(metadata).__name__}")
    out: Positions2D = {}
    for subject, actions in subjects.items():
        actions = _as_dict(actions, _where(path, subject=subject), "the subject's entry")
        out[subject] = {}
        for action, cams in actions.items():
            cams = _camera_list(cams, _where(path, subject=subject, action=action))
            seqs = []
            for cam, seq in enumerate(cams):
                where = _where(path, subject=subject, action=action, camera=cam)
                points = check_sequence(seq, where, 2, JOINT_COUNTS_2D, "2D sequence")
                _check_pixels(points, where, "2D sequence")
                seqs.append(points)
            out[subject][action] = seqs
    num_joints = _require_one_joint_count(path, out, "2D")
    stated = metadata.get("num_joints")
    if stated is not None and int(stated) != num_joints:
        raise _fail(
            _where(path, "metadata"),
            f"num_joints is {int(stated)} but the 2D sequences have {num_joints} joints",
        )
    return out, metadata


def _require_one_joint_count(path: Any, data: dict[str, dict[str, Any]], what: str) -> int:
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
                    raise _fail(
                        _where(path, subject=subject, action=action, camera=camera),
                        f"{what} sequence has {joints} joints, but subject {first[0]}, action "
                        f"{first[1]!r} has {first[2]} (one joint count per file)",
                    )
    assert first is not None  # _as_dict refused empty containers
    return first[2]


def _convert_layout(array: np.ndarray, target: SkeletonLayout, where: str, what: str) -> np.ndarray:
    """Joint axis from the layout implied by the joint count to ``target``, by joint name."""
    source = layout_for_joint_count(array.shape[1], where)
    missing = [n for n in target.joint_names if n not in source.joint_names]
    if missing:
        raise _fail(
            where,
            f"{what} has {source.num_joints} joints ({source.name}), which cannot give layout "
            f"{target.name} (no {', '.join(missing)})",
        )
    return np.ascontiguousarray(select_joints(array, source, target))


@dataclass
class RawDataset:
    """A raw directory, validated and cross-checked, in one target layout.

    ``positions_3d``: {subject: {action: (T, J, 3) float32 world metres}}; ``positions_2d``:
    {subject: {action: [(T, J, 2) float32 pixels per camera, trimmed to T]}}; ``files``: raw file
    name -> SHA-256 (the inputs of the fingerprint).
    """

    positions_3d: Positions3D
    positions_2d: Positions2D
    cameras: CameraSet
    layout: SkeletonLayout
    keypoints: str
    fps: int = FPS
    files: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


def _target_layout(layout: str | SkeletonLayout) -> SkeletonLayout:
    target = layout if isinstance(layout, SkeletonLayout) else get_layout(layout)
    if target.name not in MODEL_LAYOUTS:
        raise UserInputError(f"layout {target.name!r}: expected one of {list(MODEL_LAYOUTS)}")
    return target


def _names(items: Any) -> list[str]:
    return sorted(items)


def load_raw_dataset(
    raw_dir: str | os.PathLike[str],
    keypoints: str = "gt",
    layout: str | SkeletonLayout = "h36m16",
) -> RawDataset:
    """Read the raw directory's 3D, ``keypoints`` 2D and cameras files and cross-check them.

    3D and 2D are converted to ``layout`` by joint name; subjects, actions and camera counts must
    agree between the files; 2D longer than the mocap is trimmed, shorter is refused.
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise UserInputError(f"{raw_dir}: raw data directory not found")
    target = _target_layout(layout)
    path_3d = raw_dir / schema.RAW_3D
    path_2d = raw_dir / schema.raw_2d_name(keypoints)
    path_cams = raw_dir / schema.RAW_CAMERAS
    cameras = load_cameras(path_cams)
    raw_3d = read_positions_3d(path_3d)
    raw_2d, metadata = read_positions_2d(path_2d)

    only_2d = set(raw_2d) - set(raw_3d)
    if only_2d:
        raise UserInputError(
            f"{path_2d}: subjects {_names(only_2d)} have 2D but no 3D in {path_3d.name}"
        )
    only_3d = set(raw_3d) - set(raw_2d)
    if only_3d:
        raise UserInputError(
            f"{path_3d}: subjects {_names(only_3d)} have 3D but no 2D in {path_2d.name}"
        )

    positions_3d: Positions3D = {}
    positions_2d: Positions2D = {}
    for subject, actions_3d in raw_3d.items():
        actions_2d = raw_2d[subject]
        only_2d = set(actions_2d) - set(actions_3d)
        if only_2d:
            raise UserInputError(
                f"{_where(path_2d, subject=subject)}: actions {_names(only_2d)} have 2D but no 3D "
                f"in {path_3d.name}"
            )
        only_3d = set(actions_3d) - set(actions_2d)
        if only_3d:
            raise UserInputError(
                f"{_where(path_3d, subject=subject)}: actions {_names(only_3d)} have 3D but no 2D "
                f"in {path_2d.name}"
            )
        if subject not in cameras.subjects:
            raise UserInputError(
                f"{path_cams}: no camera extrinsics for subject {subject} "
                f"(present in {path_3d.name})"
            )
        positions_3d[subject] = {}
        positions_2d[subject] = {}
        for action, seq_3d in actions_3d.items():
            where_3d = _where(path_3d, subject=subject, action=action)
            world = _convert_layout(seq_3d, target, where_3d, "3D")
            num_frames = world.shape[0]
            cams = actions_2d[action]
            if len(cams) != cameras.num_cameras:
                raise UserInputError(
                    f"{_where(path_2d, subject=subject, action=action)}: {len(cams)} cameras, "
                    f"{path_cams.name} has {cameras.num_cameras}"
                )
            trimmed = []
            for cam, seq_2d in enumerate(cams):
                where_2d = _where(path_2d, subject=subject, action=action, camera=cam)
                if seq_2d.shape[0] < num_frames:
                    raise UserInputError(
                        f"{where_2d}: 2D sequence has {seq_2d.shape[0]} frames, the 3D has "
                        f"{num_frames} (shorter 2D is refused)"
                    )
                if seq_2d.shape[0] > num_frames:
                    log.debug(
                        "%s: trimming 2D from %d to %d frames",
                        where_2d,
                        seq_2d.shape[0],
                        num_frames,
                    )
                trimmed.append(_convert_layout(seq_2d[:num_frames], target, where_2d, "2D"))
            positions_3d[subject][action] = world
            positions_2d[subject][action] = trimmed

    files = {p.name: sha256_file(p) for p in (path_3d, path_2d, path_cams)}
    log.info(
        "read %s: %d subjects, %d sequences, layout %s",
        raw_dir,
        len(positions_3d),
        sum(map(len, positions_3d.values())),
        target.name,
    )
    return RawDataset(
        positions_3d=positions_3d,
        positions_2d=positions_2d,
        cameras=cameras,
        layout=target,
        keypoints=keypoints,
        files=files,
        metadata=metadata,
    )


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
    target = _target_layout(layout)
    content = load_community_npz(path)
    if {"pose2d", "pose3d"} <= set(content):
        return _read_3dhp_poseaug(path, content, target)
    if "data" in content:
        return _read_3dhp_pstmo(path, content["data"], target)
    raise UserInputError(
        f"{path}: unknown 3DHP test format (keys {sorted(content)}); {_3DHP_FORMATS}"
    )


def _root_relative(poses: np.ndarray, layout: SkeletonLayout) -> np.ndarray:
    return poses - poses[:, layout.root : layout.root + 1]


def _paired_poses(
    path: Any, key_2d: str, key_3d: str, p2d: Any, p3d: Any, target: SkeletonLayout
) -> tuple[np.ndarray, np.ndarray]:
    """Validate flat (N, J, 2) normalised / (N, J, 3) metre arrays and map them to ``target``."""
    where_2d, where_3d = _where(path, key_2d), _where(path, key_3d)
    poses_2d = check_sequence(p2d, where_2d, 2, JOINT_COUNTS_2D, "2D poses")
    poses_3d = check_sequence(p3d, where_3d, 3, JOINT_COUNTS_2D, "3D poses")
    if poses_2d.shape[:2] != poses_3d.shape[:2]:
        raise _fail(
            where_2d,
            f"2D poses have shape {poses_2d.shape[:2]} (N, J), the 3D poses {poses_3d.shape[:2]}",
        )
    _check_normalised(poses_2d, where_2d, "2D poses")
    _check_metres(poses_3d, where_3d, "3D poses")
    poses_2d = _convert_layout(poses_2d, target, where_2d, "2D")
    poses_3d = _root_relative(_convert_layout(poses_3d, target, where_3d, "3D"), target)
    return poses_2d, poses_3d.astype(np.float32)


def _read_3dhp_poseaug(path: Any, content: dict[str, Any], target: SkeletonLayout) -> Test3DHP:
    poses_2d, poses_3d = _paired_poses(
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
    match = re.fullmatch(r"TS(\d+)", name)
    return (int(match.group(1)) if match else 1 << 30, name)


def _read_3dhp_pstmo(path: Any, data: Any, target: SkeletonLayout) -> Test3DHP:
    sequences = _as_dict(data, _where(path, "data"), "key 'data'")
    poses_2d, poses_3d, scenes, names = [], [], [], []
    for name in sorted(sequences, key=_sequence_sort_key):
        where = f"{path}: key 'data', sequence {name}"
        if name not in MPI3DHP_SEQUENCES:
            raise _fail(
                where,
                f"unknown sequence (expected {', '.join(MPI3DHP_SEQUENCES)}; image size "
                "and scene depend on it)",
            )
        seq = sequences[name]
        if not isinstance(seq, dict):
            raise _fail(where, f"must be a dict, got {type(seq).__name__}")
        missing = [k for k in ("data_2d", "data_3d", "valid") if k not in seq]
        if missing:
            raise _fail(where, f"missing key {missing[0]!r} (keys present: {sorted(seq)})")
        pixels, mm, valid = seq["data_2d"], seq["data_3d"], seq["valid"]
        for what, arr, coords in (("data_2d", pixels, 2), ("data_3d", mm, 3)):
            if not isinstance(arr, np.ndarray) or arr.ndim != 3 or arr.shape[-1] != coords:
                shape = getattr(arr, "shape", type(arr).__name__)
                raise _fail(where, f"{what} must have shape (T, 17, {coords}), got {shape}")
            if arr.shape[1] != MPI3DHP17.num_joints:
                raise _fail(where, f"{what} has {arr.shape[1]} joints; expected 17 (3DHP order)")
        num_frames = mm.shape[0]
        if pixels.shape[0] != num_frames:
            raise _fail(where, f"data_2d has {pixels.shape[0]} frames, data_3d has {num_frames}")
        if not isinstance(valid, np.ndarray) or valid.size != num_frames:
            size = getattr(valid, "size", type(valid).__name__)
            raise _fail(where, f"valid must hold one flag per frame ({num_frames}), got {size}")
        if not (np.issubdtype(valid.dtype, np.number) or valid.dtype == np.bool_):
            raise _fail(where, f"valid has dtype {valid.dtype}; expected numbers or booleans")
        keep = valid.reshape(-1) != 0
        if not keep.any():
            log.warning("%s: no valid frames; skipped", where)
            continue
        pixels = check_sequence(pixels[keep], where, 2, (17,), "data_2d")
        mm = check_sequence(mm[keep], where, 3, (17,), "data_3d")
        _check_pixels(pixels, where, "data_2d")
        _check_millimetres(mm, where, "data_3d")
        (width, height), scene = MPI3DHP_SEQUENCES[name]
        poses_2d.append(_normalise(select_joints(pixels, MPI3DHP17, target), width, height))
        poses_3d.append(_root_relative(select_joints(mm, MPI3DHP17, target) / 1000.0, target))
        scenes.append(np.full(int(keep.sum()), scene))
        names.append(np.full(int(keep.sum()), name))
    if not poses_2d:
        raise _fail(_where(path, "data"), "no valid frames in any sequence")
    return Test3DHP(
        poses_2d=np.concatenate(poses_2d).astype(np.float32),
        poses_3d=np.concatenate(poses_3d).astype(np.float32),
        scene=np.concatenate(scenes),
        sequence=np.concatenate(names),
        source_format="pstmo",
        layout=target,
    )


def _normalise(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """``x / w * 2 - [1, h / w]`` (the same screen normalisation as :mod:`mlpgraph.cameras`)."""
    return pixels / width * 2.0 - np.array([1.0, height / width], dtype=np.float32)


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
            raise _fail(where, "object array is empty; expected item 0 to be the poses")
        return value.reshape(-1)[0]
    return value


def read_hard_poses(
    path: str | os.PathLike[str], layout: str | SkeletonLayout = "h36m16"
) -> HardPoses:
    """Read the release's hard-pose file: keys ``pose_3d``, ``pose_2d``.

    Each is an object array whose item 0 is (N, J, 3) / (N, J, 2); 2D must be normalised screen
    coordinates, 3D metres (made root-relative here).
    """
    target = _target_layout(layout)
    content = _load(path, ("pose_3d", "pose_2d"))
    p2d = _first_item(content["pose_2d"], _where(path, "pose_2d"))
    p3d = _first_item(content["pose_3d"], _where(path, "pose_3d"))
    poses_2d, poses_3d = _paired_poses(path, "pose_2d", "pose_3d", p2d, p3d, target)
    return HardPoses(poses_2d=poses_2d, poses_3d=poses_3d, layout=target)
