"""From every person a detector saw to one person's keypoints in frame order: what all multi-person readers share.

A reader parses its file into :class:`Detections` (one row per person per frame); :func:`choose_person`
orders the frames, keeps one person (:func:`select_person`) and tells the frames' numbers, and
:func:`to_sequence` builds the :class:`~.sequence.Keypoints2D`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mlpgraph.cameras import check_in_image
from mlpgraph.errors import UserInputError
from mlpgraph.user_keypoints.association import link_tracks, strongest_track
from mlpgraph.user_keypoints.joint_maps import SourceSkeleton
from mlpgraph.user_keypoints.sequence import Keypoints2D, check_frame_number, resolve_image_size


@dataclass(frozen=True)
class Detections:
    """Every person entry of a file: ``keypoints`` (N, K, 3) [x, y, score] of ``skeleton``'s joints.

    ``score`` (N,) person score; ``track`` (N,) track id (NaN: none), read from the file's key
    ``track_key``; ``image_ids`` (N,) the frame each entry belongs to (numbers or strings).
    ``untracked`` says why the file's track ids are not used, when they are not ("" : none given).
    """

    keypoints: np.ndarray
    score: np.ndarray
    track: np.ndarray
    image_ids: list[Any]
    skeleton: SourceSkeleton
    track_key: str = "track_id"
    untracked: str = ""


@dataclass(frozen=True)
class Chosen:
    """The kept entries (``indices``, in frame order), why (``note``) and their frames' ids, numbers and id template."""

    indices: np.ndarray
    note: str
    frame_ids: np.ndarray
    frame_numbers: np.ndarray | None
    id_template: tuple[str, int, str] | None


def is_number(value: Any) -> bool:
    """A JSON number (bool excluded)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _natural_key(text: str) -> tuple[Any, ...]:
    """Sort key that orders embedded numbers by value: ``img2`` before ``img10``."""
    parts = re.split(r"(\d+)", text)
    return tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts))


def frame_order(image_ids: list[Any], where: str) -> tuple[bool, list[Any], np.ndarray]:
    """(whether the ids are numbers, the distinct ids in frame order, (N,) frame rank of each entry)."""
    numeric = [is_number(i) for i in image_ids]
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


def string_frame_numbers(ids: Sequence[str], where: str) -> tuple[np.ndarray, tuple[str, int, str]] | None:
    """Frame numbers of string ids that differ only in one number (``frame_000012.jpg``), or None.

    The template (prefix, zero-padded width or 0, suffix) names inserted frames. A number beyond
    :data:`~.sequence.MAX_FRAME_NUMBER` is refused.
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


def frame_numbers(
    frame_ids: list[Any], numeric: bool, where: str
) -> tuple[np.ndarray, np.ndarray | None, tuple[str, int, str] | None]:
    """The frames' ids as an array, their frame numbers (None: gaps cannot be told) and id template."""
    if numeric:
        ids_array = np.array(frame_ids, dtype=np.int64)
        return ids_array, ids_array, None
    parsed = string_frame_numbers(frame_ids, where)
    if parsed is None or np.any(np.diff(parsed[0]) <= 0):  # natural order disagrees with the numbers
        return np.array(frame_ids, dtype=str), None, None
    return np.array(frame_ids, dtype=str), parsed[0], parsed[1]


def drop_shared_tracks(dets: Detections, where: str) -> Detections:
    """``dets`` without its track ids when two people of one frame share one (written without a tracker)."""
    tracked = ~np.isnan(dets.track)
    if not tracked.any():
        return dets
    _, _, frame = frame_order(dets.image_ids, where)
    pairs = np.stack([frame[tracked], dets.track[tracked]], axis=1)
    if len(np.unique(pairs, axis=0)) == len(pairs):
        return dets
    reason = f"people of one frame share {_with_article(dets.track_key)} (no tracker was run)"
    return replace(dets, track=np.full(len(dets.track), np.nan), untracked=reason)


def _frame_times(unique_ids: list[Any], numeric: bool, where: str) -> np.ndarray:
    """(F,) time of each distinct frame in frames (consecutive frames one apart): by their numbers, else their rank."""
    _, numbers, _ = frame_numbers(unique_ids, numeric, where)
    if numbers is None or len(numbers) < 2:
        return np.arange(len(unique_ids), dtype=np.float64)
    step = int(np.gcd.reduce(np.diff(numbers)))
    return (numbers - numbers[0]) / float(step)


def _with_article(key: str) -> str:
    """``a 'track_id'``, ``an 'idx'``: a file's key for a sentence."""
    return f"{'an' if key[:1] in 'aeiou' else 'a'} {key!r}"


def _shown(values: np.ndarray) -> str:
    """Up to ten integers for a message."""
    return ", ".join(map(str, values[:10])) + (", ..." if len(values) > 10 else "")


