"""Linking person detections frame to frame into tracks, for keypoint files that carry no track ids.

Taking the highest-scoring person of each frame on its own jumps between people whenever another
one scores higher for a moment (two people crossing, one occluding the other). Instead every
detection is linked to a track, frame after frame:

- each track's keypoints are predicted at the new frame at constant velocity (the mean
  displacement of the joints seen in its last two detections, per frame);
- tracks and the frame's detections are compared by object keypoint similarity (OKS, the COCO
  keypoint-evaluation measure: per joint ``exp(-d^2 / (2 s^2 (2 sigma)^2))`` averaged over the
  joints confident in both, with the detector skeleton's per-joint COCO sigmas and ``s^2`` the area
  of the track's confident keypoints' bounding box);
- pairs are linked greedily, most similar first (:func:`greedy_assignment`: the usual rule of
  pose trackers, and exact for the few people of a frame unless two pairings tie), when their
  OKS is at least :data:`MIN_OKS`; a detection left over starts a new track;
- a track unseen for up to :data:`MAX_MISSED` frames (occluded, missed by the detector) can still
  be continued, from its prediction over the gap.

Tracks are numbered from 0 in the order they first appear (within a frame: file order). The track
kept for lifting is the one with the largest summed person score: long and confident.
"""

from __future__ import annotations

import numpy as np

# A keypoint takes part in the similarity when its score is at least this (OpenPose writes 0 for unseen joints).
VISIBLE_SCORE = 0.1
# Tracks and detections less similar than this are never linked.
MIN_OKS = 0.3
# A track may go unseen for this many frames and still be continued.
MAX_MISSED = 10
# The object scale's floor (pixels squared), so that a detection with few confident joints still has a size.
MIN_AREA = 32.0**2


def object_keypoint_similarity(
    a_xy: np.ndarray, a_seen: np.ndarray, area: np.ndarray, b_xy: np.ndarray, b_seen: np.ndarray, sigmas: np.ndarray
) -> np.ndarray:
    """(A, B) OKS between poses ``a_xy`` (A, K, 2) of object areas ``area`` (A,) and poses ``b_xy`` (B, K, 2).

    Averaged over the joints seen in both (``a_seen`` (A, K), ``b_seen`` (B, K)); 0 where no joint is.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        d2 = ((a_xy[:, None] - b_xy[None]) ** 2).sum(axis=-1)
        scale = 2.0 * area[:, None, None] * (2.0 * np.asarray(sigmas, dtype=np.float64)) ** 2
        both = a_seen[:, None] & b_seen[None]
        similarity = (np.exp(-d2 / scale) * both).sum(axis=-1) / both.sum(axis=-1)
    return np.where(np.isfinite(similarity), similarity, 0.0)


def _areas(xy: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """(N,) area of the bounding box of each pose's seen joints, at least :data:`MIN_AREA`."""
    with np.errstate(over="ignore", invalid="ignore"):
        low = np.where(seen[..., None], xy, np.inf).min(axis=1)
        high = np.where(seen[..., None], xy, -np.inf).max(axis=1)
        area = np.prod(high - low, axis=1)
    return np.maximum(np.nan_to_num(area, nan=MIN_AREA, posinf=MIN_AREA, neginf=MIN_AREA), MIN_AREA)


