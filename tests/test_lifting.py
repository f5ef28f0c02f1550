"""``mlpgraph predict``: lifting the user's own keypoints (.npz in the model's layout, COCO-17 JSON)."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from mlpgraph.cameras import load_cameras, normalise_screen
from mlpgraph.checkpoints import network_entry, save_checkpoint
from mlpgraph.cli import main
from mlpgraph.data.batches import PoseArrays
from mlpgraph.data.motion import family_take, make_rng, pose_sequence, subject_bone_lengths
from mlpgraph.data.synthetic import H36M_CAPTURE_CENTRE
from mlpgraph.evaluation import predict
from mlpgraph.layouts import H36M16, H36M17, H36M32, select_joints
from mlpgraph.models import build_model
from mlpgraph.user_keypoints.coco import COCO17_FACE, COCO17_JOINTS, COCO17_TO_LAYOUT, read_coco_json
from mlpgraph.user_keypoints.filling import interpolate_missing, prepare_keypoints
from mlpgraph.user_keypoints.sequence import Keypoints2D
from tests.conftest import tool_env

COCO = COCO17_JOINTS
W, H = 1000.0, 1002.0  # the Human3.6M cameras' image size


def _tiny_model(layout: str, frames: int) -> torch.nn.Module:
    torch.manual_seed(frames)
    return build_model(
        "mlpgraph", layout=layout, frames=frames, hid_dim=16, spatial_hid_dim=16, channel_hid_dim=16, num_layers=1
    ).eval()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Tiny MLP-Graph checkpoints: h36m16 at T=1 and T=3, h36m17 at T=3, and a refinement module alone."""
    folder = tmp_path_factory.mktemp("ckpt")
    paths = {}
    for name, layout, frames in (("f1", "h36m16", 1), ("f3", "h36m16", 3), ("h17_f3", "h36m17", 3)):
        paths[name] = save_checkpoint(
            folder / f"{name}.pt", {"model": network_entry("mlpgraph", _tiny_model(layout, frames))}
        )
    paths["refine_only"] = save_checkpoint(
        folder / "refine.pt", {"refine": network_entry("refine", build_model("refine"))}
    )
    torch.save({"weight": torch.zeros(2)}, folder / "plain.pt")
    paths["plain"] = folder / "plain.pt"
    return paths


def _predict(*args: str | Path) -> int:
    return main(["predict", *map(str, args)])


def _coco_entry(image_id, keypoints_px: np.ndarray, scores: np.ndarray, **extra) -> dict:
    flat = np.concatenate([keypoints_px, scores[:, None]], axis=1).ravel()
    return {"image_id": image_id, "category_id": 1, "keypoints": [float(v) for v in flat], **extra}


def _write_json(path: Path, content) -> Path:
    path.write_text(json.dumps(content))
    return path


def _linear_coco() -> tuple[np.ndarray, np.ndarray]:
    """Base and velocity of COCO keypoints moving linearly in time (interpolation reproduces them exactly)."""
    rng = np.random.default_rng(1)
    return rng.uniform(200, 800, (17, 2)), rng.uniform(-3, 3, (17, 2))


# ------------------------------------------------------------------------------- COCO -> layout


def _hand_made_frame() -> tuple[np.ndarray, np.ndarray]:
    kp = np.zeros((17, 2))
    for i in range(len(COCO)):
        kp[i] = (10.0 * i + 1.0, 500.0 - 7.0 * i)
    scores = np.full(17, 0.9)
    scores[COCO.index("right_ear")] = 0.1  # not confident: left out of the head's mean
    return kp, scores


@pytest.mark.parametrize("layout", [H36M16, H36M17])
def test_coco_mapping_on_a_hand_made_frame(layout):
    kp, scores = _hand_made_frame()
    seq = Keypoints2D(kp[None], scores[None], np.array([0]), np.array([0]), W, H, COCO, "hand.json")
    prep = prepare_keypoints(seq, layout, min_score=0.3)
    out = prep.keypoints[0]

    def coco(name: str) -> np.ndarray:
        return kp[COCO.index(name)]

    def joint(name: str) -> np.ndarray:
        return out[layout.index(name)]

    np.testing.assert_allclose(joint("pelvis"), (coco("left_hip") + coco("right_hip")) / 2)
    np.testing.assert_allclose(joint("thorax"), (coco("left_shoulder") + coco("right_shoulder")) / 2)
    np.testing.assert_allclose(joint("spine"), (joint("pelvis") + joint("thorax")) / 2)
    face = [coco(n) for n in ("nose", "left_eye", "right_eye", "left_ear")]  # right_ear: score 0.1
    np.testing.assert_allclose(joint("head"), np.mean(face, axis=0))
    if "neck" in layout.joint_names:
        np.testing.assert_allclose(joint("neck"), coco("nose"))
    limbs = [n for n in layout.joint_names if n.startswith(("left_", "right_"))]
    assert len(limbs) == 12
    for name in limbs:
        np.testing.assert_allclose(joint(name), coco(name))
    assert not prep.filled.any()
    assert set(COCO17_TO_LAYOUT) == set(H36M17.joint_names)


