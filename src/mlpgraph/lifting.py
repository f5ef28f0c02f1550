"""Lift the user's own 2D keypoints to root-relative 3D with a trained checkpoint.

Two inputs are read (:func:`read_keypoints` tells them apart by content, not by name):

- an ``.npz`` (read with ``allow_pickle=False``: a user's file is never unpickled) with
  ``keypoints`` (T, J, 2) pixels already in the model's layout, scalar ``width`` and ``height``
  and, optionally, ``scores`` (T, J);
- COCO-17 keypoint JSON as 2D detectors write it: a list of person entries (``image_id``,
  ``keypoints`` as a flat [x, y, score] x 17 list, optional ``score``, optional ``track_id``), or
  an object ``{"annotations": [...], "images": [...]}`` whose images give ``width`` / ``height``.
  Ground-truth COCO files carry visibility flags (0, 1, 2) in place of scores, which the default
  ``min_score`` reads as "not labelled" / "labelled".

COCO-17 keypoints are converted to the model's layout by joint *name* through one declarative
table, :data:`COCO17_TO_LAYOUT`. Low-confidence joints and missing frames are filled from their
neighbours in time (:func:`interpolate_missing`), the pixels normalised as preprocessing does
(:func:`mlpgraph.cameras.normalise_screen`), and the sequence lifted through
:func:`mlpgraph.evaluation.predict` on a one-sequence :class:`~mlpgraph.data.batches.PoseArrays`,
so temporal models see the same edge-padded windows, and the same flip test, as in evaluation.
Every problem with the input is a one-line :class:`~mlpgraph.errors.UserInputError` naming the file.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from torch import nn

from mlpgraph.cameras import normalise_screen
from mlpgraph.errors import UserInputError
from mlpgraph.io import atomic_path
from mlpgraph.layouts import SkeletonLayout, get_layout

log = logging.getLogger(__name__)

DEFAULT_MIN_SCORE = 0.3
# Half a second at Human3.6M's 50 fps: longer holes are better cut than bridged with a straight line.
DEFAULT_MAX_GAP = 25
# --gif draws at most this many frames (evenly spaced over the sequence), played at GIF_FPS.
GIF_MAX_FRAMES = 200
GIF_FPS = 25.0

# The COCO-17 keypoint order every COCO-style 2D detector writes.
COCO17_JOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
COCO17_FACE: tuple[str, ...] = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")


@dataclass(frozen=True)
class JointRule:
    """How one layout joint is made from COCO-17 keypoints.

    ``kind``:

    - ``copy``: the COCO keypoint ``sources[0]``; confident where it is;
    - ``mean``: the mean of the COCO keypoints ``sources``; confident where all of them are;
    - ``mean_confident``: the mean of those of ``sources`` that are confident in the frame;
      confident where at least one is;
    - ``midpoint``: the midpoint of the two *layout* joints ``sources``, computed after those
      were filled in time (so it is never filled on its own).
    """

    kind: Literal["copy", "mean", "mean_confident", "midpoint"]
    sources: tuple[str, ...]


# COCO-17 -> Human3.6M joints (h36m16 and h36m17, by name). Human3.6M's pelvis lies between the
# hips and its thorax between the shoulders; its spine is the middle of the trunk. Its "neck"
# (h36m17 only; the community calls it "neck/nose") is taken as the COCO nose; its "head" is the
# mean of the confident face points (nose, eyes, ears), which stays defined in profile and from
# behind, when only some of them are seen.
COCO17_TO_LAYOUT: dict[str, JointRule] = {
    "pelvis": JointRule("mean", ("left_hip", "right_hip")),
    "right_hip": JointRule("copy", ("right_hip",)),
    "right_knee": JointRule("copy", ("right_knee",)),
    "right_ankle": JointRule("copy", ("right_ankle",)),
    "left_hip": JointRule("copy", ("left_hip",)),
    "left_knee": JointRule("copy", ("left_knee",)),
    "left_ankle": JointRule("copy", ("left_ankle",)),
    "spine": JointRule("midpoint", ("pelvis", "thorax")),
    "thorax": JointRule("mean", ("left_shoulder", "right_shoulder")),
    "neck": JointRule("copy", ("nose",)),
    "head": JointRule("mean_confident", COCO17_FACE),
    "left_shoulder": JointRule("copy", ("left_shoulder",)),
    "left_elbow": JointRule("copy", ("left_elbow",)),
    "left_wrist": JointRule("copy", ("left_wrist",)),
    "right_shoulder": JointRule("copy", ("right_shoulder",)),
    "right_elbow": JointRule("copy", ("right_elbow",)),
    "right_wrist": JointRule("copy", ("right_wrist",)),
}


@dataclass(frozen=True)
class Keypoints2D:
    """2D keypoints as read from a file, one row per frame present in the file, in frame order.

    ``keypoints`` (T, J, 2) float64 pixels of the joints ``joint_names`` (:data:`COCO17_JOINTS`
    or a model layout's); ``scores`` (T, J) or None (every joint confident). ``frame_ids`` (T,)
    are the image ids (int64, or str); ``frame_numbers`` (T,) int64 increasing numbers of those
    frames when gaps between them can be told (numeric ids, or string ids that differ only in one
    number), else None. ``id_template`` (prefix, digits, suffix) names inserted frames for such
    string ids. ``selection`` says which person was kept (COCO), for the log.
    """

    keypoints: np.ndarray
    scores: np.ndarray | None
    frame_ids: np.ndarray
    frame_numbers: np.ndarray | None
    width: float
    height: float
    joint_names: tuple[str, ...]
    source: str
    id_template: tuple[str, int, str] | None = None
    selection: str = ""

    @property
    def num_frames(self) -> int:
        return int(self.keypoints.shape[0])


@dataclass(frozen=True)
class PreparedKeypoints:
    """Keypoints in the model's layout on a gap-free frame grid, holes filled.

    ``keypoints`` (T, J, 2) float64 pixels; ``filled`` (T, J) True where a value was interpolated
    (or derived from interpolated joints); ``frames`` (T,) image ids (inserted frames included);
    ``present`` (T,) True for frames the file had.
    """

    keypoints: np.ndarray
    filled: np.ndarray
    frames: np.ndarray
    present: np.ndarray
    width: float
    height: float
    layout: SkeletonLayout
    source: str

    def normalised(self) -> np.ndarray:
        """(T, J, 2) float32 normalised screen coordinates, as preprocessing makes them."""
        return normalise_screen(self.keypoints, self.width, self.height).astype(np.float32)


@dataclass(frozen=True)
class LiftResult:
    """What :func:`predict_file` lifted: the prepared 2D and the (T, J, 3) float32 metres."""

    prepared: PreparedKeypoints
    poses_3d: np.ndarray
    frames_per_window: int
    flip_test: bool


# ----------------------------------------------------------------------------------------- reading


def _positive_size(value: Any, what: str, where: str) -> float:
    try:
        size = float(value)
    except (TypeError, ValueError):
        raise UserInputError(f"{where}: {what} must be a number, got {value!r}") from None
    if not math.isfinite(size) or size <= 0:
        raise UserInputError(f"{where}: {what} must be a positive number, got {value!r}")
    return size


def _resolve_size(
    file_size: tuple[float, float] | None, width: float | None, height: float | None, where: str, hint: str
) -> tuple[float, float]:
    """The image size: the file's when it gives one (the options must then agree), else the options'."""
    given = None
    if width is not None or height is not None:
        if width is None or height is None:
            raise UserInputError(f"{where}: give both --width and --height")
        given = (_positive_size(width, "--width", where), _positive_size(height, "--height", where))
    if file_size is not None:
        if given is not None and not np.allclose(given, file_size):
            raise UserInputError(
                f"{where}: the file gives image size {file_size[0]:g} x {file_size[1]:g}, "
                f"--width/--height say {given[0]:g} x {given[1]:g}"
            )
        return file_size
    if given is None:
        raise UserInputError(f"{where}: {hint}; pass --width and --height")
    return given


def read_keypoints(
    path: str | os.PathLike[str],
    layout: SkeletonLayout,
    width: float | None = None,
    height: float | None = None,
    track_id: int | None = None,
) -> Keypoints2D:
    """Read an ``.npz`` (:func:`read_npz_keypoints`) or COCO JSON (:func:`read_coco_json`) file.

    The format is told from the content (a zip archive, or JSON), not from the file name.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: file not found")
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head[:2] == b"PK":
        if track_id is not None:
            raise UserInputError(f"{path}: --track-id applies to COCO JSON input only, not to an .npz")
        return read_npz_keypoints(path, layout, width, height)
    try:
        content = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UserInputError(
            f"{path}: unknown format: neither an .npz archive nor JSON (COCO-17 keypoint results)"
        ) from None
    return read_coco_json(content, str(path), width, height, track_id)


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
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = set(archive.files)
            for key in ("keypoints",) + (() if width is not None and height is not None else ("width", "height")):
                if key not in keys:
                    raise UserInputError(f"{where}: missing key {key!r} (the file has {sorted(keys)})")
            content = {key: archive[key] for key in ("keypoints", "width", "height", "scores") if key in keys}
    except UserInputError:
        raise
    except ValueError as exc:  # numpy refuses object (pickled) members with allow_pickle=False
        raise UserInputError(f"{where}: refused to read the .npz ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise UserInputError(f"{where}: not a readable .npz archive ({type(exc).__name__}: {exc})") from None

    keypoints = content["keypoints"]
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
    scores = None
    if "scores" in content:
        scores = content["scores"]
        if scores.dtype.kind not in "iuf" or scores.shape != keypoints.shape[:2]:
            raise UserInputError(
                f"{where}: 'scores' must be numbers of shape {keypoints.shape[:2]}, got {scores.shape}"
            )
        scores = scores.astype(np.float64)
        if not np.isfinite(scores).all():
            raise UserInputError(f"{where}: 'scores' has NaN or infinite values")

    def scalar(key: str) -> float | None:
        if key not in content:
            return None
        value = content[key]
        if value.dtype.kind not in "iuf" or value.size != 1:
            raise UserInputError(f"{where}: {key!r} must be one number, got {value.dtype} of shape {value.shape}")
        return _positive_size(value.reshape(()).item(), repr(key), where)

    file_w, file_h = scalar("width"), scalar("height")
    file_size = (file_w, file_h) if file_w is not None and file_h is not None else None
    w, h = _resolve_size(file_size, width, height, where, "the file gives no 'width'/'height'")
    frames = np.arange(len(keypoints), dtype=np.int64)
    return Keypoints2D(keypoints, scores, frames, frames.copy(), w, h, layout.joint_names, where)


def _natural_key(text: str) -> tuple[Any, ...]:
    """Sort key that orders embedded numbers by value: ``img2`` before ``img10``."""
    parts = re.split(r"(\d+)", text)
    return tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts))


