"""AlphaPose results JSON (``alphapose-results.json``, its default ``--format``): reading one person's track.

The file is a list of person entries in the style of COCO's results format: ``image_id`` (the
frame's file name, ``"0.jpg"``, or a number with ``--eval``), ``category_id`` 1, ``keypoints`` a
flat [x, y, score] list of K joints, ``score`` (the pose-NMS person score), ``box`` [x, y, w, h]
and ``idx``. K is 17 (COCO-17), 26 (Halpe-26), 133 (COCO-WholeBody: its first 17 are COCO-17) or
136 (Halpe-136: its first 26 are Halpe-26); the body joints are read. ``idx`` is the track id when
AlphaPose ran with ``--pose_track`` (or PoseFlow); without a tracker it is written all the same
(the same number for everyone, or a list when poses were merged), so it is taken as a track id
only when no two people of one frame share it: otherwise people are linked over time
(:mod:`.association`). Frames are ordered by ``image_id`` as for COCO JSON; the file gives no
image size and no frame rate.
"""

from __future__ import annotations

from typing import Any

from mlpgraph.errors import UserInputError
from mlpgraph.user_keypoints.coco import coco_track_id, parse_entries
from mlpgraph.user_keypoints.joint_maps import COCO17, HALPE26
from mlpgraph.user_keypoints.people import choose_person, drop_shared_tracks, to_sequence
from mlpgraph.user_keypoints.sequence import Keypoints2D

# Keypoints per entry -> the skeleton read from the first of them.
ALPHAPOSE_SKELETONS = {17: COCO17, 26: HALPE26, 133: COCO17, 136: HALPE26}
ALPHAPOSE_EXPECTED = (
    "51, 78, 399 or 408 numbers ([x, y, score] x 17 COCO-17, 26 Halpe-26, 133 COCO-WholeBody or 136 Halpe-136 joints)"
)


def alphapose_idx(value: Any, i: int, where: str) -> float:
    """Entry ``i``'s ``idx`` as a float (NaN: none): an integer, or the first of a list of them."""
    if isinstance(value, list):
        value = value[0] if value else None
    return coco_track_id(value, i, where, "idx", "an integer or a list of integers")


def read_alphapose_json(
    content: Any,
    where: str,
    width: float | None = None,
    height: float | None = None,
    track_id: int | None = None,
) -> Keypoints2D:
    """One person's body keypoints from parsed AlphaPose results JSON (``content``), in frame order.

    The image size is ``width`` / ``height`` (the file gives none). Who is kept: the track
    ``track_id`` (an ``idx``, or a linked track's number when the file's ``idx`` tells no one
    apart), else :func:`~.people.select_person`'s rule.
    """
    if not isinstance(content, list):
        raise UserInputError(
            f"{where}: not AlphaPose results JSON: expected a list of person entries "
            f"('image_id', 'keypoints', 'score', 'box', 'idx'), got a JSON {type(content).__name__}"
        )
    dets = parse_entries(content, where, ALPHAPOSE_SKELETONS, ALPHAPOSE_EXPECTED, "idx", alphapose_idx)
    dets = drop_shared_tracks(dets, where)
    return to_sequence(dets, choose_person(dets, track_id, where), where, None, width, height)