def test_head_is_filled_when_no_face_point_is_confident():
    kp, scores = _hand_made_frame()
    kps = np.stack([kp, kp + 10.0, kp + 20.0])
    sc = np.stack([scores, scores, scores])
    sc[1, [COCO.index(n) for n in COCO17_FACE]] = 0.0
    seq = Keypoints2D(kps, sc, np.arange(3), np.arange(3), W, H, COCO, "x.json")
    prep = prepare_keypoints(seq, H36M17, min_score=0.3)
    head, neck = H36M17.index("head"), H36M17.index("neck")
    assert prep.filled[1, head] and prep.filled[1, neck] and prep.filled[:, head].sum() == 1
    np.testing.assert_allclose(prep.keypoints[1, head], (prep.keypoints[0, head] + prep.keypoints[2, head]) / 2)


# ---------------------------------------------------------------------------------------- filling


def test_interpolate_missing_hand_computed():
    values = np.array([[[0.0]], [[99.0]], [[10.0]], [[99.0]], [[99.0]], [[40.0]], [[99.0]]])
    valid = np.array([[False], [False], [True], [False], [False], [True], [False]])
    filled = interpolate_missing(values, valid)
    # ends: nearest valid value; inside: linear between frames 2 (10) and 5 (40)
    np.testing.assert_allclose(filled[:, 0, 0], [10, 10, 10, 20, 30, 40, 40])


def test_low_scores_and_missing_frames_are_interpolated(tmp_path, checkpoints):
    ids = [10, 11, 13, 14]  # 12 is missing
    base, velocity = _linear_coco()
    entries = []
    for f in ids:
        scores = np.full(17, 0.95)
        if f == 11:
            scores[COCO.index("left_wrist")] = 0.2
        if f == 10:
            scores[COCO.index("right_knee")] = 0.05  # first frame: takes the next valid value
        entries.append(_coco_entry(f, base + velocity * f, scores))
    entries[2]["keypoints"][3 * COCO.index("left_wrist")] = 130.0  # x of the left wrist, frame 13
    entries[3]["keypoints"][3 * COCO.index("left_wrist")] = 140.0  # frame 14
    entries[0]["keypoints"][3 * COCO.index("left_wrist")] = 100.0  # frame 10
    path = _write_json(tmp_path / "people.json", list(reversed(entries)))  # order in the file does not matter
    assert _predict("--checkpoint", checkpoints["f1"], "--input", path, "--out", tmp_path / "o.npz",
                    "--width", W, "--height", H) == 0  # fmt: skip
    out = np.load(tmp_path / "o.npz", allow_pickle=False)
    np.testing.assert_array_equal(out["frames"], [10, 11, 12, 13, 14])
    np.testing.assert_array_equal(out["present"], [True, True, False, True, True])
    kp2d, filled = out["keypoints_2d"], out["filled"]
    wrist, knee = H36M16.index("left_wrist"), H36M16.index("right_knee")
    # left wrist x: 100 at 10, score 0.2 at 11, missing 12, 130 at 13 -> 110 and 120 (hand-computed)
    np.testing.assert_allclose(kp2d[:4, wrist, 0], [100, 110, 120, 130], rtol=1e-6)
    assert filled[1, wrist] and filled[2].all() and not filled[3, wrist]
    # right knee, not confident in frame 10: frame 11's value
    np.testing.assert_allclose(kp2d[0, knee], base[COCO.index("right_knee")] + velocity[COCO.index("right_knee")] * 11,
                               rtol=1e-6)  # fmt: skip
    # everything that moved linearly and was filled is reproduced at the missing frame 12
    for name in ("left_ankle", "right_shoulder", "left_hip"):
        expected = base[COCO.index(name)] + velocity[COCO.index(name)] * 12
        np.testing.assert_allclose(kp2d[2, H36M16.index(name)], expected, rtol=1e-5)
    assert out["poses_3d"].shape == (5, 16, 3) and out["poses_3d"].dtype == np.float32