_LAST_NUMBER = re.compile(r"^(.*?)(\d+)(\D*)$")


def _string_frame_numbers(ids: Sequence[str]) -> tuple[np.ndarray, tuple[str, int, str]] | None:
    """Frame numbers of string ids that differ only in one number (``frame_000012.jpg``), or None.

    The template (prefix, zero-padded width or 0, suffix) names inserted frames.
    """
    matches = [_LAST_NUMBER.match(i) for i in ids]
    if not all(matches):
        return None
    prefixes = {m.group(1) for m in matches if m}
    suffixes = {m.group(3) for m in matches if m}
    if len(prefixes) != 1 or len(suffixes) != 1:
        return None
    digits = [m.group(2) for m in matches if m]
    numbers = np.array([int(d) for d in digits], dtype=np.int64)
    if len(np.unique(numbers)) != len(numbers):
        return None
    widths = {len(d) for d in digits}
    pad = widths.pop() if len(widths) == 1 else 0
    return numbers, (prefixes.pop(), pad, suffixes.pop())


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse_entries(entries: Sequence[Any], where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Any]]:
    """(N, 17, 3) keypoints, (N,) person scores, (N,) track ids (NaN: none) and image ids."""
    size = 3 * len(COCO17_JOINTS)
    keypoints = np.empty((len(entries), size), dtype=np.float64)
    person = np.full(len(entries), np.nan)
    track = np.full(len(entries), np.nan)
    image_ids: list[Any] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise UserInputError(f"{where}: entry {i} is a {type(entry).__name__}, not a person object")
        for key in ("image_id", "keypoints"):
            if key not in entry:
                raise UserInputError(f"{where}: entry {i} has no {key!r}")
        image_id, kp = entry["image_id"], entry["keypoints"]
        if not (_is_number(image_id) or isinstance(image_id, str)):
            raise UserInputError(f"{where}: entry {i}: image_id must be a number or a string, got {image_id!r}")
        if not isinstance(kp, list) or len(kp) != size or not all(_is_number(v) for v in kp):
            got = f"{len(kp)} values" if isinstance(kp, list) else type(kp).__name__
            raise UserInputError(
                f"{where}: entry {i} (image_id {image_id!r}): 'keypoints' must be {size} numbers "
                f"([x, y, score] x {len(COCO17_JOINTS)} COCO-17 joints), got {got}"
            )
        keypoints[i] = kp
        score, tid = entry.get("score"), entry.get("track_id")
        if score is not None:
            if not _is_number(score) or not math.isfinite(score):
                raise UserInputError(f"{where}: entry {i}: 'score' must be a finite number, got {score!r}")
            person[i] = score
        if tid is not None:
            if not _is_number(tid) or not float(tid).is_integer():
                raise UserInputError(f"{where}: entry {i}: 'track_id' must be an integer, got {tid!r}")
            track[i] = tid
        image_ids.append(image_id)
    if not np.isfinite(keypoints).all():
        i = int(np.argwhere(~np.isfinite(keypoints))[0, 0])
        raise UserInputError(f"{where}: entry {i} (image_id {image_ids[i]!r}) has NaN or infinite keypoints")
    keypoints = keypoints.reshape(len(entries), len(COCO17_JOINTS), 3)
    person = np.where(np.isnan(person), keypoints[:, :, 2].mean(axis=1), person)
    return keypoints, person, track, image_ids


