"""``mlpgraph.Lifter``: the Python API over arrays, frame-rate resampling, and ``predict``'s new options."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import mlpgraph
from mlpgraph.cameras import normalise_screen
from mlpgraph.checkpoints import network_entry, save_checkpoint
from mlpgraph.cli import main
from mlpgraph.data.batches import PoseArrays
from mlpgraph.errors import UserInputError
from mlpgraph.evaluation import predict
from mlpgraph.layouts import H36M16
from mlpgraph.lifter import MODEL_FPS, Lifter, resample_frames
from mlpgraph.models import build_model
from mlpgraph.user_keypoints.coco import COCO17_JOINTS

W, H = 1000.0, 1002.0


def _tiny_model(frames: int) -> torch.nn.Module:
    torch.manual_seed(frames)
    return build_model(
        "mlpgraph", layout="h36m16", frames=frames, hid_dim=16, spatial_hid_dim=16, channel_hid_dim=16, num_layers=1
    ).eval()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[int, Path]:
    """Tiny h36m16 MLP-Graph checkpoints at 1 and 9 frames."""
    folder = tmp_path_factory.mktemp("ckpt")
    return {
        frames: save_checkpoint(folder / f"f{frames}.pt", {"model": network_entry("mlpgraph", _tiny_model(frames))})
        for frames in (1, 9)
    }


def _expected(frames: int, keypoints_px: np.ndarray, flip: bool = True) -> np.ndarray:
    """What :func:`mlpgraph.evaluation.predict` gives on the normalised pixels, at the model's own rate."""
    norm = normalise_screen(keypoints_px.astype(np.float64), W, H).astype(np.float32)
    count = len(norm)
    data = PoseArrays.from_numpy(norm, np.zeros((count, 16, 3), np.float32), np.array([[0, count]]), layout="h36m16")
    pad = (frames - 1) // 2
    return predict(_tiny_model(frames), data, pad=pad, flip_test=flip).numpy()


def _walk(count: int, fps: float) -> np.ndarray:
    """(count, 16, 2) pixels: a smooth motion sampled at ``fps`` (so rates can be compared)."""
    rng = np.random.default_rng(3)
    base = rng.uniform(300, 700, (1, 16, 2))
    t = np.arange(count)[:, None, None] / fps
    return base + 80 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6, (1, 16, 2)))


def test_lifter_on_layout_arrays_equals_evaluation_predict(checkpoints):
    keypoints = np.random.default_rng(0).uniform(100, 900, (11, 16, 2))
    for frames in (1, 9):
        lifter = mlpgraph.Lifter.from_checkpoint(checkpoints[frames], device="auto", batch_size=4)
        assert lifter.frames == frames and lifter.layout is H36M16
        for flip in (True, False):
            lifted = lifter.lift(keypoints, width=W, height=H, layout="h36m16", flip_test=flip)
            np.testing.assert_allclose(lifted.poses_3d, _expected(frames, keypoints, flip), atol=1e-6)
        assert lifted.poses_3d.dtype == np.float32 and lifted.poses_3d.shape == (11, 16, 3)
        assert not lifted.filled.any() and lifted.joint_names == H36M16.joint_names
        np.testing.assert_allclose(lifted.keypoints_2d, keypoints)


def test_batch_size_does_not_change_the_poses(checkpoints):
    keypoints = np.random.default_rng(1).uniform(100, 900, (13, 16, 2))
    poses = [
        Lifter.from_checkpoint(checkpoints[9], batch_size=b)
        .lift(keypoints, width=W, height=H, layout="h36m16")
        .poses_3d
        for b in (1, 5, 1024)
    ]
    np.testing.assert_allclose(poses[0], poses[1], atol=1e-6)
    np.testing.assert_allclose(poses[0], poses[2], atol=1e-6)


def test_coco_arrays_are_mapped_by_name_and_low_scores_filled(checkpoints):
    rng = np.random.default_rng(2)
    coco = rng.uniform(200, 800, (6, 17, 2))
    scores = np.ones((6, 17))
    scores[2, COCO17_JOINTS.index("left_wrist")] = 0.05
    lifted = Lifter.from_checkpoint(checkpoints[1]).lift(coco, scores, width=W, height=H)  # layout coco17
    wrist, pelvis = H36M16.index("left_wrist"), H36M16.index("pelvis")
    assert lifted.filled[:, wrist].tolist() == [False, False, True, False, False, False]
    assert lifted.filled.sum() == 1
    left, right = COCO17_JOINTS.index("left_hip"), COCO17_JOINTS.index("right_hip")
    np.testing.assert_allclose(lifted.keypoints_2d[:, pelvis], (coco[:, left] + coco[:, right]) / 2)
    np.testing.assert_allclose(lifted.keypoints_2d[2, wrist], (coco[1, 9] + coco[3, 9]) / 2)  # filled in time
    np.testing.assert_allclose(lifted.poses_3d, _expected(1, lifted.keypoints_2d), atol=1e-6)


def test_resample_frames_by_hand():
    values = np.array([0.0, 10.0, 20.0, 30.0])  # at 30 fps: times 0, 1/30, 2/30, 3/30
    np.testing.assert_allclose(resample_frames(values, 30.0, 60.0), [0, 5, 10, 15, 20, 25, 30])
    np.testing.assert_allclose(resample_frames(values, 30.0, 15.0), [0, 20])
    np.testing.assert_allclose(resample_frames(values, 30.0, 50.0), [0, 6, 12, 18, 24, 30])
    np.testing.assert_allclose(resample_frames(values, 30.0, 50.0, count=7), [0, 6, 12, 18, 24, 30, 30])
    poses = np.arange(24, dtype=np.float64).reshape(4, 3, 2)
    np.testing.assert_allclose(resample_frames(poses, 2.0, 4.0)[1], (poses[0] + poses[1]) / 2)