class _Tracks:
    """The state of every track so far: last pose, velocity, last time seen (arrays sized for ``n`` tracks)."""

    def __init__(self, n: int, joints: int) -> None:
        self.xy = np.zeros((n, joints, 2))
        self.seen = np.zeros((n, joints), dtype=bool)
        self.velocity = np.zeros((n, 2))
        self.time = np.zeros(n)
        self.area = np.full(n, MIN_AREA)
        self.count = 0

    def predicted(self, tracks: np.ndarray, now: float) -> np.ndarray:
        """(T, K, 2) poses of ``tracks`` at time ``now``, at constant velocity."""
        with np.errstate(over="ignore", invalid="ignore"):
            gap = (now - self.time[tracks])[:, None, None]
            return self.xy[tracks] + self.velocity[tracks][:, None, :] * gap

    def update(self, tracks: np.ndarray, xy: np.ndarray, seen: np.ndarray, area: np.ndarray, now: float) -> None:
        """Continue ``tracks`` with the detections ``xy`` / ``seen`` / ``area`` at time ``now``."""
        common = self.seen[tracks] & seen
        count = common.sum(axis=1)
        with np.errstate(over="ignore", invalid="ignore"):
            shift = ((xy - self.xy[tracks]) * common[..., None]).sum(axis=1) / np.maximum(count, 1)[:, None]
            velocity = shift / np.maximum(now - self.time[tracks], 1.0)[:, None]
        keep = (count > 0) & np.isfinite(velocity).all(axis=1)
        self.velocity[tracks] = np.where(keep[:, None], velocity, self.velocity[tracks])
        self.xy[tracks], self.seen[tracks], self.area[tracks], self.time[tracks] = xy, seen, area, now

    def start(self, xy: np.ndarray, seen: np.ndarray, area: np.ndarray, now: float) -> np.ndarray:
        """New tracks for the detections ``xy`` / ``seen`` / ``area``; their numbers."""
        new = np.arange(self.count, self.count + len(xy))
        self.count += len(xy)
        self.xy[new], self.seen[new], self.area[new], self.time[new] = xy, seen, area, now
        return new


def greedy_assignment(similarity: np.ndarray, minimum: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one (rows, cols) of ``similarity`` (R, C): the most similar free pair first, down to ``minimum``.

    Kept out of SciPy so that lifting needs only the core install; a frame has few people, so the
    loop over candidate pairs is short.
    """
    flat = np.argsort(-similarity, axis=None, kind="stable")
    row_free = np.ones(similarity.shape[0], dtype=bool)
    col_free = np.ones(similarity.shape[1], dtype=bool)
    rows, cols = [], []
    for r, c in zip(*np.unravel_index(flat, similarity.shape), strict=True):
        if similarity[r, c] < minimum:
            break
        if row_free[r] and col_free[c]:
            row_free[r] = col_free[c] = False
            rows.append(r)
            cols.append(c)
    return np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)


def link_tracks(time: np.ndarray, keypoints: np.ndarray, sigmas: tuple[float, ...] | np.ndarray) -> np.ndarray:
    """(N,) track number of each detection: ``keypoints`` (N, K, 3) [x, y, score] seen at ``time`` (N,).

    ``time`` counts frames (one apart for consecutive frames); detections sharing a time are one
    frame's people. See the module's docstring for the rule.
    """
    n = len(time)
    xy, seen = keypoints[..., :2].astype(np.float64), keypoints[..., 2] >= VISIBLE_SCORE
    areas = _areas(xy, seen)
    sig = np.asarray(sigmas, dtype=np.float64)
    order = np.lexsort((np.arange(n), time))
    starts = np.flatnonzero(np.concatenate([[True], time[order][1:] != time[order][:-1]]))
    labels = np.full(n, -1, dtype=np.int64)
    tracks = _Tracks(n, keypoints.shape[1])
    for group in np.split(order, starts[1:]):
        now = float(time[group[0]])
        alive = np.flatnonzero(now - tracks.time[: tracks.count] <= MAX_MISSED + 1)
        taken = np.zeros(len(group), dtype=bool)
        if alive.size:
            sim = object_keypoint_similarity(
                tracks.predicted(alive, now), tracks.seen[alive], tracks.area[alive], xy[group], seen[group], sig
            )
            rows, cols = greedy_assignment(sim, MIN_OKS)
            dets = group[cols]
            tracks.update(alive[rows], xy[dets], seen[dets], areas[dets], now)
            labels[dets] = alive[rows]
            taken[cols] = True
        fresh = group[~taken]
        if fresh.size:
            labels[fresh] = tracks.start(xy[fresh], seen[fresh], areas[fresh], now)
    return labels


def strongest_track(labels: np.ndarray, score: np.ndarray) -> tuple[int, int, int]:
    """(track with the largest summed ``score`` (ties: the lowest number), its detections, number of tracks)."""
    totals = np.bincount(labels, weights=np.asarray(score, dtype=np.float64))
    best = int(np.argmax(totals))
    return best, int((labels == best).sum()), len(totals)
