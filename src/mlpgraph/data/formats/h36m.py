"""Readers of the Human3.6M files (3D, 2D per keypoint source, cameras), cross-checked as one data set."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlpgraph.cameras import CameraSet, check_in_image, load_cameras
from mlpgraph.data import schema
from mlpgraph.data.formats.checks import (
    JOINT_COUNTS_2D,
    JOINT_COUNTS_3D,
    as_dict,
    check_body,
    check_extra_frames,
    check_metres,
    check_pixels,
    check_sequence,
    check_world,
    convert_layout,
    input_error,
    load_with_keys,
    location,
    require_one_joint_count,
    target_layout,
)
from mlpgraph.data.schema import Positions2D, Positions3D
from mlpgraph.errors import UserInputError
from mlpgraph.io import sha256_file
from mlpgraph.layouts import SkeletonLayout

log = logging.getLogger(__name__)


def read_positions_3d(path: str | os.PathLike[str]) -> Positions3D:
    """Read ``positions_3d`` = {subject: {action: (T, J, 3)}} world metres, J in {16, 17, 32}.

    Returned arrays are float32 in the file's own layout (see :func:`layout_for_joint_count`).
    """
    content = load_with_keys(path, ("positions_3d",))
    subjects = as_dict(content["positions_3d"], location(path, "positions_3d"), "positions_3d")
    out: Positions3D = {}
    for subject, actions in subjects.items():
        actions = as_dict(actions, location(path, subject=subject), "the subject's entry")
        out[subject] = {}
        for action, seq in actions.items():
            where = location(path, subject=subject, action=action)
            poses = check_sequence(seq, where, 3, JOINT_COUNTS_3D, "3D sequence")
            check_body(poses, where, "3D sequence")
            check_metres(poses, where, "3D sequence")
            check_world(poses, where, "3D sequence")
            out[subject][action] = poses
    require_one_joint_count(path, out, "3D")
    return out


def _camera_list(value: Any, where: str) -> list[Any]:
    """The per-camera arrays of one action (a list, a tuple or a 1-D object array)."""
    if isinstance(value, np.ndarray) and value.dtype.hasobject and value.ndim == 1:
        value = list(value)
    if not isinstance(value, list | tuple):
        raise input_error(where, f"expected a list of per-camera arrays, got {type(value).__name__}")
    if not value:
        raise input_error(where, "the list of cameras is empty")
    return list(value)


def read_positions_2d(path: str | os.PathLike[str]) -> tuple[Positions2D, dict[str, Any]]:
    """Read ``positions_2d`` = {subject: {action: [(T, J, 2) pixels per camera]}} and ``metadata``.

    J must be 16 or 17 and the same throughout the file; ``metadata`` is optional (PoseAug's
    files lack parts of it) but, when it states ``num_joints``, must agree with the arrays.
    """
    content = load_with_keys(path, ("positions_2d",))
    subjects = as_dict(content["positions_2d"], location(path, "positions_2d"), "positions_2d")
    metadata = content.get("metadata", {})
    if not isinstance(metadata, dict):
        raise input_error(location(path, "metadata"), f"must be a dict, got {type(metadata).__name__}")
    out: Positions2D = {}
    for subject, actions in subjects.items():
        actions = as_dict(actions, location(path, subject=subject), "the subject's entry")
        out[subject] = {}
        for action, cams in actions.items():
            cams = _camera_list(cams, location(path, subject=subject, action=action))
            seqs = []
            for cam, seq in enumerate(cams):
                where = location(path, subject=subject, action=action, camera=cam)
                points = check_sequence(seq, where, 2, JOINT_COUNTS_2D, "2D sequence")
                check_pixels(points, where, "2D sequence")
                seqs.append(points)
            out[subject][action] = seqs
    num_joints = require_one_joint_count(path, out, "2D")
    stated = metadata.get("num_joints")
    if stated is not None and int(stated) != num_joints:
        raise input_error(
            location(path, "metadata"),
            f"num_joints is {int(stated)} but the 2D sequences have {num_joints} joints",
        )
    return out, metadata


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
    fps: int = schema.FPS
    files: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _RawFiles:
    """The three files of a raw directory that one keypoint source reads."""

    path_3d: Path
    path_2d: Path
    path_cams: Path


def _check_same_names(
    names_2d: set[str], names_3d: set[str], files: _RawFiles, what: str, subject: str | None
) -> None:
    """Refuse ``what`` (subjects, or one subject's actions) present in only one of the 2D and 3D files."""
    only_2d = names_2d - names_3d
    if only_2d:
        raise UserInputError(
            f"{location(files.path_2d, subject=subject)}: {what} {sorted(only_2d)} have 2D but no 3D "
            f"in {files.path_3d.name}"
        )
    only_3d = names_3d - names_2d
    if only_3d:
        raise UserInputError(
            f"{location(files.path_3d, subject=subject)}: {what} {sorted(only_3d)} have 3D but no 2D "
            f"in {files.path_2d.name}"
        )


def _pair_action(
    files: _RawFiles,
    cameras: CameraSet,
    target: SkeletonLayout,
    subject: str,
    action: str,
    seq_3d: np.ndarray,
    cams_2d: list[np.ndarray],
) -> tuple[np.ndarray, list[np.ndarray]]:
    """One action's 3D and per-camera 2D in ``target``; 2D a few frames longer than the 3D is trimmed.

    Shorter 2D, 2D longer by more than :func:`check_extra_frames` allows and 2D far outside its
    camera's image are refused.
    """
    world = convert_layout(seq_3d, target, location(files.path_3d, subject=subject, action=action), "3D")
    num_frames = world.shape[0]
    if len(cams_2d) != cameras.num_cameras:
        raise UserInputError(
            f"{location(files.path_2d, subject=subject, action=action)}: {len(cams_2d)} cameras, "
            f"{files.path_cams.name} has {cameras.num_cameras}"
        )
    trimmed = []
    for cam, seq_2d in enumerate(cams_2d):
        where_2d = location(files.path_2d, subject=subject, action=action, camera=cam)
        check_extra_frames(seq_2d.shape[0], num_frames, where_2d)
        if seq_2d.shape[0] > num_frames:
            log.debug("%s: trimming 2D from %d to %d frames", where_2d, seq_2d.shape[0], num_frames)
        camera = cameras.camera(subject, cam)
        check_in_image(seq_2d[:num_frames], camera.res_w, camera.res_h, where_2d, f"2D sequence (camera {camera.id})")
        trimmed.append(convert_layout(seq_2d[:num_frames], target, where_2d, "2D"))
    return world, trimmed


def _pair_subjects(
    files: _RawFiles, cameras: CameraSet, target: SkeletonLayout, raw_3d: Positions3D, raw_2d: Positions2D
) -> tuple[Positions3D, Positions2D]:
    """Every subject and action of the 3D paired with its 2D, after checking both files name the same ones."""
    _check_same_names(set(raw_2d), set(raw_3d), files, "subjects", None)
    positions_3d: Positions3D = {}
    positions_2d: Positions2D = {}
    for subject, actions_3d in raw_3d.items():
        actions_2d = raw_2d[subject]
        _check_same_names(set(actions_2d), set(actions_3d), files, "actions", subject)
        if subject not in cameras.subjects:
            raise UserInputError(
                f"{files.path_cams}: no camera extrinsics for subject {subject} "
                f"(present in {files.path_3d.name})"
            )
        positions_3d[subject] = {}
        positions_2d[subject] = {}
        for action, seq_3d in actions_3d.items():
            world, trimmed = _pair_action(files, cameras, target, subject, action, seq_3d, actions_2d[action])
            positions_3d[subject][action] = world
            positions_2d[subject][action] = trimmed
    return positions_3d, positions_2d


def load_raw_dataset(
    raw_dir: str | os.PathLike[str],
    keypoints: str = "gt",
    layout: str | SkeletonLayout = "h36m16",
) -> RawDataset:
    """Read the raw directory's 3D, ``keypoints`` 2D and cameras files and cross-check them.

    3D and 2D are converted to ``layout`` by joint name; subjects, actions and camera counts must
    agree between the files; 2D a few frames longer than the mocap is trimmed, shorter or much
    longer 2D is refused, and so is 2D far outside its camera's image.
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise UserInputError(f"{raw_dir}: raw data directory not found")
    target = target_layout(layout)
    files = _RawFiles(
        raw_dir / schema.RAW_3D, raw_dir / schema.raw_2d_name(keypoints), raw_dir / schema.RAW_CAMERAS
    )
    cameras = load_cameras(files.path_cams)
    raw_3d = read_positions_3d(files.path_3d)
    raw_2d, metadata = read_positions_2d(files.path_2d)
    positions_3d, positions_2d = _pair_subjects(files, cameras, target, raw_3d, raw_2d)
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
        files={p.name: sha256_file(p) for p in (files.path_3d, files.path_2d, files.path_cams)},
        metadata=metadata,
    )