def select_person(
    frame: np.ndarray, score: np.ndarray, track: np.ndarray, track_id: int | None, where: str
) -> tuple[np.ndarray, str]:
    """Indices of the one person entry kept per frame, in frame order, and a sentence saying why.

    ``frame`` (N,) frame rank per entry, ``score`` (N,) person score, ``track`` (N,) track id
    (NaN: none). Rule: with ``track_id``, that track's entries; otherwise, when the file has
    track ids, the track seen in the most frames (ties: the smallest id; entries without a track
    id are ignored); without track ids, every entry. Then, per frame, the highest-scoring of the
    remaining entries (ties: the first in the file).
    """
    has_track = ~np.isnan(track)
    if track_id is not None:
        if not has_track.any():
            raise UserInputError(f"{where}: --track-id {track_id} given but no entry has a 'track_id'")
        keep = track == track_id
        if not keep.any():
            known = np.unique(track[has_track]).astype(np.int64)
            shown = ", ".join(map(str, known[:10])) + (", ..." if len(known) > 10 else "")
            raise UserInputError(f"{where}: no entry has track_id {track_id} (the file has {shown})")
        note = f"track {track_id} (--track-id)"
    elif has_track.any():
        pairs = np.unique(np.stack([track[has_track], frame[has_track]], axis=1), axis=0)
        tracks, counts = np.unique(pairs[:, 0], return_counts=True)
        best = tracks[int(np.argmax(counts))]
        keep = track == best
        note = f"track {int(best)}, seen in the most frames ({counts.max()}) of {len(tracks)} tracks"
    else:
        keep = np.ones(len(frame), dtype=bool)
        note = "the highest-scoring person of each frame (no track ids)"
    candidates = np.flatnonzero(keep)
    order = candidates[np.lexsort((-score[candidates], frame[candidates]))]
    first = np.concatenate([[True], frame[order][1:] != frame[order][:-1]])
    return order[first], note