def test_frame_step_is_the_gcd_of_the_image_id_differences():
    seq = Keypoints2D(
        np.zeros((4, 16, 2)), None, np.array([0, 5, 10, 20]), np.array([0, 5, 10, 20]), W, H, H36M16.joint_names, "s"
    )
    prep = prepare_keypoints(seq, H36M16)
    np.testing.assert_array_equal(prep.frames, [0, 5, 10, 15, 20])
    np.testing.assert_array_equal(prep.present, [True, True, True, False, True])


def test_string_image_ids_natural_sort_and_gaps():
    kp, scores = _hand_made_frame()
    entries = [_coco_entry(f"frame_{i:04d}.jpg", kp + i, scores) for i in (10, 2, 1, 4)]
    seq = read_coco_json(entries, "s.json", W, H)
    np.testing.assert_array_equal(
        seq.frame_ids, ["frame_0001.jpg", "frame_0002.jpg", "frame_0004.jpg", "frame_0010.jpg"]
    )
    prep = prepare_keypoints(seq, H36M16, max_gap=5)
    assert prep.frames.tolist() == [f"frame_{i:04d}.jpg" for i in range(1, 11)]
    assert prep.present.sum() == 4
    # ids with no common numbering are ordered naturally and taken as consecutive
    entries = [_coco_entry(name, kp, scores) for name in ("cam_b10.png", "cam_a2.png", "cam_b9.png")]
    seq = read_coco_json(entries, "s.json", W, H)
    assert seq.frame_ids.tolist() == ["cam_a2.png", "cam_b9.png", "cam_b10.png"] and seq.frame_numbers is None


# -------------------------------------------------------------------------------- multi-person


def _two_people(track_ids: bool) -> list[dict]:
    kp, scores = _hand_made_frame()
    entries = []
    for f in range(4):
        a = _coco_entry(f, kp + 1.0, scores, score=0.5)
        b = _coco_entry(f, kp + 500.0, scores, score=0.99 if f < 2 else 0.2)
        if track_ids:
            a["track_id"], b["track_id"] = 1, 2
        entries += [b, a] if not track_ids or f < 2 else [a]  # track 2 only in frames 0 and 1
    return entries


def test_multi_person_selection():
    # tracks: the one seen in most frames (1), whatever the scores
    seq = read_coco_json(_two_people(True), "t.json", W, H)
    assert seq.frame_ids.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(seq.keypoints[:, 0, 0], _hand_made_frame()[0][0, 0] + 1.0)
    # --track-id picks the other
    seq = read_coco_json(_two_people(True), "t.json", W, H, track_id=2)
    assert seq.frame_ids.tolist() == [0, 1]
    np.testing.assert_allclose(seq.keypoints[:, 0, 0], _hand_made_frame()[0][0, 0] + 500.0)
    # no track ids: people are linked over time and the track with the largest summed score is kept
    # (b: 0.99 + 0.99 + 0.2 + 0.2 beats a: 2.0), one person throughout rather than a jump between them
    seq = read_coco_json(_two_people(False), "t.json", W, H)
    np.testing.assert_allclose(seq.keypoints[:, 0, 0] - _hand_made_frame()[0][0, 0], [500, 500, 500, 500])


def test_track_id_option_through_the_cli(tmp_path, checkpoints):
    path = _write_json(tmp_path / "t.json", _two_people(True))
    out = tmp_path / "o.npz"
    assert _predict("--checkpoint", checkpoints["f1"], "--input", path, "--out", out,
                    "--width", W, "--height", H, "--track-id", 2) == 0  # fmt: skip
    assert np.load(out)["frames"].tolist() == [0, 1]


# ----------------------------------------------------------------------------- lifting, end to end


