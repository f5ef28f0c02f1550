"""Keypoints onto a gap-free frame grid in the model's layout, low-confidence joints and missing frames filled in time.

Frames missing from the file are inserted; every joint that is not confident in a frame is filled
from its neighbours in time (:func:`interpolate_missing`). Longer holes than ``max_gap`` frames are
an error: they are better cut than bridged with a straight line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mlpgraph.errors import UserInputError
from mlpgraph.layouts import SkeletonLayout
from mlpgraph.user_keypoints.joint_maps import SOURCE_SKELETONS, source_skeleton, to_layout
from mlpgraph.user_keypoints.sequence import Keypoints2D

DEFAULT_MIN_SCORE = 0.3
# Half a second at Human3.6M's 50 fps: longer holes are better cut than bridged with a straight line.
DEFAULT_MAX_GAP = 25


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

    A detector's skeleton (COCO-17, Halpe-26, BODY_25) is mapped by its joint-name table
    (:func:`~mlpgraph.user_keypoints.joint_maps.to_layout`); layout input
    is taken as it is (a joint is confident when it has no score or its score is >= ``min_score``).
    Frames missing from the file are inserted. Every joint not confident in a frame is then filled
    from its own trajectory (:func:`interpolate_missing`), and the ``midpoint`` joints are computed
    from the filled ones.

    Errors (one line, naming the file): no frame with a confident joint; more than ``max_gap``
    consecutive frames that are missing or have no confident joint; a joint never confident.
    """
    if not math.isfinite(min_score) or min_score < 0:
        raise UserInputError(f"--min-score must be a number >= 0, got {min_score}")
    if max_gap < 0:
        raise UserInputError(f"--max-gap must be >= 0, got {max_gap}")
    base, confident, derived = _in_layout(seq, layout, min_score)
    positions, frames, present = _frame_grid(seq, max_gap)
    num_frames, num_joints = len(frames), layout.num_joints
    values = np.full((num_frames, num_joints, 2), np.nan)
    values[positions] = base
    valid = np.zeros((num_frames, num_joints), dtype=bool)
    valid[positions] = confident
    own = np.array([j not in derived for j in range(num_joints)])
    _check_fillable(seq, layout, frames, valid, own, min_score, max_gap)

    filled = ~valid
    values = interpolate_missing(values, valid)
    for j, (a, b) in derived.items():
        values[:, j] = (values[:, a] + values[:, b]) / 2.0
        filled[:, j] = filled[:, a] | filled[:, b]
    return PreparedKeypoints(values, filled, frames, present, seq.width, seq.height, layout, seq.source)


def _in_layout(
    seq: Keypoints2D, layout: SkeletonLayout, min_score: float
) -> tuple[np.ndarray, np.ndarray, dict[int, tuple[int, int]]]:
    """``seq``'s (T, J, 2) pixels in ``layout``, the (T, J) confident mask and the derived (midpoint) joints."""
    skeleton = source_skeleton(seq.joint_names)
    if skeleton is not None:
        scores = np.ones(seq.keypoints.shape[:2]) if seq.scores is None else seq.scores
        return to_layout(seq.keypoints, scores, skeleton.joints, skeleton.rules, layout, min_score)
    if seq.joint_names == layout.joint_names:
        base = seq.keypoints.astype(np.float64)
        confident = np.ones(base.shape[:2], dtype=bool) if seq.scores is None else seq.scores >= min_score
        return base, confident, {}
    known = ", ".join(s.name for s in SOURCE_SKELETONS)
    raise UserInputError(f"{seq.source}: keypoints are neither {known} nor in the model's layout {layout.name}")


def _check_fillable(
    seq: Keypoints2D,
    layout: SkeletonLayout,
    frames: np.ndarray,
    valid: np.ndarray,
    own: np.ndarray,
    min_score: float,
    max_gap: int,
) -> None:
    """Refuse a grid that cannot be filled: no confident frame, a hole over ``max_gap``, a joint never confident.

    ``valid`` (T, J) is the confident mask on the grid, ``own`` (J,) the joints that are not derived.
    """
    where = seq.source
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
    never = [layout.joint_names[j] for j in range(layout.num_joints) if own[j] and not valid[:, j].any()]
    if never:
        skeleton = source_skeleton(seq.joint_names)
        detail = (
            ", ".join(f"{name} (from {skeleton.label} {'/'.join(skeleton.rules[name].sources)})" for name in never)
            if skeleton is not None
            else ", ".join(never)
        )
        raise UserInputError(f"{where}: joint never has a score >= --min-score {min_score:g} in any frame: {detail}")