def _image_sizes(images: Any, image_ids: Sequence[Any], where: str) -> tuple[float, float] | None:
    """The one (width, height) of the ``images`` used by ``image_ids``, or None if they give none."""
    if images is None:
        return None
    if not isinstance(images, list) or not all(isinstance(im, Mapping) for im in images):
        raise UserInputError(f"{where}: 'images' must be a list of objects")
    used = set(image_ids)
    sizes = {
        (_positive_size(im["width"], "image width", where), _positive_size(im["height"], "image height", where))
        for im in images
        if im.get("id") in used and "width" in im and "height" in im
    }
    if len(sizes) > 1:
        raise UserInputError(f"{where}: the images have different sizes {sorted(sizes)}; one sequence needs one size")
    return sizes.pop() if sizes else None


def read_coco_json(
    content: Any,
    where: str,
    width: float | None = None,
    height: float | None = None,
    track_id: int | None = None,
) -> Keypoints2D:
    """One person's COCO-17 keypoints from parsed COCO keypoint JSON (``content``), in frame order.

    ``content`` is a list of person entries or ``{"annotations": [...], "images": [...]}``.
    Frames are ordered by ``image_id``: numerically when the ids are numbers (they must then be
    integers), else by natural sort of the strings (``img2`` before ``img10``). Gaps can be told
    for integer ids and for string ids that differ only in one number. Who is kept when several
    people share a frame: :func:`select_person`. The image size is the ``images``' (one size for
    the sequence), else ``width`` / ``height``.
    """
    images = None
    if isinstance(content, Mapping) and "annotations" in content:
        entries, images = content["annotations"], content.get("images")
    elif isinstance(content, list):
        entries = content
    else:
        raise UserInputError(
            f"{where}: unknown format: JSON that is neither a list of COCO keypoint entries "
            "nor an object with 'annotations'"
        )
    if not isinstance(entries, list):
        raise UserInputError(f"{where}: 'annotations' must be a list of person entries")
    if not entries:
        raise UserInputError(f"{where}: empty sequence (no person entries)")
    keypoints, person, track, image_ids = _parse_entries(entries, where)

    numeric = [_is_number(i) for i in image_ids]
    if any(numeric) and not all(numeric):
        raise UserInputError(f"{where}: image_id mixes numbers and strings")
    if all(numeric):
        if not all(float(i).is_integer() for i in image_ids):
            raise UserInputError(f"{where}: numeric image_id values must be integers")
        unique_ids: list[Any] = sorted({int(i) for i in image_ids})
        image_keys = [int(i) for i in image_ids]
    else:
        unique_ids = sorted(set(image_ids), key=_natural_key)
        image_keys = list(image_ids)
    rank = {image_id: r for r, image_id in enumerate(unique_ids)}
    frame = np.array([rank[k] for k in image_keys], dtype=np.int64)
    chosen, note = select_person(frame, person, track, track_id, where)

    frame_ids = [unique_ids[r] for r in frame[chosen]]
    template = None
    if all(numeric):
        ids_array = np.array(frame_ids, dtype=np.int64)
        numbers: np.ndarray | None = ids_array
    else:
        ids_array = np.array(frame_ids, dtype=str)
        parsed = _string_frame_numbers(frame_ids)
        numbers, template = parsed if parsed is not None else (None, None)
        if numbers is not None and np.any(np.diff(numbers) <= 0):
            numbers, template = None, None  # natural order disagrees with the numbers: no gaps told
    size = _image_sizes(images, [entries[i]["image_id"] for i in chosen], where)
    w, h = _resolve_size(size, width, height, where, "the file gives no image size")
    selected = keypoints[chosen]
    return Keypoints2D(
        keypoints=selected[:, :, :2].copy(),
        scores=selected[:, :, 2].copy(),
        frame_ids=ids_array,
        frame_numbers=numbers,
        width=w,
        height=h,
        joint_names=COCO17_JOINTS,
        source=where,
        id_template=template,
        selection=note,
    )


