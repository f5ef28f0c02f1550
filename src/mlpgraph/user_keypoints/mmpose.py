"""MMPose / RTMPose prediction JSON (mmpose 1.x): reading one person's track.

The forms mmpose writes:

- the demo scripts' ``--save-predictions`` (``topdown_demo_with_mmdet.py`` and alike):
  ``{"meta_info": <dataset meta>, "instance_info": [...]}``, where ``instance_info`` is a list of
  frames ``{"frame_id": n, "instances": [...]}`` (frames counted from 1) for a video, or the
  instances of one image;
- ``MMPoseInferencer``'s ``pred_out_dir`` (``demo/inferencer_demo.py --pred-out-dir``): a list of
  frames ``{"frame_id": n, "instances": [...]}`` (counted from 0) for a video, or, for an image,
  the list of its instances.

An instance is ``{"keypoints": [[x, y], ...], "keypoint_scores": [...], "bbox": [[x1, y1, x2, y2]],
"bbox_score": s}``, optionally with ``"track_id"``. The keypoint set is told by name from
``meta_info``'s ``keypoint_id2name`` (Halpe-26 when it names Halpe's head, neck and hip, else
COCO-17: COCO-WholeBody and Halpe-136 begin with those joints), else from its ``dataset_name``,
else from the keypoint count (17 COCO-17, 26 Halpe-26, 133 COCO-WholeBody, 136 Halpe-136). The
person score is ``bbox_score`` when given, else the mean keypoint score. The file gives no image
size and no frame rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from mlpgraph.errors import UserInputError
from mlpgraph.user_keypoints.joint_maps import COCO17, HALPE26, SourceSkeleton
from mlpgraph.user_keypoints.people import Detections, choose_person, drop_shared_tracks, is_number, to_sequence
from mlpgraph.user_keypoints.sequence import Keypoints2D, check_frame_number

# mmpose dataset names and keypoint counts -> (keypoints per instance, the skeleton its first joints are).
MMPOSE_DATASETS: dict[str, tuple[int, SourceSkeleton]] = {
    "coco": (17, COCO17),
    "halpe26": (26, HALPE26),
    "coco_wholebody": (133, COCO17),
    "halpe": (136, HALPE26),
}
_BY_COUNT = {count: skeleton for count, skeleton in MMPOSE_DATASETS.values()}
MMPOSE_EXPECTED = (
    "MMPose prediction JSON ({'meta_info', 'instance_info'}, a list of {'frame_id', 'instances'} "
    "or a list of instances with 'keypoints' and 'keypoint_scores')"
)


def read_mmpose_json(
    content: Any,
    where: str,
    width: float | None = None,
    height: float | None = None,
    track_id: int | None = None,
) -> Keypoints2D:
    """One person's body keypoints from parsed MMPose prediction JSON (``content``), in frame order.

    The image size is ``width`` / ``height`` (the file gives none). Who is kept:
    :func:`~.people.select_person` (``track_id``: an instance ``track_id``, or a linked track's number).
    """
    meta, frames = _frames(content, where)
    rows, frame_ids, score, track = _instances(frames, where)
    if not rows:
        raise UserInputError(f"{where}: no person instance in any of the {len(frames)} frames")
    counts = {len(r[0]) for r in rows}
    if len(counts) > 1:
        raise UserInputError(f"{where}: instances have different keypoint counts {sorted(counts)}")
    skeleton, columns = _skeleton_columns(meta, counts.pop(), where)
    xy = np.array([r[0] for r in rows], dtype=np.float64)
    kp_scores = np.array([r[1] for r in rows], dtype=np.float64)
    keypoints = np.concatenate([xy, kp_scores[..., None]], axis=2)[:, columns]
    score = np.where(np.isnan(score), kp_scores.mean(axis=1), score)
    dets = drop_shared_tracks(Detections(keypoints, score, track, frame_ids, skeleton), where)
    return to_sequence(dets, choose_person(dets, track_id, where), where, None, width, height)


def _frames(content: Any, where: str) -> tuple[Mapping[str, Any], list[tuple[int, Any]]]:
    """(``meta_info`` or {}, [(frame id, that frame's instances)]) of any of the forms."""
    meta: Any = {}
    info = content
    if isinstance(content, Mapping) and "instance_info" in content:
        meta, info = content.get("meta_info") or {}, content["instance_info"]
        if not isinstance(meta, Mapping):
            raise UserInputError(f"{where}: 'meta_info' must be an object, got {type(meta).__name__}")
    if not isinstance(info, list):
        raise UserInputError(f"{where}: not {MMPOSE_EXPECTED}")
    if info and all(isinstance(f, Mapping) and "instances" in f for f in info):
        frames = []
        for k, f in enumerate(info):
            frame_id = f.get("frame_id", k)
            if not (is_number(frame_id) and float(frame_id).is_integer()):
                raise UserInputError(f"{where}: frame {k}: 'frame_id' must be an integer, got {frame_id!r:.60}")
            check_frame_number(frame_id, where, f"frame {k}: frame_id")
            frames.append((int(frame_id), f["instances"]))
        return meta, frames
    if all(isinstance(i, Mapping) and "keypoint_scores" in i for i in info):
        return meta, [(0, info)]  # one image's instances
    raise UserInputError(f"{where}: not {MMPOSE_EXPECTED}")


def _instances(
    frames: list[tuple[int, Any]], where: str
) -> tuple[list[tuple[list[Any], list[Any]]], list[int], np.ndarray, np.ndarray]:
    """Every instance's (keypoints, keypoint scores), frame id, person score (NaN: none) and track id (NaN: none)."""
    rows: list[tuple[list[Any], list[Any]]] = []
    frame_ids: list[int] = []
    scores: list[float] = []
    tracks: list[float] = []
    for frame_id, instances in frames:
        if not isinstance(instances, list):
            raise UserInputError(f"{where}: frame {frame_id}: 'instances' must be a list")
        for n, inst in enumerate(instances):
            what = f"frame {frame_id}, instance {n}"
            rows.append(_keypoints(inst, where, what))
            scores.append(_number(inst.get("bbox_score"), where, f"{what}: 'bbox_score'"))
            tracks.append(_number(inst.get("track_id"), where, f"{what}: 'track_id'", integer=True))
            frame_ids.append(frame_id)
    return rows, frame_ids, np.array(scores, dtype=np.float64), np.array(tracks, dtype=np.float64)


def _keypoints(inst: Any, where: str, what: str) -> tuple[list[Any], list[Any]]:
    """An instance's ``keypoints`` (K [x, y] pairs) and ``keypoint_scores`` (K numbers), checked."""
    if not isinstance(inst, Mapping):
        raise UserInputError(f"{where}: {what} is a {type(inst).__name__}, not an object")
    kp, sc = inst.get("keypoints"), inst.get("keypoint_scores")
    pairs = isinstance(kp, list) and all(
        isinstance(p, list) and len(p) == 2 and all(is_number(v) and math.isfinite(v) for v in p) for p in kp
    )
    if not pairs or not kp:
        raise UserInputError(f"{where}: {what}: 'keypoints' must be a list of [x, y] pairs of finite numbers")
    if not isinstance(sc, list) or len(sc) != len(kp) or not all(is_number(v) and math.isfinite(v) for v in sc):
        raise UserInputError(f"{where}: {what}: 'keypoint_scores' must be {len(kp)} finite numbers (one per keypoint)")
    return kp, sc


def _number(value: Any, where: str, what: str, integer: bool = False) -> float:
    """A number the file may write plainly, as ``[n]`` or as json_tricks' ``{"__ndarray__": n}``; NaN for none."""
    if isinstance(value, Mapping) and "__ndarray__" in value:
        value = value["__ndarray__"]
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if value is None:
        return math.nan
    if not is_number(value) or not math.isfinite(value) or (integer and not float(value).is_integer()):
        raise UserInputError(f"{where}: {what} must be {'an integer' if integer else 'a number'}, got {value!r:.60}")
    if integer:
        check_frame_number(value, where, what)
    return float(value)


def _skeleton_columns(meta: Mapping[str, Any], count: int, where: str) -> tuple[SourceSkeleton, np.ndarray]:
    """The skeleton of the instances' ``count`` keypoints and the (K,) columns holding its joints."""
    dataset = meta.get("dataset_name")
    names = meta.get("keypoint_id2name")
    if isinstance(names, Mapping):
        by_id = {str(k): v for k, v in names.items()}
        order = [by_id.get(str(i)) for i in range(count)]
        if not all(isinstance(n, str) for n in order):
            raise UserInputError(f"{where}: meta_info 'keypoint_id2name' does not name all {count} keypoints")
        for skeleton in (HALPE26, COCO17):
            if set(skeleton.joints) <= set(order):
                return skeleton, np.array([order.index(n) for n in skeleton.joints])
        missing = [n for n in COCO17.joints if n not in order]
        raise UserInputError(
            f"{where}: meta_info 'keypoint_id2name' (dataset {dataset!r}) lacks COCO-17 body joints {missing}"
        )
    known = MMPOSE_DATASETS.get(dataset) if isinstance(dataset, str) else None
    expected, skeleton = known if known is not None else (count, _BY_COUNT.get(count))
    if skeleton is None or expected != count:
        raise UserInputError(
            f"{where}: instances have {count} keypoints (dataset {dataset!r}); read are COCO-17 (17), Halpe-26 (26), "
            "COCO-WholeBody (133) and Halpe-136 (136) keypoints, or any set whose meta_info names them"
        )
    return skeleton, np.arange(len(skeleton.joints))
