"""2D-detector keypoint formats for ``mlpgraph predict``: MMPose, AlphaPose and OpenPose output, read by content.

Fixtures: tests/data/detectors (README.md there gives every hand-worked value used below).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlpgraph.errors import UserInputError
from mlpgraph.layouts import H36M16, H36M17, SkeletonLayout
from mlpgraph.user_keypoints.association import link_tracks, object_keypoint_similarity
from mlpgraph.user_keypoints.filling import PreparedKeypoints, prepare_keypoints
from mlpgraph.user_keypoints.formats import detect_json_format
from mlpgraph.user_keypoints.joint_maps import BODY25, COCO17, HALPE26, SOURCE_SKELETONS
from mlpgraph.user_keypoints.reading import KEYPOINT_FORMATS, read_keypoints
from mlpgraph.user_keypoints.sequence import Keypoints2D
from tests.conftest import ROOT

DATA = ROOT / "tests" / "data" / "detectors"
SIZE = (1000.0, 1000.0)
LAYOUTS = [H36M16, H36M17]


@functools.cache
def _generator() -> Any:
    """tests/data/detectors/make_fixtures.py as a module."""
    spec = importlib.util.spec_from_file_location("make_detector_fixtures", DATA / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read(name: str | Path, layout: SkeletonLayout = H36M17, **kwargs: Any) -> tuple[Keypoints2D, PreparedKeypoints]:
    """A fixture read (image 1000 x 1000) and prepared in ``layout``."""
    seq = read_keypoints(DATA / name, layout, *SIZE, **kwargs)
    return seq, prepare_keypoints(seq, layout)


def _at(prep: PreparedKeypoints, frame: int, joint: str) -> np.ndarray:
    """The prepared pixel (x, y) of ``joint`` in grid frame ``frame``."""
    return prep.keypoints[frame, prep.layout.index(joint)]


def _check(prep: PreparedKeypoints, frame: int, expected: dict[str, tuple[float, float]]) -> None:
    """Each ``expected`` joint (those the layout has) at ``frame`` equals its hand-worked value."""
    for joint, xy in expected.items():
        if joint in prep.layout.joint_names:
            np.testing.assert_allclose(_at(prep, frame, joint), xy, err_msg=joint)


# ------------------------------------------------------------------------------------------ fixtures


def test_fixtures_are_what_the_generator_writes() -> None:
    files = _generator().build()
    on_disk = {str(p.relative_to(DATA)) for p in DATA.rglob("*.json")}
    assert on_disk == set(files)
    changed = sorted(name for name, text in files.items() if (DATA / name).read_text() != text)
    assert not changed, f"make_fixtures.py no longer writes {changed}; rerun it and commit"


def test_skeletons_match_the_tools_joint_orders_and_cover_the_layout() -> None:
    gen = _generator()
    assert COCO17.joints == tuple(gen.COCO17)
    assert HALPE26.joints == tuple(gen.COCO17 + gen.HALPE_EXTRA)
    assert BODY25.joints == tuple(gen.BODY25)
    for skeleton in SOURCE_SKELETONS:
        assert set(skeleton.rules) == set(H36M17.joint_names), skeleton.name
        assert len(skeleton.sigmas) == len(skeleton.joints)
        for rule in skeleton.rules.values():
            names = H36M17.joint_names if rule.kind == "midpoint" else skeleton.joints
            assert set(rule.sources) <= set(names), (skeleton.name, rule)


# --------------------------------------------------------------------------------- each format, mapped


@pytest.mark.parametrize("layout", LAYOUTS)
def test_mmpose_demo_coco17(layout: SkeletonLayout) -> None:
    seq, prep = _read("mmpose_coco17_demo.json", layout)
    assert seq.joint_names == COCO17.joints and seq.fps is None
    assert seq.frame_ids.tolist() == [1, 2, 4] and "linked" in seq.selection
    assert prep.frames.tolist() == [1, 2, 3, 4] and prep.present.tolist() == [True, True, False, True]
    expected = {"pelvis": (400, 500), "thorax": (400, 380), "spine": (400, 440), "neck": (400, 340),
                "head": (402.5, 337.5), "left_wrist": (435, 460), "right_ankle": (386, 620)}  # fmt: skip
    _check(prep, 0, expected)
    np.testing.assert_allclose(_at(prep, 2, "pelvis"), (420, 500))  # frame 3: between 410 and 430


@pytest.mark.parametrize("layout", LAYOUTS)
def test_mmpose_inferencer_halpe26_uses_its_own_hip_neck_and_head(layout: SkeletonLayout) -> None:
    seq, prep = _read("mmpose_halpe26_inferencer.json", layout)
    assert seq.joint_names == HALPE26.joints and seq.frame_ids.tolist() == [0, 1, 2]
    _check(prep, 0, {"pelvis": (300, 398), "thorax": (300, 275), "head": (300, 210), "spine": (300, 336.5),
                     "neck": (300, 240), "left_ankle": (314, 520)})  # fmt: skip
    np.testing.assert_allclose(_at(prep, 2, "pelvis"), (310, 398))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_mmpose_single_image_wholebody(layout: SkeletonLayout) -> None:
    seq, prep = _read("mmpose_wholebody_image.json", layout)
    assert seq.joint_names == COCO17.joints and seq.frame_ids.tolist() == [0]
    _check(prep, 0, {"pelvis": (500, 450), "head": (500, 288), "right_knee": (488, 510), "thorax": (500, 330)})


def test_mmpose_track_ids(tmp_path: Path) -> None:
    def instance(x: float, track: int, score: float) -> dict[str, Any]:
        return {"keypoints": [[x, 500.0]] * 17, "keypoint_scores": [0.9] * 17, "bbox_score": score, "track_id": track}

    # track 8 scores higher but is seen in frame 0 only
    frames = [{"frame_id": f, "instances": [instance(100.0 + f, 7, 0.5), *([instance(900.0, 8, 0.99)] * (f < 1))]}
              for f in range(3)]  # fmt: skip
    (tmp_path / "tracked.json").write_text(json.dumps(frames))
    seq = read_keypoints(tmp_path / "tracked.json", H36M17, *SIZE)
    assert seq.selection.startswith("track 7, seen in the most frames (3)")
    np.testing.assert_allclose(seq.keypoints[:, 0, 0], [100, 101, 102])
    assert read_keypoints(tmp_path / "tracked.json", H36M17, *SIZE, track_id=8).frame_ids.tolist() == [0]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_alphapose_halpe26_without_tracker(layout: SkeletonLayout) -> None:
    seq, prep = _read("alphapose_halpe26.json", layout)
    assert seq.joint_names == HALPE26.joints
    assert seq.frame_ids.tolist() == ["0.jpg", "1.jpg", "2.jpg", "3.jpg"]
    assert "share an 'idx'" in seq.selection  # idx [0.0] for everyone is no track id
    for f in range(4):
        _check(prep, f, {"pelvis": (600 - 20 * f, 448), "thorax": (600 - 20 * f, 325), "head": (600 - 20 * f, 260)})


def test_alphapose_track_ids() -> None:
    seq, prep = _read("alphapose_coco17_tracked.json")
    assert seq.frame_ids.tolist() == ["0.jpg", "1.jpg", "2.jpg"] and seq.selection.startswith("track 2")
    np.testing.assert_allclose(prep.keypoints[:, H36M17.index("pelvis")], [(700, 500)] * 3)
    seq, prep = _read("alphapose_coco17_tracked.json", track_id=1)
    assert seq.frame_ids.tolist() == ["0.jpg", "1.jpg"]
    np.testing.assert_allclose(_at(prep, 0, "pelvis"), (200, 500))
    with pytest.raises(UserInputError, match=r"no entry has idx 5 \(the file has 1, 2\)"):
        _read("alphapose_coco17_tracked.json", track_id=5)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_openpose_folder_body25(layout: SkeletonLayout) -> None:
    seq, prep = _read("openpose_body25", layout)
    assert seq.joint_names == BODY25.joints and seq.frame_ids.tolist() == [0, 1, 2, 4]
    assert prep.frames.tolist() == [0, 1, 2, 3, 4] and prep.present.tolist() == [True, True, True, False, True]
    _check(prep, 0, {"pelvis": (500, 521), "thorax": (500, 395), "spine": (500, 458), "head": (497.5, 357.5),
                     "neck": (500, 360), "left_knee": (512, 580)})  # fmt: skip
    np.testing.assert_allclose(_at(prep, 3, "pelvis"), (512, 521))
    head = prep.filled[:, layout.index("head")]
    assert head.tolist() == [False, False, False, True, False]  # LEar (0, 0, 0) is left out, not filled


# ------------------------------------------------------------------------------ detection and forcing


def test_format_is_told_from_the_content_not_the_name(tmp_path: Path) -> None:
    shutil.copy(DATA / "mmpose_coco17_demo.json", tmp_path / "keypoints.npz")
    shutil.copy(DATA / "alphapose_halpe26.json", tmp_path / "results.txt")
    shutil.copytree(DATA / "openpose_body25", tmp_path / "poses.json")
    assert read_keypoints(tmp_path / "keypoints.npz", H36M17, *SIZE).frame_ids.tolist() == [1, 2, 4]
    assert read_keypoints(tmp_path / "results.txt", H36M17, *SIZE).joint_names == HALPE26.joints
    assert read_keypoints(tmp_path / "poses.json", H36M17, *SIZE).joint_names == BODY25.joints
    kinds = {name: detect_json_format(json.loads((DATA / name).read_text())) for name in (
        "mmpose_coco17_demo.json", "mmpose_halpe26_inferencer.json", "mmpose_wholebody_image.json",
        "alphapose_halpe26.json", "alphapose_coco17_tracked.json", "crossing_coco.json", "crossing_alphapose.json",
        "openpose_body25/clip_000000000000_keypoints.json")}  # fmt: skip
    assert kinds == {
        "mmpose_coco17_demo.json": "mmpose", "mmpose_halpe26_inferencer.json": "mmpose",
        "mmpose_wholebody_image.json": "mmpose", "alphapose_halpe26.json": "alphapose",
        "alphapose_coco17_tracked.json": "alphapose", "crossing_coco.json": "coco",
        "crossing_alphapose.json": "alphapose", "openpose_body25/clip_000000000000_keypoints.json": "openpose",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("mmpose_coco17_demo.json", "mmpose"), ("alphapose_halpe26.json", "alphapose"), ("openpose_body25", "openpose"),
     ("crossing_coco.json", "coco"), ("crossing_alphapose.json", "coco")],
)  # fmt: skip
def test_forced_format_that_fits_reads_as_auto(name: str, fmt: str) -> None:
    forced, auto = read_keypoints(DATA / name, H36M17, *SIZE, fmt=fmt), read_keypoints(DATA / name, H36M17, *SIZE)
    np.testing.assert_array_equal(forced.keypoints, auto.keypoints)
    assert forced.joint_names == auto.joint_names and "auto" in KEYPOINT_FORMATS


def _npz(tmp_path: Path) -> Path:
    """A valid .npz keypoint file."""
    path = tmp_path / "kp.npz"
    np.savez(path, keypoints=np.full((2, 17, 2), 500.0), width=1000.0, height=1000.0)
    return path


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [
        ("mmpose_coco17_demo.json", "alphapose", "format 'alphapose' expects AlphaPose results JSON"),
        ("alphapose_halpe26.json", "mmpose", "format 'mmpose' expects MMPose prediction JSON"),
        ("crossing_coco.json", "mmpose", "but the file looks like COCO keypoint JSON"),
        ("crossing_coco.json", "npz", "format 'npz' expects an .npz archive"),
        ("openpose_body25", "coco", "a folder, but format 'coco' expects a file"),
        ("mmpose_coco17_demo.json", "openpose", "a file, but format 'openpose' expects a folder of OpenPose"),
        ("openpose_body25/clip_000000000000_keypoints.json", "coco", "looks like one OpenPose --write_json frame"),
        ("NPZ", "mmpose", "a zip archive (.npz), but format 'mmpose' expects MMPose prediction JSON"),
        ("crossing_coco.json", "yolo", "unknown keypoint format 'yolo'"),
    ],
)
def test_forced_format_that_does_not_fit_is_one_line(tmp_path: Path, name: str, fmt: str, expected: str) -> None:
    path = _npz(tmp_path) if name == "NPZ" else DATA / name
    with pytest.raises(UserInputError) as info:
        read_keypoints(path, H36M17, *SIZE, fmt=fmt)
    message = str(info.value)
    assert "\n" not in message and expected in message, message
    assert fmt == "yolo" or message.startswith(f"{path}: "), message


# ------------------------------------------------------------------------------------ malformed input

K17 = [[500.0, 500.0]] * 17
INSTANCE = {"keypoints": K17, "keypoint_scores": [0.9] * 17}
AP = {"image_id": "0.jpg", "category_id": 1, "keypoints": [500.0, 500.0, 0.9] * 17, "score": 2.0, "box": [1, 1, 5, 5]}
OP_PERSON = {"person_id": [-1], "pose_keypoints_2d": [500.0, 500.0, 0.8] * 25}
MALFORMED: dict[str, tuple[Any, str]] = {
    "mm_info_not_list": ({"meta_info": {}, "instance_info": 3}, "not MMPose prediction JSON"),
    "mm_xyz": ([{"frame_id": 0, "instances": [{**INSTANCE, "keypoints": [[1, 2, 3]] * 17}]}],
               "frame 0, instance 0: 'keypoints' must be a list of [x, y] pairs"),
    "mm_scores_short": ([{"frame_id": 0, "instances": [{**INSTANCE, "keypoint_scores": [0.9] * 3}]}],
                        "'keypoint_scores' must be 17 finite numbers"),
    "mm_20_joints": ([{**INSTANCE, "keypoints": [[5.0, 5.0]] * 20, "keypoint_scores": [0.9] * 20}],
                     "instances have 20 keypoints"),
    "mm_names_not_coco": ({"meta_info": {"keypoint_id2name": {str(i): f"p{i}" for i in range(17)}},
                           "instance_info": [INSTANCE]}, "lacks COCO-17 body joints"),
    "mm_frame_id_text": ([{"frame_id": "x", "instances": [INSTANCE]}], "frame 0: 'frame_id' must be an integer"),
    "mm_no_instance": ([{"frame_id": 0, "instances": []}], "no person instance in any of the 1 frames"),
    "mm_bbox_score_text": ([{**INSTANCE, "bbox_score": "high"}], "'bbox_score' must be a number"),
    "mm_track_id_float": ([{**INSTANCE, "track_id": 1.5}], "frame 0, instance 0: 'track_id' must be an integer"),
    "ap_60_values": ([{**AP, "keypoints": [1.0] * 60}], "'keypoints' must be 51, 78, 399 or 408 numbers"),
    "ap_idx_text": ([{**AP, "idx": "a"}], "entry 0: 'idx' must be an integer or a list of integers"),
    "ap_mixed_sets": ([AP, {**AP, "keypoints": [500.0, 500.0, 0.9] * 26}], "one file holds one keypoint set"),
    "op_frame_file": ({"version": 1.3, "people": [OP_PERSON]}, "it looks like one OpenPose --write_json frame"),
    "op_empty_folder": ([], "no .json file: expected a folder of OpenPose --write_json files"),
    "op_no_people": ([{"version": 1.3}], "not an OpenPose --write_json frame"),
    "op_coco18": ([{"people": [{**OP_PERSON, "pose_keypoints_2d": [5.0] * 54}]}],
                  "'pose_keypoints_2d' must be 75 finite numbers ([x, y, c] x 25 BODY_25 joints"),
    "op_normalised": ([{"people": [{**OP_PERSON, "pose_keypoints_2d": [0.5, 0.5, 0.8] * 25}]}],
                      "normalised by OpenPose's --keypoint_scale"),
    "op_nobody": ([{"people": []}, {"people": []}], "no person detected in any of the 2 frames"),
    "op_person_id_text": ([{"people": [{**OP_PERSON, "person_id": ["x"]}]}], "'person_id' must be -1 or an id >= 0"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_is_one_line_naming_it(tmp_path: Path, case: str) -> None:
    content, expected = MALFORMED[case]
    path = tmp_path / case
    if case.startswith("op_") and isinstance(content, list):  # an OpenPose folder, one file per frame
        path.mkdir()
        for f, frame in enumerate(content):
            (path / f"v_{f:012d}_keypoints.json").write_text(json.dumps(frame))
    else:
        path.write_text(json.dumps(content))
    with pytest.raises(UserInputError) as info:
        read_keypoints(path, H36M17, *SIZE)
    message = str(info.value)
    assert "\n" not in message and expected in message and str(path) in message, message


# ---------------------------------------------------------------------------------- person association


def _per_frame_highest_x(path: Path) -> dict[int, float]:
    """Mid-hip x of the highest-scoring person of each frame of a COCO entry list: the old per-frame rule."""
    best: dict[int, tuple[float, float]] = {}
    for e in json.loads(path.read_text()):
        kp = np.reshape(e["keypoints"], (17, 3))
        x = (kp[COCO17.joints.index("left_hip"), 0] + kp[COCO17.joints.index("right_hip"), 0]) / 2
        if e["score"] > best.get(e["image_id"], (-1.0, 0.0))[0]:
            best[e["image_id"]] = (e["score"], x)
    return {f: x for f, (_, x) in best.items()}


def _iou(a: list[float], b: list[float]) -> float:
    """IoU of two [x, y, w, h] boxes."""
    w = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return w * h / (a[2] * a[3] + b[2] * b[3] - w * h)


def test_the_crossing_fixture_swaps_people_under_the_per_frame_rule() -> None:
    boxes = [e["box"] for e in json.loads((DATA / "crossing_alphapose.json").read_text()) if e["image_id"] == "15.jpg"]
    assert len(boxes) == 2 and _iou(*boxes) > 0.5  # the boxes overlap at the crossing
    old = _per_frame_highest_x(DATA / "crossing_coco.json")
    assert [old[f] for f in (10, 11)] == [320, 332]  # A
    assert [old[f] for f in (12, 20, 29)] == [416, 320, 212]  # B: the old rule swapped people at frame 12


@pytest.mark.parametrize("name", ["crossing_coco.json", "crossing_alphapose.json", "crossing_mmpose.json",
                                  "crossing_openpose"])  # fmt: skip
@pytest.mark.parametrize("layout", LAYOUTS)
def test_association_keeps_one_person_through_a_crossing(name: str, layout: SkeletonLayout) -> None:
    seq, prep = _read(name, layout)
    frames = [f for f in range(30) if f not in (16, 17)]  # A was missed in 16 and 17
    assert [int(str(i).split(".")[0]) for i in seq.frame_ids] == frames
    assert "track 0 of 2" in seq.selection and "28 of 30 frames" in seq.selection
    hip_y = 501 if name == "crossing_openpose" else 500  # OpenPose's own MidHip is 1 px below the hips
    np.testing.assert_allclose(prep.keypoints[:, layout.index("pelvis")], [(200 + 12 * f, hip_y) for f in range(30)])
    assert prep.filled[16:18].all() and not prep.filled[:16].any() and not prep.filled[18:].any()


def test_track_id_picks_a_linked_track_when_the_file_has_none() -> None:
    seq, prep = _read("crossing_coco.json", track_id=1)
    assert seq.frame_ids.tolist() == list(range(6, 30)) and "--track-id" in seq.selection
    np.testing.assert_allclose(prep.keypoints[:, H36M17.index("pelvis"), 0], [560 - 12 * f for f in range(6, 30)])
    message = "--track-id 7 given but no entry has a 'track_id', and linking the detections over time found tracks 0, 1"
    with pytest.raises(UserInputError, match=message):
        _read("crossing_coco.json", track_id=7)


def test_link_tracks_labels_each_walker_once_and_oks_is_the_coco_measure() -> None:
    gen = _generator()
    rows = gen.crossing()
    kp = np.array([[(*gen.point(n, c, s), score) for n in COCO17.joints] for _, _, c, s, score in rows])
    time = np.array([f for f, *_ in rows], dtype=np.float64)
    labels = link_tracks(time, kp, COCO17.sigmas)
    who = np.array([p for _, p, *_ in rows])
    assert set(labels[who == "A"]) == {0} and set(labels[who == "B"]) == {1}
    pose, seen, sig = kp[:1, :, :2], np.ones((1, 17), dtype=bool), np.array(COCO17.sigmas)
    area = np.array([100.0 * 100.0])
    assert object_keypoint_similarity(pose, seen, area, pose, seen, sig)[0, 0] == pytest.approx(1.0)
    # every joint 10 px off, area 100 x 100: exp(-100 / (2 * 10^4 * (2 sigma)^2)) averaged over the joints
    expected = np.mean(np.exp(-100.0 / (2 * 1e4 * (2 * sig) ** 2)))
    shifted = object_keypoint_similarity(pose, seen, area, pose + np.array([6.0, 8.0]), seen, sig)[0, 0]
    assert shifted == pytest.approx(expected)
    assert object_keypoint_similarity(pose, seen, area, pose, ~seen, sig)[0, 0] == 0.0  # no joint seen in both


def test_predict_lifts_an_openpose_folder(tmp_path: Path) -> None:
    import torch

    from mlpgraph.checkpoints import network_entry, save_checkpoint
    from mlpgraph.cli import main
    from mlpgraph.models import build_model

    torch.manual_seed(0)
    model = build_model("mlpgraph", layout="h36m17", frames=1, hid_dim=8, spatial_hid_dim=8, channel_hid_dim=8,
                        num_layers=1).eval()  # fmt: skip
    ckpt = save_checkpoint(tmp_path / "m.pt", {"model": network_entry("mlpgraph", model)})
    out = tmp_path / "o.npz"
    args = ["predict", "--checkpoint", ckpt, "--input", DATA / "openpose_body25", "--out", out,
            "--width", 1000, "--height", 1000]  # fmt: skip
    assert main([str(a) for a in args]) == 0
    result = np.load(out, allow_pickle=False)
    assert result["frames"].tolist() == [0, 1, 2, 3, 4] and result["poses_3d"].shape == (5, 17, 3)
    np.testing.assert_allclose(result["keypoints_2d"][0, H36M17.index("pelvis")], (500, 521))


def test_greedy_assignment_by_hand():
    from mlpgraph.user_keypoints.association import greedy_assignment

    sim = np.array([[0.9, 0.8, 0.1], [0.85, 0.2, 0.0], [0.5, 0.6, 0.25]])
    rows, cols = greedy_assignment(sim, 0.3)
    # 0.9 takes (0, 0); 0.85 (1, 0) and 0.8 (0, 1) are blocked; 0.6 takes (2, 1); (1, 2) is below 0.3
    assert list(zip(rows.tolist(), cols.tolist(), strict=True)) == [(0, 0), (2, 1)]
    assert greedy_assignment(np.zeros((0, 2)), 0.3)[0].size == 0