# ------------------------------------------------------------------------------ mapping and filling


def coco_to_layout(
    keypoints: np.ndarray, scores: np.ndarray, layout: SkeletonLayout, min_score: float
) -> tuple[np.ndarray, np.ndarray, dict[int, tuple[int, int]]]:
    """COCO-17 (T, 17, 2) pixels and (T, 17) scores to ``layout`` by :data:`COCO17_TO_LAYOUT`.

    Returns (T, J, 2) pixels (NaN where not confident), the (T, J) confident mask, and the
    ``midpoint`` joints as {joint: (joint a, joint b)} layout indices, left NaN and not confident
    here: :func:`prepare_keypoints` computes them after filling. A keypoint is confident when its
    score is >= ``min_score``.
    """
    confident = scores >= min_score
    out = np.full((keypoints.shape[0], layout.num_joints, 2), np.nan)
    valid = np.zeros((keypoints.shape[0], layout.num_joints), dtype=bool)
    derived: dict[int, tuple[int, int]] = {}
    for j, name in enumerate(layout.joint_names):
        rule = COCO17_TO_LAYOUT.get(name)
        if rule is None:
            raise UserInputError(f"layout {layout.name}: joint {name!r} has no rule for COCO-17 input")
        if rule.kind == "midpoint":
            a, b = rule.sources
            derived[j] = (layout.index(a), layout.index(b))
            continue
        idx = [COCO17_JOINTS.index(s) for s in rule.sources]
        src, ok = keypoints[:, idx], confident[:, idx]
        if rule.kind == "copy":
            value, good = src[:, 0], ok[:, 0]
        elif rule.kind == "mean":
            value, good = src.mean(axis=1), ok.all(axis=1)
        else:  # mean_confident
            count = ok.sum(axis=1)
            value = (src * ok[..., None]).sum(axis=1) / np.maximum(count, 1)[:, None]
            good = count > 0
        out[good, j] = value[good]
        valid[:, j] = good
    return out, valid, derived


