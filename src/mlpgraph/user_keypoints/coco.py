"""COCO-17 keypoint JSON (and the entry lists AlphaPose writes alike): reading one person's track.

The JSON is what 2D detectors write: a list of person entries (``image_id``, ``keypoints`` as a
flat [x, y, score] x 17 list, optional ``score``, optional ``track_id``), or an object
``{"annotations": [...], "images": [...]}`` whose images give ``width`` / ``height``.
Ground-truth COCO files carry visibility flags (0, 1, 2) in place of scores, which the default
``min_score`` reads as "not labelled" / "labelled".

COCO-17 keypoints are converted to the model's layout by joint name through one declarative
table, :data:`~.joint_maps.COCO17_TO_LAYOUT` (re-exported here with the COCO-17 joint names).
Who is kept when several people are seen: :func:`~.people.select_person`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from mlpgraph.errors import UserInputError
from mlpgraph.user_keypoints.joint_maps import (
    COCO17,
    COCO17_FACE,
    COCO17_JOINTS,
    COCO17_TO_LAYOUT,
    JointRule,
    SourceSkeleton,
    coco_to_layout,
)
from mlpgraph.user_keypoints.people import Detections, choose_person, is_number, select_person, to_sequence
from mlpgraph.user_keypoints.sequence import Keypoints2D, check_frame_number, positive_size

__all__ = [
    "COCO17_FACE",
    "COCO17_JOINTS",
    "COCO17_TO_LAYOUT",
    "JointRule",
    "coco_to_layout",
    "parse_entries",
    "read_coco_json",
    "select_person",
]

COCO_EXPECTED = f"{3 * len(COCO17_JOINTS)} numbers ([x, y, score] x {len(COCO17_JOINTS)} COCO-17 joints)"


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
    people share a frame: :func:`~.people.select_person`. The image size is the ``images``' (one
    size for the sequence), else ``width`` / ``height``.
    """
    entries, images = _entries_and_images(content, where)
    dets = parse_entries(entries, where, {len(COCO17_JOINTS): COCO17}, COCO_EXPECTED)
    chosen = choose_person(dets, track_id, where)
    size = _image_sizes(images, [entries[i]["image_id"] for i in chosen.indices], where)
    return to_sequence(dets, chosen, where, size, width, height)


def _entries_and_images(content: Any, where: str) -> tuple[list[Any], Any]:
    """The non-empty list of person entries, and the ``images`` (None when the file has none)."""
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
    return entries, images


def coco_track_id(value: Any, i: int, where: str, key: str = "track_id", expected: str = "an integer") -> float:
    """Entry ``i``'s track id ``key`` as a float (NaN: none); an integer within range (``expected`` for the message)."""
    if value is None:
        return math.nan
    if is_number(value):
        check_frame_number(value, where, f"entry {i}: {key}")
    if not (is_number(value) and float(value).is_integer()):
        raise UserInputError(f"{where}: entry {i}: '{key}' must be {expected}, got {value!r:.60}")
    return float(value)


def parse_entries(
    entries: Sequence[Any],
    where: str,
    skeletons: Mapping[int, SourceSkeleton],
    expected: str,
    track_key: str = "track_id",
    track_value: Callable[[Any, int, str], float] = coco_track_id,
) -> Detections:
    """Person entries (``image_id``, flat ``keypoints``, optional ``score`` and track) as :class:`~.people.Detections`.

    ``skeletons`` maps a keypoint count K to the skeleton read from the first of the K (every
    entry must have the same K); ``expected`` says the allowed counts, for the error. A missing
    ``score`` is the mean keypoint score.
    """
    if not entries:
        raise UserInputError(f"{where}: empty sequence (no person entries)")
    rows: list[list[Any]] = []
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
        if not (is_number(image_id) or isinstance(image_id, str)):
            raise UserInputError(f"{where}: entry {i}: image_id must be a number or a string, got {image_id!r}")
        if not isinstance(kp, list) or len(kp) % 3 or len(kp) // 3 not in skeletons or not all(map(is_number, kp)):
            got = f"{len(kp)} values" if isinstance(kp, list) else type(kp).__name__
            raise UserInputError(
                f"{where}: entry {i} (image_id {image_id!r}): 'keypoints' must be {expected}, got {got}"
            )
        if rows and len(kp) != len(rows[0]):
            raise UserInputError(
                f"{where}: entry {i} (image_id {image_id!r}) has {len(kp) // 3} keypoints, entry 0 has "
                f"{len(rows[0]) // 3}: one file holds one keypoint set"
            )
        rows.append(kp)
        person[i] = _entry_score(entry, i, where)
        track[i] = track_value(entry.get(track_key), i, where)
        image_ids.append(image_id)
    keypoints = np.array(rows, dtype=np.float64)
    if not np.isfinite(keypoints).all():
        i = int(np.argwhere(~np.isfinite(keypoints))[0, 0])
        raise UserInputError(f"{where}: entry {i} (image_id {image_ids[i]!r}) has NaN or infinite keypoints")
    skeleton = skeletons[keypoints.shape[1] // 3]
    keypoints = keypoints.reshape(len(entries), -1, 3)[:, : len(skeleton.joints)]
    person = np.where(np.isnan(person), keypoints[:, :, 2].mean(axis=1), person)
    return Detections(keypoints, person, track, image_ids, skeleton, track_key)


def _entry_score(entry: Mapping[str, Any], i: int, where: str) -> float:
    """Entry ``i``'s person ``score`` (NaN when it gives none)."""
    score = entry.get("score")
    if score is not None and (not is_number(score) or not math.isfinite(score)):
        raise UserInputError(f"{where}: entry {i}: 'score' must be a finite number, got {score!r}")
    return math.nan if score is None else float(score)


def _image_sizes(images: Any, image_ids: Sequence[Any], where: str) -> tuple[float, float] | None:
    """The one (width, height) of the ``images`` used by ``image_ids``, or None if they give none."""
    if images is None:
        return None
    if not isinstance(images, list) or not all(isinstance(im, Mapping) for im in images):
        raise UserInputError(f"{where}: 'images' must be a list of objects")
    for k, im in enumerate(images):
        if not (is_number(im.get("id")) or isinstance(im.get("id"), str)):
            raise UserInputError(f"{where}: images[{k}]: 'id' must be a number or a string, got {im.get('id')!r:.60}")
    used = set(image_ids)
    sizes = {
        (positive_size(im["width"], "image width", where), positive_size(im["height"], "image height", where))
        for im in images
        if im.get("id") in used and "width" in im and "height" in im
    }
    if len(sizes) > 1:
        raise UserInputError(f"{where}: the images have different sizes {sorted(sizes)}; one sequence needs one size")
    return sizes.pop() if sizes else None