def select_person(
    frame: np.ndarray,
    score: np.ndarray,
    track: np.ndarray,
    track_id: int | None,
    where: str,
    keypoints: np.ndarray,
    sigmas: Sequence[float],
    time: np.ndarray | None = None,
    track_key: str = "track_id",
    untracked: str = "",
) -> tuple[np.ndarray, str]:
    """Indices of the one person entry kept per frame, in frame order, and a sentence saying why.

    ``frame`` (N,) frame rank per entry, ``score`` (N,) person score, ``track`` (N,) the file's track
    id (NaN: none), ``keypoints`` (N, K, 3), ``sigmas`` (K,) their OKS sigmas, ``time`` (N,) frame
    times for the association (default: ``frame``), ``untracked`` why the file's ids under
    ``track_key`` are not used (default: it has none).

    With track ids in the file: ``track_id``'s entries, else the track seen in the most frames
    (ties: the smallest id; entries without one are ignored). Without: when no frame has two
    people, every entry (one track, 0); else the detections are linked over time
    (:func:`~.association.link_tracks`) and ``track_id`` picks a linked track by number, else the
    linked track of largest summed person score is kept. Then, per frame, the highest-scoring of
    the remaining entries (ties: the first in the file).
    """
    if (~np.isnan(track)).any():
        tracks, wanted, note = _file_track(frame, track, track_id, where, track_key)
    else:
        untracked = untracked or f"no entry has {_with_article(track_key)}"
        tracks, wanted, note = _linked_track(frame, score, keypoints, sigmas, time, track_id, where, untracked)
    candidates = np.flatnonzero(tracks == wanted)
    order = candidates[np.lexsort((-score[candidates], frame[candidates]))]
    first = np.concatenate([[True], frame[order][1:] != frame[order][:-1]])
    return order[first], note


def _file_track(
    frame: np.ndarray, track: np.ndarray, track_id: int | None, where: str, track_key: str
) -> tuple[np.ndarray, float, str]:
    """(track per entry, the kept one, why) from the file's own track ids."""
    has_track = ~np.isnan(track)
    if track_id is not None:
        if not (track == track_id).any():
            known = _shown(np.unique(track[has_track]).astype(np.int64))
            raise UserInputError(f"{where}: no entry has {track_key} {track_id} (the file has {known})")
        return track, track_id, f"track {track_id} (--track-id)"
    pairs = np.unique(np.stack([track[has_track], frame[has_track]], axis=1), axis=0)
    ids, counts = np.unique(pairs[:, 0], return_counts=True)
    wanted = int(ids[int(np.argmax(counts))])
    return track, wanted, f"track {wanted}, seen in the most frames ({counts.max()}) of {len(ids)} tracks"


def _linked_track(
    frame: np.ndarray,
    score: np.ndarray,
    keypoints: np.ndarray,
    sigmas: Sequence[float],
    time: np.ndarray | None,
    track_id: int | None,
    where: str,
    untracked: str,
) -> tuple[np.ndarray, int, str]:
    """(track per entry, the kept one, why) from linking the detections over time (no usable track ids)."""
    frames = int(frame.max()) + 1
    if np.bincount(frame).max() <= 1:
        tracks, how = np.zeros(len(frame), dtype=np.int64), f"one person per frame, and {untracked}"
        best, count, note = 0, 1, f"the one person of each frame ({untracked})"
    else:
        tracks = link_tracks(frame if time is None else time, keypoints, sigmas)
        how = f"linked frame to frame by keypoint similarity (OKS), as {untracked}"
        best, seen, count = strongest_track(tracks, score)
        note = f"track {best} of {count} ({how}): the largest summed person score, {seen} of {frames} frames"
    wanted = best
    if track_id is not None:
        if not (tracks == track_id).any():
            raise UserInputError(
                f"{where}: --track-id {track_id} given but {untracked}, and linking the detections over time "
                f"found tracks {_shown(np.arange(count))}"
            )
        wanted, note = track_id, f"track {track_id} of {count} (--track-id; {how})"
    return tracks, wanted, note


def choose_person(dets: Detections, track_id: int | None, where: str) -> Chosen:
    """Order ``dets``' frames, keep one person (:func:`select_person`) and tell the kept frames' numbers."""
    numeric, unique_ids, frame = frame_order(dets.image_ids, where)
    time = _frame_times(unique_ids, numeric, where)[frame]
    chosen, note = select_person(
        frame,
        dets.score,
        dets.track,
        track_id,
        where,
        dets.keypoints,
        dets.skeleton.sigmas,
        time,
        dets.track_key,
        dets.untracked,
    )
    ids, numbers, template = frame_numbers([unique_ids[r] for r in frame[chosen]], numeric, where)
    return Chosen(chosen, note, ids, numbers, template)


def to_sequence(
    dets: Detections,
    chosen: Chosen,
    where: str,
    file_size: tuple[float, float] | None,
    width: float | None,
    height: float | None,
    fps: float | None = None,
) -> Keypoints2D:
    """The chosen person's :class:`Keypoints2D`; the image size is the file's (``file_size``), else the options'."""
    w, h = resolve_image_size(file_size, width, height, where, "the file gives no image size")
    selected = dets.keypoints[chosen.indices]
    check_in_image(selected[:, :, :2], w, h, where, "'keypoints'")
    return Keypoints2D(
        keypoints=selected[:, :, :2].copy(),
        scores=selected[:, :, 2].copy(),
        frame_ids=chosen.frame_ids,
        frame_numbers=chosen.frame_numbers,
        width=w,
        height=h,
        joint_names=dets.skeleton.joints,
        source=where,
        id_template=chosen.id_template,
        selection=chosen.note,
        fps=fps,
    )