def interpolate_missing(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill the non-``valid`` entries of (T, J, C) ``values`` along time, joint by joint.

    Between valid frames: linear interpolation of that joint's trajectory; before the first or
    after the last valid frame: that frame's value. Joints without any valid frame are left as
    they are. Vectorised over frames (``np.interp``); the loop runs over joints and coordinates.
    """
    out = np.array(values, dtype=np.float64, copy=True)
    t = np.arange(values.shape[0])
    for j in range(values.shape[1]):
        ok = valid[:, j]
        if ok.all() or not ok.any():
            continue
        for c in range(values.shape[2]):
            out[~ok, j, c] = np.interp(t[~ok], t[ok], out[ok, j, c])
    return out


def _frame_grid(seq: Keypoints2D, max_gap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions of the file's frames on the grid, grid image ids, grid present mask).

    The grid runs from the first to the last frame number in steps of the gcd of their
    differences (a video sampled every k-th frame keeps its rate); without frame numbers it is
    the file's frames, back to back.
    """
    n = seq.num_frames
    numbers = seq.frame_numbers
    if numbers is None or n == 1:
        return np.arange(n), seq.frame_ids, np.ones(n, dtype=bool)
    diffs = np.diff(numbers)
    step = int(np.gcd.reduce(diffs))
    missing = diffs // step - 1
    k = int(np.argmax(missing))
    if missing[k] > max_gap:
        raise UserInputError(
            f"{seq.source}: {missing[k]} frames are missing between image ids {seq.frame_ids[k]} and "
            f"{seq.frame_ids[k + 1]}; at most --max-gap {max_gap} consecutive frames can be filled"
        )
    positions = (numbers - numbers[0]) // step
    total = int(positions[-1]) + 1
    present = np.zeros(total, dtype=bool)
    present[positions] = True
    grid_numbers = numbers[0] + step * np.arange(total, dtype=np.int64)
    if seq.id_template is None:
        return positions, grid_numbers, present
    prefix, pad, suffix = seq.id_template
    names = np.empty(total, dtype=object)
    names[positions] = seq.frame_ids
    names[~present] = [f"{prefix}{int(v):0{pad}d}{suffix}" for v in grid_numbers[~present]]
    return positions, names.astype(str), present


def prepare_keypoints(
    seq: Keypoints2D,
    layout: SkeletonLayout,
    min_score: float = DEFAULT_MIN_SCORE,
    max_gap: int = DEFAULT_MAX_GAP,
) -> PreparedKeypoints:
    """Keypoints in ``layout`` on a gap-free frame grid, low-confidence joints and missing frames filled.

    COCO-17 input is mapped by :func:`coco_to_layout`; layout input is taken as it is (a joint is
    confident when it has no score or its score is >= ``min_score``). Frames missing from the file
    are inserted. Every joint not confident in a frame is then filled from its own trajectory
    (:func:`interpolate_missing`), and the ``midpoint`` joints are computed from the filled ones.

    Errors (one line, naming the file): no frame with a confident joint; more than ``max_gap``
    consecutive frames that are missing or have no confident joint; a joint never confident.
    """
    if not math.isfinite(min_score) or min_score < 0:
        raise UserInputError(f"--min-score must be a number >= 0, got {min_score}")
    if max_gap < 0:
        raise UserInputError(f"--max-gap must be >= 0, got {max_gap}")
    where = seq.source
    if seq.joint_names == COCO17_JOINTS:
        assert seq.scores is not None
        base, confident, derived = coco_to_layout(seq.keypoints, seq.scores, layout, min_score)
    elif seq.joint_names == layout.joint_names:
        base = seq.keypoints.astype(np.float64)
        confident = np.ones(base.shape[:2], dtype=bool) if seq.scores is None else seq.scores >= min_score
        derived = {}
    else:
        raise UserInputError(f"{where}: keypoints are neither COCO-17 nor in the model's layout {layout.name}")

    positions, frames, present = _frame_grid(seq, max_gap)
    num_frames, num_joints = len(frames), layout.num_joints
    values = np.full((num_frames, num_joints, 2), np.nan)
    values[positions] = base
    valid = np.zeros((num_frames, num_joints), dtype=bool)
    valid[positions] = confident

    own = np.array([j not in derived for j in range(num_joints)])
    frame_ok = valid[:, own].any(axis=1)
    if not frame_ok.any():
        raise UserInputError(f"{where}: no valid frame (no keypoint has a score >= --min-score {min_score:g})")
    edges = np.diff(np.concatenate([[0], (~frame_ok).astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if len(starts):
        k = int(np.argmax(ends - starts))
        if ends[k] - starts[k] > max_gap:
            raise UserInputError(
                f"{where}: {ends[k] - starts[k]} consecutive frames (image ids {frames[starts[k]]} to "
                f"{frames[ends[k] - 1]}) are missing or have no keypoint with a score >= --min-score "
                f"{min_score:g}; at most --max-gap {max_gap} can be filled"
            )
    never = [layout.joint_names[j] for j in range(num_joints) if own[j] and not valid[:, j].any()]
    if never:
        sources = {name: "/".join(COCO17_TO_LAYOUT[name].sources) for name in never}
        detail = (
            ", ".join(f"{name} (from COCO {sources[name]})" for name in never)
            if seq.joint_names == COCO17_JOINTS
            else ", ".join(never)
        )
        raise UserInputError(f"{where}: joint never has a score >= --min-score {min_score:g} in any frame: {detail}")

    filled = ~valid
    values = interpolate_missing(values, valid)
    for j, (a, b) in derived.items():
        values[:, j] = (values[:, a] + values[:, b]) / 2.0
        filled[:, j] = filled[:, a] | filled[:, b]
    return PreparedKeypoints(values, filled, frames, present, seq.width, seq.height, layout, where)


# ------------------------------------------------------------------------------------------ lifting


def lifting_network(path: str | os.PathLike[str]) -> tuple[nn.Module, SkeletonLayout]:
    """The lifting network (role ``model``) of a checkpoint, in eval mode, and its layout.

    A checkpoint without one (a refinement module alone, say) is a user error. A refinement
    module stored beside it is not applied: its input needs the camera intrinsics and root depth.
    """
    from mlpgraph.checkpoints import networks_from_checkpoint
    from mlpgraph.models.refine import PoseRefinement

    networks = networks_from_checkpoint(path)
    model = networks.get("model")
    if model is None or isinstance(model, PoseRefinement):
        raise UserInputError(
            f"{path}: not a lifting network checkpoint (it holds {sorted(networks)}; "
            "expected a 2D-to-3D network under 'model')"
        )
    return model, get_layout(str(model.config["layout"]))


def lift(
    model: nn.Module,
    keypoints_2d: np.ndarray,
    layout: SkeletonLayout,
    flip_test: bool = True,
    batch_size: int = 1024,
    device: str = "cpu",
) -> np.ndarray:
    """(T, J, 3) float32 root-relative metres for one sequence of (T, J, 2) normalised 2D.

    Exactly :func:`mlpgraph.evaluation.predict` on a one-sequence :class:`PoseArrays`: temporal
    models get windows of ``frames`` centred on each frame, edge-padded at the sequence's ends.
    """
    from mlpgraph.data.batches import PoseArrays
    from mlpgraph.evaluation import model_pad, predict

    num_frames = keypoints_2d.shape[0]
    data = PoseArrays.from_numpy(
        np.asarray(keypoints_2d, dtype=np.float32),
        np.zeros((num_frames, layout.num_joints, 3), dtype=np.float32),
        np.array([[0, num_frames]], dtype=np.int64),
        layout=layout.name,
        device=device,
    )
    pred = predict(model, data, model_pad(model), flip_test=flip_test, batch_size=batch_size)
    return pred.detach().cpu().numpy().astype(np.float32)


def write_prediction(path: str | os.PathLike[str], result: LiftResult) -> Path:
    """Write ``result`` as an ``.npz`` (atomically; readable with ``allow_pickle=False``).

    Keys: ``poses_3d`` (T, J, 3) float32 root-relative camera-space metres, ``keypoints_2d``
    (T, J, 2) float32 the filled pixels that were lifted, ``filled`` (T, J) bool, ``frames`` (T,)
    image ids, ``present`` (T,) bool (frame in the input file), ``joint_names``, ``layout``,
    ``width``, ``height``, ``frames_per_window``, ``flip_test``.
    """
    prep = result.prepared
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            poses_3d=result.poses_3d.astype(np.float32),
            keypoints_2d=prep.keypoints.astype(np.float32),
            filled=prep.filled,
            frames=prep.frames,
            present=prep.present,
            joint_names=np.array(prep.layout.joint_names, dtype=str),
            layout=np.array(prep.layout.name),
            width=np.float64(prep.width),
            height=np.float64(prep.height),
            frames_per_window=np.int64(result.frames_per_window),
            flip_test=np.bool_(result.flip_test),
        )
    return path


def predict_file(
    checkpoint: str | os.PathLike[str],
    input_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    width: float | None = None,
    height: float | None = None,
    min_score: float = DEFAULT_MIN_SCORE,
    track_id: int | None = None,
    max_gap: int = DEFAULT_MAX_GAP,
    flip_test: bool = True,
    batch_size: int = 1024,
    device: str = "cpu",
    gif: str | os.PathLike[str] | None = None,
) -> LiftResult:
    """Read, map, fill, normalise, lift and write one keypoint file (``mlpgraph predict``).

    With ``gif``, also :func:`render_gif`. Everything that can be wrong with the inputs is checked
    before anything is logged or written, so a user error leaves a single line and no output file.
    """
    if gif is not None:
        _viz_available()
    model, layout = lifting_network(checkpoint)
    seq = read_keypoints(input_path, layout, width, height, track_id)
    prepared = prepare_keypoints(seq, layout, min_score, max_gap)
    poses = lift(model, prepared.normalised(), layout, flip_test=flip_test, batch_size=batch_size, device=device)
    result = LiftResult(prepared, poses, int(getattr(model, "frames", 1)), flip_test)
    write_prediction(out, result)
    if gif is not None:
        render_gif(result, gif)
    if seq.selection:
        log.info("predict: %s: kept %s", seq.source, seq.selection)
    log.info(
        "predict: %d frames (%d inserted), %d of %d joint values filled (--min-score %g)",
        len(prepared.frames),
        int((~prepared.present).sum()),
        int(prepared.filled.sum()),
        prepared.filled.size,
        min_score,
    )
    return result


def render_gif(result: LiftResult, path: str | os.PathLike[str], title: str = "") -> Path:
    """An animated GIF of the lifted sequence: the filled 2D input beside the 3D prediction.

    Draws at most :data:`GIF_MAX_FRAMES` frames, evenly spaced (every ``ceil(T / 200)``-th), and
    plays them at :data:`GIF_FPS`; the 3D view turns slowly. Uses :mod:`mlpgraph.viz`.
    """
    render_frames, write_gif = _viz_available()
    prep = result.prepared
    stride = max(1, math.ceil(len(prep.frames) / GIF_MAX_FRAMES))
    images = render_frames(
        poses_2d_px=prep.keypoints[::stride],
        pred_3d=result.poses_3d[::stride],
        gt_3d=None,
        layout=prep.layout,
        image_size=(round(prep.width), round(prep.height)),
        title=title or Path(prep.source).name,
        view="rotate",
        size_px=(960, 480),
    )
    return write_gif(images, path, GIF_FPS)


def _viz_available() -> tuple[Any, Any]:
    """``mlpgraph.viz``'s ``render_frames`` and ``write_gif`` (imported lazily: matplotlib is heavy)."""
    try:
        from mlpgraph.viz import render_frames, write_gif
    except ImportError as exc:
        raise UserInputError(f"--gif: rendering is not available here ({exc})") from None
    return render_frames, write_gif
