"""COCO-17 keypoint JSON: reading one person's track, and mapping COCO-17 onto the model's layout by joint name.

The JSON is what 2D detectors write: a list of person entries (``image_id``, ``keypoints`` as a
flat [x, y, score] x 17 list, optional ``score``, optional ``track_id``), or an object
``{"annotations": [...], "images": [...]}`` whose images give ``width`` / ``height``.
Ground-truth COCO files carry visibility flags (0, 1, 2) in place of scores, which the default
``min_score`` reads as "not labelled" / "labelled".

COCO-17 keypoints are converted to the model's layout through one declarative table,
:data:`COCO17_TO_LAYOUT`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mlpgraph.cameras import check_in_image
from mlpgraph.errors import UserInputError
from mlpgraph.layouts import SkeletonLayout
from mlpgraph.user_keypoints.sequence import Keypoints2D, check_frame_number, positive_size, resolve_image_size

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


# ------------------------------------------------------------------------------------------ reading


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
    entries, images = _entries_and_images(content, where)
    keypoints, person, track, image_ids = _parse_entries(entries, where)
    numeric, unique_ids, frame = _frame_order(image_ids, where)
    chosen, note = select_person(frame, person, track, track_id, where)
    frame_ids = [unique_ids[r] for r in frame[chosen]]
    ids_array, numbers, template = _frame_numbers(frame_ids, numeric, where)
    size = _image_sizes(images, [entries[i]["image_id"] for i in chosen], where)
    w, h = resolve_image_size(size, width, height, where, "the file gives no image size")
    selected = keypoints[chosen]
    check_in_image(selected[:, :, :2], w, h, where, "'keypoints'")
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
        person[i], track[i] = _entry_score_and_track(entry, i, where)
        image_ids.append(image_id)
    if not np.isfinite(keypoints).all():
        i = int(np.argwhere(~np.isfinite(keypoints))[0, 0])
        raise UserInputError(f"{where}: entry {i} (image_id {image_ids[i]!r}) has NaN or infinite keypoints")
    keypoints = keypoints.reshape(len(entries), len(COCO17_JOINTS), 3)
    person = np.where(np.isnan(person), keypoints[:, :, 2].mean(axis=1), person)
    return keypoints, person, track, image_ids


def _entry_score_and_track(entry: Mapping[str, Any], i: int, where: str) -> tuple[float, float]:
    """Entry ``i``'s person ``score`` and ``track_id`` (NaN for each it does not give)."""
    score, tid = entry.get("score"), entry.get("track_id")
    if score is not None and (not _is_number(score) or not math.isfinite(score)):
        raise UserInputError(f"{where}: entry {i}: 'score' must be a finite number, got {score!r}")
    if tid is not None and _is_number(tid):
        check_frame_number(tid, where, f"entry {i}: track_id")
    if tid is not None and not (_is_number(tid) and float(tid).is_integer()):
        raise UserInputError(f"{where}: entry {i}: 'track_id' must be an integer, got {tid!r}")
    return (math.nan if score is None else score), (math.nan if tid is None else tid)


def _natural_key(text: str) -> tuple[Any, ...]:
    """Sort key that orders embedded numbers by value: ``img2`` before ``img10``."""
    parts = re.split(r"(\d+)", text)
    return tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts))


def _frame_order(image_ids: list[Any], where: str) -> tuple[bool, list[Any], np.ndarray]:
    """(whether the ids are numbers, the distinct ids in frame order, (N,) frame rank of each entry)."""
    numeric = [_is_number(i) for i in image_ids]
    if any(numeric) and not all(numeric):
        raise UserInputError(f"{where}: image_id mixes numbers and strings")
    if all(numeric):
        for i in image_ids:
            check_frame_number(i, where, f"image_id {i!r}")
        if not all(float(i).is_integer() for i in image_ids):
            raise UserInputError(f"{where}: numeric image_id values must be integers")
        unique_ids: list[Any] = sorted({int(i) for i in image_ids})
        image_keys = [int(i) for i in image_ids]
    else:
        unique_ids = sorted(set(image_ids), key=_natural_key)
        image_keys = list(image_ids)
    rank = {image_id: r for r, image_id in enumerate(unique_ids)}
    return all(numeric), unique_ids, np.array([rank[k] for k in image_keys], dtype=np.int64)


_LAST_NUMBER = re.compile(r"^(.*?)(\d+)(\D*)$")


def _string_frame_numbers(ids: Sequence[str], where: str) -> tuple[np.ndarray, tuple[str, int, str]] | None:
    """Frame numbers of string ids that differ only in one number (``frame_000012.jpg``), or None.

    The template (prefix, zero-padded width or 0, suffix) names inserted frames. A number beyond
    :data:`MAX_FRAME_NUMBER` is refused.
    """
    matches = [_LAST_NUMBER.match(i) for i in ids]
    if not all(matches):
        return None
    prefixes = {m.group(1) for m in matches if m}
    suffixes = {m.group(3) for m in matches if m}
    if len(prefixes) != 1 or len(suffixes) != 1:
        return None
    digits = [m.group(2) for m in matches if m]
    for image_id, d in zip(ids, digits, strict=True):
        check_frame_number(int(d), where, f"image_id {image_id!r}: frame number")
    numbers = np.array([int(d) for d in digits], dtype=np.int64)
    if len(np.unique(numbers)) != len(numbers):
        return None
    widths = {len(d) for d in digits}
    pad = widths.pop() if len(widths) == 1 else 0
    return numbers, (prefixes.pop(), pad, suffixes.pop())


def _frame_numbers(
    frame_ids: list[Any], numeric: bool, where: str
) -> tuple[np.ndarray, np.ndarray | None, tuple[str, int, str] | None]:
    """The kept frames' ids as an array, their frame numbers (None: gaps cannot be told) and id template."""
    if numeric:
        ids_array = np.array(frame_ids, dtype=np.int64)
        return ids_array, ids_array, None
    parsed = _string_frame_numbers(frame_ids, where)
    if parsed is None or np.any(np.diff(parsed[0]) <= 0):  # natural order disagrees with the numbers
        return np.array(frame_ids, dtype=str), None, None
    return np.array(frame_ids, dtype=str), parsed[0], parsed[1]


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
    for k, im in enumerate(images):
        if not (_is_number(im.get("id")) or isinstance(im.get("id"), str)):
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


# ------------------------------------------------------------------------------------------ mapping


def coco_to_layout(
    keypoints: np.ndarray, scores: np.ndarray, layout: SkeletonLayout, min_score: float
) -> tuple[np.ndarray, np.ndarray, dict[int, tuple[int, int]]]:
    """COCO-17 (T, 17, 2) pixels and (T, 17) scores to ``layout`` by :data:`COCO17_TO_LAYOUT`.

    Returns (T, J, 2) pixels (NaN where not confident), the (T, J) confident mask, and the
    ``midpoint`` joints as {joint: (joint a, joint b)} layout indices, left NaN and not confident
    here: :func:`mlpgraph.user_keypoints.filling.prepare_keypoints` computes them after filling.
    A keypoint is confident when its score is >= ``min_score``.
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
