"""Reading a keypoint file: the format told apart by content (or forced), and the ``.npz`` reader.

Formats (:data:`~.formats.KEYPOINT_FORMATS`): an ``.npz`` (read with ``allow_pickle=False``: a
user's file is never unpickled) holding ``keypoints`` (T, J, 2) pixels already in the model's
layout, scalar ``width`` and ``height`` and, optionally, ``scores`` (T, J); COCO keypoint JSON
(:mod:`.coco`); MMPose prediction JSON (:mod:`.mmpose`); AlphaPose results JSON
(:mod:`.alphapose`); an OpenPose ``--write_json`` folder (:mod:`.openpose`). The detectors'
keypoints are mapped onto the model's layout by joint name later
(:func:`~.filling.prepare_keypoints`, :mod:`.joint_maps`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mlpgraph.cameras import check_in_image
from mlpgraph.errors import UserInputError
from mlpgraph.layouts import SkeletonLayout
from mlpgraph.safe_read import ZIP_ERRORS, JsonSyntaxError, check_npz, load_json
from mlpgraph.user_keypoints.alphapose import read_alphapose_json
from mlpgraph.user_keypoints.coco import read_coco_json
from mlpgraph.user_keypoints.formats import (
    EXPECTED,
    KEYPOINT_FORMATS,
    ONE_OPENPOSE_FRAME,
    check_forced_json,
    check_format,
    detect_json_format,
)
from mlpgraph.user_keypoints.mmpose import read_mmpose_json
from mlpgraph.user_keypoints.openpose import read_openpose_folder
from mlpgraph.user_keypoints.sequence import Keypoints2D, positive_size, resolve_image_size

__all__ = ["KEYPOINT_FORMATS", "read_keypoints", "read_npz_keypoints"]

_JSON_READERS = {"coco": read_coco_json, "mmpose": read_mmpose_json, "alphapose": read_alphapose_json}


def read_keypoints(
    path: str | os.PathLike[str],
    layout: SkeletonLayout,
    width: float | None = None,
    height: float | None = None,
    track_id: int | None = None,
    fmt: str = "auto",
) -> Keypoints2D:
    """Read a keypoint file or OpenPose folder in the format ``fmt`` (one of :data:`KEYPOINT_FORMATS`).

    ``auto`` tells the format from the content, not from the name: a folder is OpenPose's, a zip
    archive an ``.npz``, JSON by its structure (:func:`~.formats.detect_json_format`). A forced
    format that does not fit the file is a one-line :class:`UserInputError`. ``track_id`` picks
    the person of multi-person files (a track id of the file, or a linked track's number).
    """
    check_format(fmt)
    path = Path(path)
    if path.is_dir():
        if fmt not in ("auto", "openpose"):
            raise UserInputError(f"{path}: a folder, but format {fmt!r} expects a file: {EXPECTED[fmt]}")
        return read_openpose_folder(path, width, height, track_id)
    if not path.is_file():
        raise UserInputError(f"{path}: file not found")
    if fmt == "openpose":
        raise UserInputError(f"{path}: a file, but format 'openpose' expects {EXPECTED['openpose']}")
    with open(path, "rb") as handle:
        zipped = handle.read(4)[:2] == b"PK"
    if fmt == "npz" or (fmt == "auto" and zipped):
        if not zipped:
            raise UserInputError(f"{path}: format 'npz' expects {EXPECTED['npz']}, but the file is not a zip archive")
        if track_id is not None:
            raise UserInputError(
                f"{path}: --track-id applies to detector JSON input only (COCO, MMPose, AlphaPose, OpenPose), "
                "not to an .npz"
            )
        return read_npz_keypoints(path, layout, width, height)
    if zipped:
        raise UserInputError(f"{path}: a zip archive (.npz), but format {fmt!r} expects {EXPECTED[fmt]}")
    return _read_json(path, fmt, width, height, track_id)


def _read_json(path: Path, fmt: str, width: float | None, height: float | None, track_id: int | None) -> Keypoints2D:
    """A JSON keypoint file in the format ``fmt`` (``auto``: detected from its structure)."""
    try:
        content = load_json(path)
    except JsonSyntaxError:
        if fmt != "auto":
            raise
        raise UserInputError(
            f"{path}: unknown format: neither an .npz archive nor JSON (COCO-17 keypoint results); also read: "
            "MMPose and AlphaPose JSON, an OpenPose --write_json folder"
        ) from None
    detected = detect_json_format(content)
    if fmt != "auto":
        check_forced_json(detected, fmt, str(path))
    elif detected == "openpose":
        raise UserInputError(
            f"{path}: unknown format: JSON that is neither a list of COCO keypoint entries nor an object with "
            f"'annotations'; it looks like {ONE_OPENPOSE_FRAME}: give the folder of OpenPose --write_json files"
        )
    return _JSON_READERS[detected if fmt == "auto" else fmt](content, str(path), width, height, track_id)


def read_npz_keypoints(
    path: str | os.PathLike[str],
    layout: SkeletonLayout,
    width: float | None = None,
    height: float | None = None,
) -> Keypoints2D:
    """``keypoints`` (T, J, 2) pixels in ``layout``, ``width``, ``height`` (and optional ``scores``
    (T, J)) from an ``.npz`` loaded with ``allow_pickle=False``.

    ``width`` / ``height`` stand in for the file's keys when it has none. Frames are numbered 0..T-1.
    """
    where = str(path)
    content = _load_npz(path, width is not None and height is not None)
    keypoints = _checked_keypoints(content["keypoints"], layout, where)
    scores = _checked_scores(content["scores"], keypoints.shape[:2], where) if "scores" in content else None
    file_w, file_h = (_file_scalar(content, key, where) for key in ("width", "height"))
    file_size = (file_w, file_h) if file_w is not None and file_h is not None else None
    w, h = resolve_image_size(file_size, width, height, where, "the file gives no 'width'/'height'")
    check_in_image(keypoints, w, h, where, "'keypoints'")
    frames = np.arange(len(keypoints), dtype=np.int64)
    return Keypoints2D(keypoints, scores, frames, frames.copy(), w, h, layout.joint_names, where)


def _load_npz(path: str | os.PathLike[str], size_given: bool) -> dict[str, np.ndarray]:
    """The ``keypoints``, ``width``, ``height`` and ``scores`` arrays the archive has.

    ``keypoints`` is required, and ``width`` / ``height`` unless ``size_given`` (the options give them).
    """
    where = str(path)
    check_npz(path)  # np.load trusts the headers' array sizes
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = set(archive.files)
            for key in ("keypoints",) + (() if size_given else ("width", "height")):
                if key not in keys:
                    raise UserInputError(f"{where}: missing key {key!r} (the file has {sorted(keys)})")
            return {key: archive[key] for key in ("keypoints", "width", "height", "scores") if key in keys}
    except UserInputError:
        raise
    except ValueError as exc:  # numpy refuses object (pickled) members with allow_pickle=False
        raise UserInputError(f"{where}: refused to read the .npz ({exc})") from None
    except (*ZIP_ERRORS, KeyError) as exc:
        raise UserInputError(f"{where}: not a readable .npz archive ({type(exc).__name__}: {exc})") from None


def _checked_keypoints(keypoints: np.ndarray, layout: SkeletonLayout, where: str) -> np.ndarray:
    """``keypoints`` as float64 (T, J, 2) with T >= 1, J the layout's joints, every value finite."""
    if keypoints.dtype.kind not in "iuf":
        raise UserInputError(f"{where}: 'keypoints' must hold numbers, not {keypoints.dtype}")
    if keypoints.ndim != 3 or keypoints.shape[2] != 2:
        raise UserInputError(f"{where}: 'keypoints' must have shape (T, J, 2), got {keypoints.shape}")
    if keypoints.shape[0] == 0:
        raise UserInputError(f"{where}: empty sequence ('keypoints' has no frame)")
    if keypoints.shape[1] != layout.num_joints:
        raise UserInputError(
            f"{where}: 'keypoints' has {keypoints.shape[1]} joints, the checkpoint's layout "
            f"{layout.name} has {layout.num_joints} ({', '.join(layout.joint_names)})"
        )
    keypoints = keypoints.astype(np.float64)
    if not np.isfinite(keypoints).all():
        bad = np.argwhere(~np.isfinite(keypoints))[0]
        raise UserInputError(
            f"{where}: 'keypoints' has NaN or infinite values (first at frame {bad[0]}, "
            f"joint {layout.joint_names[bad[1]]})"
        )
    return keypoints


def _checked_scores(scores: np.ndarray, shape: tuple[int, ...], where: str) -> np.ndarray:
    """``scores`` as float64 of ``shape`` (T, J), every value finite."""
    if scores.dtype.kind not in "iuf" or scores.shape != shape:
        raise UserInputError(f"{where}: 'scores' must be numbers of shape {shape}, got {scores.shape}")
    scores = scores.astype(np.float64)
    if not np.isfinite(scores).all():
        raise UserInputError(f"{where}: 'scores' has NaN or infinite values")
    return scores


def _file_scalar(content: dict[str, Any], key: str, where: str) -> float | None:
    """The archive's ``key`` (``width`` or ``height``) as a positive number, or None if it has none."""
    if key not in content:
        return None
    value = content[key]
    if value.dtype.kind not in "iuf" or value.size != 1:
        raise UserInputError(f"{where}: {key!r} must be one number, got {value.dtype} of shape {value.shape}")
    return positive_size(value.reshape(()).item(), repr(key), where)