def test_npz_path_equals_evaluation_predict(tmp_path, checkpoints):
    rng = np.random.default_rng(0)
    keypoints = rng.uniform(100, 900, (7, 16, 2)).astype(np.float32)
    np.savez(tmp_path / "kp.npz", keypoints=keypoints, width=np.int64(1000), height=1002.0)
    model = _tiny_model("h36m16", 3)
    norm = normalise_screen(keypoints.astype(np.float64), W, H).astype(np.float32)
    data = PoseArrays.from_numpy(norm, np.zeros((7, 16, 3), np.float32), np.array([[0, 7]]), layout="h36m16")
    for flag, flip in (((), True), (("--no-flip",), False)):
        out = tmp_path / f"o{flip}.npz"
        assert _predict("--checkpoint", checkpoints["f3"], "--input", tmp_path / "kp.npz", "--out", out, *flag) == 0
        result = np.load(out, allow_pickle=False)
        expected = predict(model, data, pad=1, flip_test=flip).numpy()
        np.testing.assert_allclose(result["poses_3d"], expected, atol=1e-6)
        assert result["poses_3d"].dtype == np.float32 and result["poses_3d"].shape == (7, 16, 3)
        assert np.all(result["poses_3d"][:, H36M16.root] == 0)  # root-relative
        assert result["joint_names"].tolist() == list(H36M16.joint_names) and str(result["layout"]) == "h36m16"
        np.testing.assert_array_equal(result["frames"], np.arange(7))
        np.testing.assert_allclose(result["keypoints_2d"], keypoints)
        assert int(result["frames_per_window"]) == 3 and bool(result["flip_test"]) is flip
    assert not np.allclose(np.load(tmp_path / "oTrue.npz")["poses_3d"], np.load(tmp_path / "oFalse.npz")["poses_3d"])


def _synthetic_coco(num_frames: int = 12) -> tuple[np.ndarray, list[dict]]:
    """A synthetic walk through camera 0 of S9 as h36m17 pixels, and COCO entries made from it."""
    bones = subject_bone_lengths("S9", 0)
    take = family_take("Walking", num_frames, make_rng(0, "test_lifting"), bones)
    world = pose_sequence(take.angles, take.xy + np.array(H36M_CAPTURE_CENTRE), bones)
    camera = load_cameras().camera("S9", 0)
    px = camera.project(select_joints(camera.world_to_camera(world), H36M32, H36M17))
    entries = []
    for f in range(num_frames):
        kp = np.zeros((17, 2))
        for i, name in enumerate(COCO):
            if name in H36M17.joint_names:
                kp[i] = px[f, H36M17.index(name)]
        head, nose = px[f, H36M17.index("head")], px[f, H36M17.index("neck")]
        kp[COCO.index("nose")] = nose
        for name, offset in (
            ("left_eye", (4, 0)),
            ("right_eye", (-4, 0)),
            ("left_ear", (9, 3)),
            ("right_ear", (-9, 3)),
        ):
            kp[COCO.index(name)] = head + offset
        scores = np.full(17, 0.9)
        if f == 4:
            scores[COCO.index("right_elbow")] = 0.1
        entries.append(_coco_entry(f + 1, kp, scores, score=0.8))
    del entries[6]  # image 7 missing
    return px, entries


@pytest.mark.parametrize("name", ["f1", "f3", "h17_f3"])
def test_coco_json_of_projected_synthetic_poses(tmp_path, checkpoints, name):
    px, entries = _synthetic_coco()
    content = {"images": [{"id": f + 1, "width": 1000, "height": 1002} for f in range(12)], "annotations": entries}
    path = _write_json(tmp_path / "walk.json", content)
    assert _predict("--checkpoint", checkpoints[name], "--input", path, "--out", tmp_path / "o.npz") == 0
    out = np.load(tmp_path / "o.npz", allow_pickle=False)
    layout = H36M17 if name.startswith("h17") else H36M16
    assert out["poses_3d"].shape == (12, layout.num_joints, 3) and out["keypoints_2d"].shape == (
        12,
        layout.num_joints,
        2,
    )
    np.testing.assert_array_equal(out["frames"], np.arange(1, 13))
    assert float(out["width"]) == 1000 and float(out["height"]) == 1002
    assert np.all(out["poses_3d"][:, layout.root] == 0) and np.isfinite(out["poses_3d"]).all()
    # confident limbs are the projected joints; frame 7 (index 6) is between its neighbours
    truth = select_joints(px, H36M17, layout)
    limbs = [layout.index(n) for n in layout.joint_names if n.startswith(("left_", "right_"))]
    present = np.flatnonzero(out["present"])
    assert 6 not in present
    rows = np.array([r for r in present if r != 4])
    np.testing.assert_allclose(out["keypoints_2d"][rows][:, limbs], truth[rows][:, limbs], rtol=1e-5)
    np.testing.assert_allclose(out["keypoints_2d"][6], (out["keypoints_2d"][5] + out["keypoints_2d"][7]) / 2, rtol=1e-5)
    elbow = layout.index("right_elbow")
    np.testing.assert_allclose(out["keypoints_2d"][4, elbow], (truth[3, elbow] + truth[5, elbow]) / 2, rtol=1e-5)
    assert out["filled"][4, elbow] and out["filled"][6].all() and out["filled"].sum() == 1 + layout.num_joints
    # the same 2D, given as an .npz in the layout, lifts to the same 3D
    np.savez(tmp_path / "kp.npz", keypoints=out["keypoints_2d"], width=1000, height=1002)
    assert _predict("--checkpoint", checkpoints[name], "--input", tmp_path / "kp.npz", "--out", tmp_path / "n.npz") == 0
    np.testing.assert_allclose(np.load(tmp_path / "n.npz")["poses_3d"], out["poses_3d"], atol=1e-6)


