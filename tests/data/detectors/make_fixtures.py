"""Write the 2D-detector output fixtures (this folder's .json files and OpenPose folders) deterministically.

    python tests/data/detectors/make_fixtures.py [FOLDER]   # default: this script's folder

Every pose is one hand-made standing template (:data:`TEMPLATE`, pixels relative to the mid-hip,
integers) moved to a centre and scaled, so the expected joint values can be worked out by hand
(README.md lists them). Each file follows its tool's documented output format; the joint names
and orders here are written out independently of ``mlpgraph`` (tests compare the two).
tests/test_detector_formats.py checks that running this again rewrites exactly the committed bytes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

COCO17 = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
]  # fmt: skip
HALPE_EXTRA = ["head", "neck", "hip", "left_big_toe", "right_big_toe", "left_small_toe", "right_small_toe",
               "left_heel", "right_heel"]  # fmt: skip
WHOLEBODY_FEET = ["left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel"]
BODY25 = [
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip", "RHip",
    "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar", "LBigToe",
    "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
]  # fmt: skip
# BODY_25 name -> the template point of that meaning.
BODY25_AS = {
    "Nose": "nose", "Neck": "neck", "RShoulder": "right_shoulder", "RElbow": "right_elbow", "RWrist": "right_wrist",
    "LShoulder": "left_shoulder", "LElbow": "left_elbow", "LWrist": "left_wrist", "MidHip": "mid_hip",
    "RHip": "right_hip", "RKnee": "right_knee", "RAnkle": "right_ankle", "LHip": "left_hip", "LKnee": "left_knee",
    "LAnkle": "left_ankle", "REye": "right_eye", "LEye": "left_eye", "REar": "right_ear", "LEar": "left_ear",
    "LBigToe": "left_big_toe", "LSmallToe": "left_small_toe", "LHeel": "left_heel", "RBigToe": "right_big_toe",
    "RSmallToe": "right_small_toe", "RHeel": "right_heel",
}  # fmt: skip
# A standing person, pixels relative to the mid-point of the hips (y down). Halpe's "hip" (y -2) and
# OpenPose's "MidHip" (y +1) differ a little from the mean of the hips (y 0), and the Halpe / OpenPose
# "neck" (y -125) from the mean of the shoulders (y -120), so a test tells which was used.
TEMPLATE: dict[str, tuple[int, int]] = {
    "nose": (0, -160), "left_eye": (5, -165), "right_eye": (-5, -165), "left_ear": (10, -160),
    "right_ear": (-10, -160), "left_shoulder": (20, -120), "right_shoulder": (-20, -120),
    "left_elbow": (30, -80), "right_elbow": (-30, -80), "left_wrist": (35, -40), "right_wrist": (-35, -40),
    "left_hip": (10, 0), "right_hip": (-10, 0), "left_knee": (12, 60), "right_knee": (-12, 60),
    "left_ankle": (14, 120), "right_ankle": (-14, 120), "head": (0, -190), "neck": (0, -125), "hip": (0, -2),
    "mid_hip": (0, 1), "left_big_toe": (18, 128), "right_big_toe": (-18, 128), "left_small_toe": (22, 126),
    "right_small_toe": (-22, 126), "left_heel": (12, 124), "right_heel": (-12, 124),
}  # fmt: skip


def point(name: str, centre: tuple[float, float], scale: float = 1.0) -> list[float]:
    """The template joint ``name`` of a person at ``centre`` scaled by ``scale``."""
    dx, dy = TEMPLATE[name]
    return [round(centre[0] + scale * dx, 2), round(centre[1] + scale * dy, 2)]


def points(names: list[str], centre: tuple[float, float], scale: float = 1.0) -> list[list[float]]:
    """The joints ``names`` (COCO / Halpe or BODY_25 names) of a person at ``centre``."""
    return [point(BODY25_AS.get(n, n), centre, scale) for n in names]


def wholebody(centre: tuple[float, float]) -> list[list[float]]:
    """COCO-WholeBody's 133 points: the COCO-17 body and feet from the template, face and hands near the head/wrists."""
    body = points(COCO17 + WHOLEBODY_FEET, centre)
    face = [[centre[0] - 8 + (k % 17), centre[1] - 170 + k // 17 * 4] for k in range(68)]
    hands = [[centre[0] + side * (35 + k % 5), centre[1] - 40 + k // 5] for side in (1, -1) for k in range(21)]
    return body + face + hands


def flat(xy: list[list[float]], scores: list[float]) -> list[float]:
    """[x, y, score] x K, flattened (COCO, AlphaPose, OpenPose)."""
    return [v for (x, y), s in zip(xy, scores, strict=True) for v in (x, y, s)]


def box_xyxy(xy: list[list[float]], margin: float = 10.0) -> list[float]:
    """[x1, y1, x2, y2] around the points, ``margin`` pixels wider (mmpose's bbox)."""
    xs, ys = [p[0] for p in xy], [p[1] for p in xy]
    return [min(xs) - margin, min(ys) - margin, max(xs) + margin, max(ys) + margin]


def box_xywh(xy: list[list[float]]) -> list[float]:
    """[x, y, w, h] around the points (AlphaPose's box)."""
    x1, y1, x2, y2 = box_xyxy(xy)
    return [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)]


def mmpose_instance(xy: list[list[float]], scores: list[float], bbox_score: float | None = None) -> dict[str, Any]:
    """One instance as mmpose's ``split_instances`` writes it (``bbox`` a one-element list of [x1, y1, x2, y2])."""
    inst: dict[str, Any] = {"keypoints": xy, "keypoint_scores": scores}
    if bbox_score is not None:
        inst["bbox"] = [box_xyxy(xy)]
        inst["bbox_score"] = bbox_score
    return inst


def openpose_frame(people: list[tuple[list[float], int]]) -> str:
    """One ``--write_json`` file (OpenPose 1.7 writes version 1.3 and empty face/hand arrays without --face/--hand)."""
    empty = ("face_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d", "pose_keypoints_3d",
             "face_keypoints_3d", "hand_left_keypoints_3d", "hand_right_keypoints_3d")  # fmt: skip
    entries = [{"person_id": [pid], "pose_keypoints_2d": kp, **{k: [] for k in empty}} for kp, pid in people]
    return json.dumps({"version": 1.3, "people": entries}, separators=(",", ":")) + "\n"


# ---------------------------------------------------------------------------------------- one-person files


def mmpose_coco17_demo() -> str:
    """``topdown_demo_with_mmdet.py --save-predictions`` on a 4-frame video: meta_info + instance_info (frames from 1).

    Person P at (400 + 10 (f - 1), 500), right_ear score 0.1; a small far person Q (bbox_score 0.3);
    frame 3 has no instance.
    """
    meta = {
        "dataset_name": "coco",
        "num_keypoints": 17,
        "keypoint_id2name": {str(i): n for i, n in enumerate(COCO17)},
        "keypoint_name2id": {n: i for i, n in enumerate(COCO17)},
        "sigmas": {"__ndarray__": [0.026] * 17, "dtype": "float32", "shape": [17]},  # as json_tricks writes arrays
    }
    frames = []
    for f in (1, 2, 3, 4):
        scores = [0.1 if n == "right_ear" else 0.9 for n in COCO17]
        p = mmpose_instance(points(COCO17, (400 + 10 * (f - 1), 500)), scores, 0.95)
        q = mmpose_instance(points(COCO17, (850, 300), 0.5), [0.5] * 17, 0.3)
        frames.append({"frame_id": f, "instances": [] if f == 3 else [q, p]})
    return json.dumps({"meta_info": meta, "instance_info": frames}, indent="\t") + "\n"


def mmpose_halpe26_inferencer() -> str:
    """``MMPoseInferencer`` ``pred_out_dir`` for a 3-frame video (frames from 0), Halpe-26, no meta_info."""
    names = COCO17 + HALPE_EXTRA
    frames = [
        {"frame_id": f, "instances": [mmpose_instance(points(names, (300 + 5 * f, 400)), [0.8] * 26, 0.9)]}
        for f in range(3)
    ]
    return json.dumps(frames, indent="  ") + "\n"


def mmpose_wholebody_image() -> str:
    """``MMPoseInferencer`` ``pred_out_dir`` for one image: its list of instances, 133 COCO-WholeBody keypoints."""
    return json.dumps([mmpose_instance(wholebody((500, 450)), [0.7] * 133, 0.88)], indent="  ") + "\n"


def alphapose_halpe26() -> str:
    """Default-format ``alphapose-results.json``, Halpe-26, no tracker: ``idx`` written as [0.0] for everyone.

    Person P at (600 - 20 f, 450) in frames "0.jpg".."3.jpg"; a weaker person Q at (150, 300) in every frame.
    """
    names = COCO17 + HALPE_EXTRA
    entries = []
    for f in range(4):
        for centre, kp_score, score in (((150, 300), 0.4, 1.2), ((600 - 20 * f, 450), 0.85, 2.9)):
            xy = points(names, centre)
            entries.append({"image_id": f"{f}.jpg", "category_id": 1, "keypoints": flat(xy, [kp_score] * 26),
                            "score": score, "box": box_xywh(xy), "idx": [0.0]})  # fmt: skip
    return json.dumps(entries) + "\n"


def alphapose_coco17_tracked() -> str:
    """``alphapose-results.json`` with ``--pose_track``: integer ``idx``; track 2 in 3 frames, track 1 in 2."""
    entries = []
    for f in range(3):
        for idx, centre in ((1, (200, 500)), (2, (700, 500))):
            if idx == 1 and f == 2:
                continue
            xy = points(COCO17, centre)
            entries.append({"image_id": f"{f}.jpg", "category_id": 1, "keypoints": flat(xy, [0.9] * 17),
                            "score": 2.5, "box": box_xywh(xy), "idx": idx})  # fmt: skip
    return json.dumps(entries) + "\n"


def openpose_body25() -> dict[str, str]:
    """``--write_json`` of video ``clip``: frames 0, 1, 2, 4 (no file for 3); LEar never detected (0, 0, 0)."""
    files = {}
    for f in (0, 1, 2, 4):
        xy = points(BODY25, (500 + 4 * f, 520))
        scores = [0.0 if n == "LEar" else 0.8 for n in BODY25]
        xy = [[0.0, 0.0] if n == "LEar" else p for n, p in zip(BODY25, xy, strict=True)]
        files[f"clip_{f:012d}_keypoints.json"] = openpose_frame([(flat(xy, scores), -1)])
    return files


# -------------------------------------------------------------------------------------- crossing people


def crossing() -> list[tuple[int, str, tuple[float, float], float, float]]:
    """(frame, person, centre, scale, score) of two people whose paths cross at frame 15.

    A walks right from x = 200 (12 px a frame, y = 500), scores 0.9 until frame 11 and 0.6 from 12
    (walking behind B), and is missed in frames 16 and 17; B enters at frame 6 walking left from
    x = 560 (y = 515, 0.9 times A's size), scores 0.7 until frame 11 and 0.8 from 12. The
    highest-scoring person of each frame is B from frame 12 on.
    """
    rows = []
    for f in range(30):
        if f not in (16, 17):
            rows.append((f, "A", (200 + 12 * f, 500), 1.0, 0.9 if f < 12 else 0.6))
        if f >= 6:
            rows.append((f, "B", (560 - 12 * f, 515), 0.9, 0.7 if f < 12 else 0.8))
    return rows


def crossing_files() -> dict[str, str]:
    """The crossing in COCO (no track_id), AlphaPose (no idx), MMPose (inferencer video) and OpenPose form."""
    coco, alpha, frames, openpose = [], [], {}, {}
    for f, _, centre, scale, score in crossing():
        xy = points(COCO17, centre, scale)
        coco.append({"image_id": f, "category_id": 1, "keypoints": flat(xy, [score] * 17), "score": score})
        alpha.append({"image_id": f"{f}.jpg", "category_id": 1, "keypoints": flat(xy, [score] * 17),
                      "score": score, "box": box_xywh(xy)})  # fmt: skip
        frames.setdefault(f, []).append(mmpose_instance(xy, [score] * 17))
        body = points(BODY25, centre, scale)
        openpose.setdefault(f, []).append((flat(body, [score] * 25), -1))
    mm = [{"frame_id": f, "instances": inst} for f, inst in sorted(frames.items())]
    out = {"crossing_coco.json": json.dumps(coco) + "\n", "crossing_alphapose.json": json.dumps(alpha) + "\n",
           "crossing_mmpose.json": json.dumps(mm) + "\n"}  # fmt: skip
    for f, people in openpose.items():
        out[f"crossing_openpose/walk_{f:012d}_keypoints.json"] = openpose_frame(people)
    return out


def build() -> dict[str, str]:
    """Every fixture: relative path -> text."""
    files = {
        "mmpose_coco17_demo.json": mmpose_coco17_demo(),
        "mmpose_halpe26_inferencer.json": mmpose_halpe26_inferencer(),
        "mmpose_wholebody_image.json": mmpose_wholebody_image(),
        "alphapose_halpe26.json": alphapose_halpe26(),
        "alphapose_coco17_tracked.json": alphapose_coco17_tracked(),
        **{f"openpose_body25/{name}": text for name, text in openpose_body25().items()},
        **crossing_files(),
    }
    return files


def main(folder: Path) -> None:
    """Write every fixture under ``folder``."""
    for name, text in build().items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