def test_temporal_model_at_30_fps_is_lifted_at_50_and_resampled_back(checkpoints):
    keypoints = _walk(30, 30.0)  # one second at 30 fps
    lifted = Lifter.from_checkpoint(checkpoints[9]).lift(keypoints, width=W, height=H, fps=30.0, layout="h36m16")
    assert lifted.poses_3d.shape == (30, 16, 3) and lifted.fps == 30.0
    at_50 = resample_frames(keypoints, 30.0, MODEL_FPS)
    assert len(at_50) == 49  # frames at k / 50 s up to 29 / 30 s
    expected = resample_frames(_expected(9, at_50), MODEL_FPS, 30.0, count=30)
    np.testing.assert_allclose(lifted.poses_3d, expected, atol=1e-6)
    unresampled = Lifter.from_checkpoint(checkpoints[9]).lift(keypoints, width=W, height=H, layout="h36m16")
    assert np.abs(unresampled.poses_3d - lifted.poses_3d).max() > 1e-4  # the rate reaches the network


def test_single_frame_model_ignores_the_rate(checkpoints):
    keypoints = _walk(10, 30.0)
    lifter = Lifter.from_checkpoint(checkpoints[1])
    at_30 = lifter.lift(keypoints, width=W, height=H, fps=30.0, layout="h36m16").poses_3d
    np.testing.assert_array_equal(at_30, lifter.lift(keypoints, width=W, height=H, layout="h36m16").poses_3d)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"keypoints": np.zeros((5, 16, 3))}, "expected shape (T, 16, 2)"),
        ({"keypoints": np.zeros((0, 17, 2)), "layout": "coco17"}, "expected shape (T, 17, 2)"),
        ({"layout": "body99"}, "unknown joint set"),
        ({"fps": 0.0}, "fps must be a frame rate"),
        ({"fps": float("nan")}, "fps must be a frame rate"),
        ({"width": -1.0}, "width must be a positive number"),
        ({"scores": np.ones((5, 3))}, "scores: expected shape (5, 16)"),
        ({"keypoints": np.full((5, 16, 2), np.nan)}, "NaN or infinite"),
    ],
)
def test_bad_arrays_are_one_line_errors(checkpoints, kwargs, message):
    args = {"keypoints": np.full((5, 16, 2), 500.0), "width": W, "height": H, "layout": "h36m16", **kwargs}
    with pytest.raises(UserInputError) as info:
        Lifter.from_checkpoint(checkpoints[1]).lift(**args)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unavailable_device_is_a_one_line_error(checkpoints):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(UserInputError, match="device: cuda is not available"):
        Lifter.from_checkpoint(checkpoints[1], device="cuda")


def _coco_json(path: Path, keypoints: np.ndarray) -> Path:
    entries = [
        {"image_id": i, "keypoints": np.concatenate([kp, np.ones((17, 1))], axis=1).ravel().tolist()}
        for i, kp in enumerate(keypoints)
    ]
    path.write_text(json.dumps({"annotations": entries, "images": [{"id": 0, "width": W, "height": H}]}))
    return path


def test_predict_input_fps_gives_one_pose_per_input_frame(tmp_path, checkpoints):
    coco = np.repeat(_walk(24, 30.0)[:, :1], 17, axis=1) + np.random.default_rng(4).uniform(-90, 90, (1, 17, 2))
    source = _coco_json(tmp_path / "kp.json", coco)
    out = tmp_path / "o.npz"
    argv = ["predict", "--checkpoint", str(checkpoints[9]), "--input", str(source), "--out", str(out)]
    assert main([*argv, "--input-fps", "30", "--device", "cpu", "--batch-size", "7"]) == 0
    result = np.load(out, allow_pickle=False)
    assert result["poses_3d"].shape == (24, 16, 3) and float(result["fps"]) == 30.0
    api = Lifter.from_checkpoint(checkpoints[9]).lift(coco, width=W, height=H, fps=30.0)
    np.testing.assert_allclose(result["poses_3d"], api.poses_3d, atol=1e-6)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--input-fps", "0"], "--input-fps must be a frame rate"),
        (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
        (["--device", "tpu"], "--device: 'tpu' is not a device"),
    ],
)
def test_predict_bad_options_exit_2_in_one_line(tmp_path, checkpoints, capsys, extra, message):
    source = _coco_json(tmp_path / "kp.json", np.full((3, 17, 2), 500.0))
    out = tmp_path / "o.npz"
    argv = ["predict", "--checkpoint", str(checkpoints[1]), "--input", str(source), "--out", str(out), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err, err
    assert not out.exists()


def test_openpose_body25_arrays_map_by_name(checkpoints):
    from mlpgraph.user_keypoints.joint_maps import BODY25_JOINTS

    body25 = np.random.default_rng(6).uniform(200, 800, (4, 25, 2))
    scores = np.ones((4, 25))
    lifted = Lifter.from_checkpoint(checkpoints[1]).lift(body25, scores, width=W, height=H, layout="body25")
    for joint, source in (("pelvis", "MidHip"), ("thorax", "Neck"), ("left_knee", "LKnee"), ("right_wrist", "RWrist")):
        np.testing.assert_allclose(lifted.keypoints_2d[:, H36M16.index(joint)], body25[:, BODY25_JOINTS.index(source)])
    np.testing.assert_allclose(lifted.poses_3d, _expected(1, lifted.keypoints_2d), atol=1e-6)