def test_gif(tmp_path, checkpoints):
    _, entries = _synthetic_coco()
    path = _write_json(tmp_path / "walk.json", entries)
    gif = tmp_path / "walk.gif"
    assert _predict("--checkpoint", checkpoints["f1"], "--input", path, "--out", tmp_path / "o.npz",
                    "--width", W, "--height", H, "--gif", gif) == 0  # fmt: skip
    from PIL import Image

    with Image.open(gif) as image:
        assert image.n_frames >= 2


# ------------------------------------------------------------------------------------- bad input


def _npz(path: Path, **content) -> Path:
    np.savez(path, **content)
    return path


def _good_kp(frames: int = 4, joints: int = 16) -> np.ndarray:
    return np.random.default_rng(2).uniform(100, 900, (frames, joints, 2))


def _coco_file(path: Path, ids=(0, 1, 2), low: tuple[str, ...] = (), all_low: bool = False, **extra) -> Path:
    kp, scores = _hand_made_frame()
    scores = scores.copy()
    scores[[COCO.index(n) for n in low]] = 0.1
    if all_low:
        scores[:] = 0.0
    return _write_json(path, [_coco_entry(i, kp, scores, **extra) for i in ids])


def _bad_cases(tmp: Path, ckpt: dict[str, Path]) -> dict[str, tuple[list, str]]:
    """case -> (predict arguments, expected part of the error line)."""
    kp = _good_kp()
    size = ["--width", W, "--height", H]
    cases: dict[str, tuple[list, str]] = {}

    def npz(name: str, expected: str, *extra, **content) -> None:
        path = _npz(tmp / f"{name}.npz", **content)
        cases[name] = (["--input", path, *extra], expected)

    def coco(name: str, expected: str, *extra, **kwargs) -> None:
        path = _coco_file(tmp / f"{name}.json", **kwargs)
        cases[name] = (["--input", path, *size, *extra], expected)

    def raw(name: str, text: str, expected: str, *extra) -> None:
        path = tmp / f"{name}.json"
        path.write_text(text)
        cases[name] = (["--input", path, *extra], expected)

    npz("wrong_joints", "'keypoints' has 15 joints, the checkpoint's layout h36m16 has 16", keypoints=_good_kp(4, 15),
        width=1000, height=1000)  # fmt: skip
    npz("no_keypoints", "missing key 'keypoints'", points=kp, width=1000, height=1000)
    npz("no_width", "missing key 'width'", keypoints=kp, height=1000)
    npz("bad_shape", "must have shape (T, J, 2)", keypoints=np.zeros((4, 16, 3)), width=1000, height=1000)
    npz("nan", "NaN or infinite", keypoints=np.where(np.arange(2) == 1, np.nan, kp), width=1000, height=1000)
    npz("inf", "NaN or infinite", keypoints=np.where(np.arange(2) == 1, np.inf, kp), width=1000, height=1000)
    npz("zero_width", "'width' must be a positive number", keypoints=kp, width=0, height=1000)
    npz("negative_height", "'height' must be a positive number", keypoints=kp, width=100, height=-5.0)
    npz("empty", "empty sequence", keypoints=np.zeros((0, 16, 2)), width=1000, height=1000)
    npz("pickled", "refused to read the .npz", keypoints=np.array([{"x": 1}, None], dtype=object), width=1, height=1)
    npz("track_on_npz", "--track-id applies to detector JSON input only", "--track-id", 3,
        keypoints=kp, width=9, height=9)  # fmt: skip
    npz("size_conflict", "the file gives image size 1000 x 1000, --width/--height say 640 x 480",
        "--width", 640, "--height", 480, keypoints=kp, width=1000, height=1000)  # fmt: skip
    coco("gap", "25 frames are missing between image ids 1 and 27; at most --max-gap 24", "--max-gap", 24,
         ids=(0, 1, 27))  # fmt: skip
    never = "joint never has a score >= --min-score 0.3 in any frame: left_ankle (from COCO left_ankle)"
    coco("never_confident", never, low=("left_ankle",))
    coco("no_valid_frame", "no valid frame", all_low=True)
    coco("unknown_track", "no entry has track_id 9 (the file has 4)", "--track-id", 9, track_id=4)
    coco("track_without_tracks", "--track-id 9 given but no entry has a 'track_id'", "--track-id", 9)
    coco("negative_size_option", "--width must be a positive number", "--width", -3)  # overrides the earlier --width
    cases["no_size"] = (["--input", _coco_file(tmp / "nosize.json")], "the file gives no image size; pass --width")
    raw("empty_list", "[]", "empty sequence (no person entries)", *size)
    raw("not_json", "hello, world\n", "unknown format: neither an .npz archive nor JSON")
    raw("json_object", '{"people": []}', "unknown format: JSON that is neither a list", *size)
    raw("short_keypoints", json.dumps([{"image_id": 0, "keypoints": [1.0] * 50}]), "got 50 values", *size)
    raw("no_image_id", json.dumps([{"keypoints": [1.0] * 51}]), "entry 0 has no 'image_id'", *size)
    raw("json_nan", json.dumps([{"image_id": 0, "keypoints": [math.nan] * 51}]), "JSON holds the literal NaN", *size)
    raw("mixed_ids", json.dumps([{"image_id": i, "keypoints": [1.0] * 51} for i in (0, "1")]), "mixes numbers", *size)
    zero_size = {
        "images": [{"id": 0, "width": 0, "height": 5}],
        "annotations": [{"image_id": 0, "keypoints": [1.0] * 51}],
    }
    raw("image_size_zero", json.dumps(zero_size), "image width must be a positive number")
    cases["missing_file"] = (["--input", tmp / "absent.json"], "absent.json: file not found")
    good = _npz(tmp / "good.npz", keypoints=kp, width=1000, height=1000)
    cases["refine_checkpoint"] = (["--input", good, "--checkpoint", ckpt["refine_only"]], "not a lifting network")
    cases["plain_checkpoint"] = (["--input", good, "--checkpoint", ckpt["plain"]], "not an mlpgraph checkpoint")
    cases["wrong_layout_checkpoint"] = (["--input", good, "--checkpoint", ckpt["h17_f3"]], "layout h36m17 has 17")
    return cases


BAD_CASES = [
    "wrong_joints", "no_keypoints", "no_width", "bad_shape", "nan", "inf", "zero_width", "negative_height", "empty",
    "pickled", "track_on_npz", "size_conflict", "gap", "never_confident", "no_valid_frame", "unknown_track",
    "track_without_tracks", "negative_size_option", "no_size", "empty_list", "not_json", "json_object",
    "short_keypoints", "no_image_id", "json_nan", "mixed_ids", "image_size_zero", "missing_file", "refine_checkpoint",
    "plain_checkpoint", "wrong_layout_checkpoint",
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_one_line_and_exit_2(tmp_path, checkpoints, capsys, case):
    cases = _bad_cases(tmp_path, checkpoints)
    assert sorted(cases) == sorted(BAD_CASES)
    args, expected = cases[case]
    if "--checkpoint" not in args:
        args = ["--checkpoint", checkpoints["f1"], *args]
    out = tmp_path / "out.npz"
    capsys.readouterr()
    assert _predict(*args, "--out", out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("mlpgraph predict: error: ") and expected in err, err
    named = (
        args[args.index("--checkpoint") + 1]
        if case in ("refine_checkpoint", "plain_checkpoint")
        else args[args.index("--input") + 1]
    )
    assert str(named) in err, err
    assert not out.exists()


def test_bad_input_from_the_console_script(tmp_path, checkpoints):
    """The real command: one line on stderr, status 2, no traceback, nothing written."""
    bad = _coco_file(tmp_path / "bad.json", low=("left_ankle",))
    proc = subprocess.run(
        ["mlpgraph", "predict", "--checkpoint", str(checkpoints["f1"]), "--input", str(bad), "--out", "o.npz",
         "--width", "1000", "--height", "1000"],
        cwd=tmp_path, env=tool_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"mlpgraph predict: error: {bad}: joint never has a score" in proc.stderr
    assert not (tmp_path / "o.npz").exists()


def _poisoned_checkpoint(folder: Path, name: str, value: float) -> Path:
    """The T=3 tiny checkpoint with its embedding's weights set to ``value`` (written past the writer's check)."""
    model = _tiny_model("h36m16", 3)
    content = {"format_version": 1, "networks": {"model": network_entry("mlpgraph", model)}, "meta": {}}
    content["networks"]["model"]["state_dict"]["embed.weight"].fill_(value)
    torch.save(content, folder / name)
    return folder / name


def _far_keypoints(value: float) -> np.ndarray:
    kp = _good_kp(6)
    kp[3, 5] = value
    return kp


NON_FINITE_CASES = {
    # keypoints of frame 3 large enough to overflow the network (1e30) or the normalisation (1e300):
    # the reader refuses them first, as points far outside the image
    "overflowing_keypoints": (
        "f3", dict(keypoints=_far_keypoints(1e30)), "input",
        "'keypoints' has 1 points more than 1 image size outside the 1000 x 1000 image (first at frame 3",
    ),
    "keypoints_overflow_normalising": (
        "f3", dict(keypoints=_far_keypoints(1e300)), "input",
        "'keypoints' has 1 points more than 1 image size outside the 1000 x 1000 image (first at frame 3",
    ),
    "nan_weights": (
        "nan", dict(keypoints=_good_kp(6)), "checkpoint",
        "tensor networks.model.state_dict.embed.weight holds NaN or infinite values",
    ),
    "overflowing_weights": (
        "huge", dict(keypoints=_good_kp(6)), "checkpoint",
        "the network's output is NaN or infinite for frames 0, 1, 2, 3, 4, ... (6 in all) of ",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(NON_FINITE_CASES))
def test_non_finite_poses_are_one_line_and_nothing_is_written(tmp_path, checkpoints, capsys, case):
    ckpt, content, blamed, expected = NON_FINITE_CASES[case]
    ckpts = {
        "f3": checkpoints["f3"],
        "nan": _poisoned_checkpoint(tmp_path, "nan.pt", float("nan")),
        "huge": _poisoned_checkpoint(tmp_path, "huge.pt", 1e38),
    }
    path = _npz(tmp_path / "kp.npz", width=1000.0, height=1000.0, **content)
    out = tmp_path / "out.npz"
    capsys.readouterr()
    assert _predict("--checkpoint", ckpts[ckpt], "--input", path, "--out", out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    named = ckpts[ckpt] if blamed == "checkpoint" else path
    assert err.startswith(f"mlpgraph predict: error: {named}: ") and expected in err, err
    assert not out.exists()


def test_write_prediction_refuses_non_finite_poses(tmp_path):
    from mlpgraph.lifting import LiftResult, write_prediction
    from mlpgraph.user_keypoints.reading import read_keypoints

    path = _npz(tmp_path / "kp.npz", keypoints=_good_kp(2), width=1000.0, height=1000.0)
    prepared = prepare_keypoints(read_keypoints(path, H36M16, None, None, None), H36M16)
    poses = np.zeros((2, 16, 3), np.float32)
    poses[1, 4, 2] = np.nan
    with pytest.raises(ValueError, match=r"o\.npz: refusing to write poses_3d holding NaN or infinite values"):
        write_prediction(tmp_path / "o.npz", LiftResult(prepared, poses, 1, True))
    assert not (tmp_path / "o.npz").exists()
    write_prediction(tmp_path / "o.npz", LiftResult(prepared, np.zeros_like(poses), 1, True))
    assert (tmp_path / "o.npz").exists()


def test_cli_help_states_the_library_defaults():
    """The CLI leaves --min-score / --max-gap unset so the library's defaults apply; its help must quote them."""
    from mlpgraph.cli import build_parser
    from mlpgraph.lifting import DEFAULT_MAX_GAP, DEFAULT_MIN_SCORE

    text = " ".join(build_parser()._subparsers._group_actions[0].choices["predict"].format_help().split())
    assert f"(default: {DEFAULT_MIN_SCORE:g})" in text and f"(default: {DEFAULT_MAX_GAP})" in text
