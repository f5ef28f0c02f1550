"""``mlpgraph predict --video``: lifted poses drawn over the source video (:mod:`mlpgraph.video`).

The source videos are made here with imageio-ffmpeg's own ffmpeg: a grey gradient with a white
square moving across it, so every frame differs and the codec has real content to keep.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlpgraph.errors import UserInputError
from mlpgraph.layouts import get_layout
from mlpgraph.lifting import LiftResult
from mlpgraph.user_keypoints.filling import PreparedKeypoints
from mlpgraph.video import VideoInfo, probe_video, video_frame_indices, write_prediction_video
from mlpgraph.video_drawing import output_size

iio = pytest.importorskip("imageio_ffmpeg")

W, H, FPS, FRAMES = 160, 120, 30.0, 24
LAYOUT = get_layout("h36m16")
# The 2D skeleton lies inside this box (x0, y0, x1, y1) of the source frame; pixels this far outside
# it are the source's own.
SKELETON_BOX = (100, 15, 150, 65)
MARGIN = 6


def _source_frames(width: int, height: int, count: int) -> np.ndarray:
    """(count, height, width, 3) uint8: a grey gradient with a white 24-pixel square moving right."""
    ramp = np.linspace(40, 200, width, dtype=np.float64)[None, :] * np.ones((height, 1))
    frames = np.repeat(ramp[None, :, :, None], 3, axis=3).repeat(count, axis=0).astype(np.uint8)
    for t in range(count):
        x = 4 * t % (width - 24)
        frames[t, height // 2 : height // 2 + 24, x : x + 24] = 255
    return frames


def _write_video(path: Path, frames: np.ndarray, fps: float, pix_fmt: str = "yuv420p") -> Path:
    """Encode ``frames`` (nearly lossless H.264) at ``fps``."""
    height, width = frames.shape[1:3]
    writer = iio.write_frames(
        str(path), (width, height), fps=fps, quality=10, macro_block_size=1, pix_fmt_out=pix_fmt,
        ffmpeg_log_level="error",
    )  # fmt: skip
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    return path


def _read_video(path: Path) -> tuple[dict, np.ndarray]:
    """(ffmpeg's metadata, (T, H, W, 3) uint8 frames) of a small video."""
    reader = iio.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    frames = np.stack([np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3) for raw in reader])
    return meta, frames


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24-frame 160 x 120 video at 30 fps."""
    return _write_video(tmp_path_factory.mktemp("video") / "source.mp4", _source_frames(W, H, FRAMES), FPS)


def _result(frames: np.ndarray | list, width: float = W, height: float = H, seed: int = 0) -> LiftResult:
    """A lift of ``frames``: 2D keypoints inside :data:`SKELETON_BOX`, a random 3D pose per frame."""
    frames = np.asarray(frames)
    rng = np.random.default_rng(seed)
    count, joints = len(frames), LAYOUT.num_joints
    x0, y0, x1, y1 = SKELETON_BOX
    keypoints = rng.uniform((x0 + 4, y0 + 4), (x1 - 4, y1 - 4), size=(count, joints, 2))
    filled = np.zeros((count, joints), dtype=bool)
    filled[:, LAYOUT.index("head")] = True
    poses = rng.normal(0.0, 0.3, size=(count, joints, 3)).astype(np.float32)
    poses -= poses[:, LAYOUT.root : LAYOUT.root + 1]
    prepared = PreparedKeypoints(
        keypoints, filled, frames, np.ones(count, dtype=bool), float(width), float(height), LAYOUT, "dets.json"
    )
    return LiftResult(prepared, poses, 1, True)


def _away_from_skeleton(height: int, width: int) -> np.ndarray:
    """(height, width) True where no 2D skeleton is drawn."""
    x0, y0, x1, y1 = SKELETON_BOX
    mask = np.ones((height, width), dtype=bool)
    mask[max(0, y0 - MARGIN) : y1 + MARGIN, max(0, x0 - MARGIN) : x1 + MARGIN] = False
    return mask


def _coloured(region: np.ndarray) -> tuple[int, int]:
    """Pixels of ``region`` in the right (red) and left (blue) bone colours; the source is grey and white."""
    r, g, b = (region[..., c].astype(int) for c in range(3))
    return int(((r - g > 60) & (r - b > 60)).sum()), int(((b - r > 60) & (b - g > 20)).sum())


def test_output_size_is_the_frame_beside_a_square_panel_rounded_to_even() -> None:
    assert output_size(160, 120) == (280, 120)
    assert output_size(1920, 1080) == (3000, 1080)
    assert output_size(161, 121) == (282, 122)
    assert output_size(160, 121) == (282, 122)


def test_probe_video_counts_frames_and_reads_rate_and_size(source: Path) -> None:
    assert probe_video(source) == VideoInfo(source, FRAMES, FPS, W, H)


def test_the_video_shows_the_source_with_its_skeleton_beside_the_3d_pose(source: Path, tmp_path: Path) -> None:
    posed = np.arange(4, 20)
    out = write_prediction_video(_result(posed), source, tmp_path / "overlay.mp4")
    assert out == tmp_path / "overlay.mp4" and sorted(p.name for p in tmp_path.iterdir()) == ["overlay.mp4"]
    out_w, out_h = output_size(W, H)
    assert probe_video(out) == VideoInfo(out, FRAMES, FPS, out_w, out_h)
    _, src = _read_video(source)
    _, video = _read_video(out)
    left = video[:, :H, :W].astype(int)
    away = _away_from_skeleton(H, W)
    diff = np.abs(left - src)[:, away]
    assert diff.mean() < 2.0 and np.percentile(diff, 99.9) < 12, (diff.mean(), diff.max())
    x0, y0, x1, y1 = SKELETON_BOX
    near = left[:, y0:y1, x0:x1]
    for t in range(FRAMES):
        red, blue = _coloured(near[t])
        if t in posed:
            assert red > 5 and blue > 5, (t, red, blue)
        else:
            assert red == 0 and blue == 0, (t, red, blue)
            assert np.abs(left[t] - src[t]).mean() < 2.0
    panels = video[:, :, W:].astype(int)
    red_3d = [_coloured(panel)[0] for panel in panels]
    assert min(red_3d[t] for t in posed) > 5 and max(red_3d[:4] + red_3d[20:]) == 0, red_3d


def test_rotate_turns_the_3d_panel_and_fixed_keeps_it(source: Path, tmp_path: Path) -> None:
    result = _result([10])  # one posed frame: frames 0 and 23 show the empty 3D axes
    changes = {}
    for view in ("rotate", "fixed"):
        _, video = _read_video(write_prediction_video(result, source, tmp_path / f"{view}.mp4", view=view))
        panels = video[:, : H * 4 // 5, W:].astype(int)  # above the frame label
        changes[view] = np.abs(panels[23] - panels[0]).mean()
    assert changes["fixed"] < 0.5 and changes["rotate"] > 3.0, changes


def test_odd_sized_video_is_padded_to_even(tmp_path: Path) -> None:
    source = _write_video(tmp_path / "odd.mp4", _source_frames(160, 121, 5), 25.0, pix_fmt="yuv444p")
    result = _result([1, 2, 3], width=160, height=121)  # W + H and H odd
    out = write_prediction_video(result, source, tmp_path / "out.mp4", view="fixed")
    assert probe_video(out) == VideoInfo(out, 5, 25.0, 282, 122)
    _, video = _read_video(out)
    assert video[:, :, -1].max() < 24 and video[:, -1, :].max() < 24  # the black padding column and row


def _refused(tmp_path: Path, message: str, *args, **kwargs) -> None:
    """``write_prediction_video`` raises a one-line UserInputError holding ``message``, and writes nothing."""
    before = sorted(tmp_path.iterdir())
    with pytest.raises(UserInputError) as info:
        write_prediction_video(*args, **kwargs)
    text = str(info.value)
    assert message in text and "\n" not in text, text
    assert sorted(tmp_path.iterdir()) == before


def test_keypoints_of_another_image_size_are_refused(source: Path, tmp_path: Path) -> None:
    result = _result(np.arange(5), width=320, height=240)
    message = f"dets.json: keypoints are in a 320 x 240 image, but the video {source} is 160 x 120"
    _refused(tmp_path, message, result, source, tmp_path / "out.mp4")


def test_keypoint_frames_beyond_the_video_are_refused(source: Path, tmp_path: Path) -> None:
    message = f"dets.json: 3 keypoint frames (numbers 24 to 26) are outside the video {source}, whose 24 frames"
    _refused(tmp_path, message, _result(np.arange(20, 27)), source, tmp_path / "out.mp4")
    _refused(tmp_path, "numbered 1 to 24", _result(np.arange(0, 5)), source, tmp_path / "out.mp4", first_frame=1)


def test_a_bad_view_and_bad_videos_are_refused(source: Path, tmp_path: Path) -> None:
    _refused(
        tmp_path, "--view must be one of rotate, fixed, got 'spin'", _result([0]), source, tmp_path / "o.mp4", "spin"
    )
    _refused(tmp_path, f"{tmp_path / 'none.mp4'}: video file not found", _result([0]), tmp_path / "none.mp4", "o.mp4")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    _refused(tmp_path, f"{text}: not a readable video (Invalid data", _result([0]), text, tmp_path / "o.mp4")
    sound = tmp_path / "sound.wav"
    subprocess.run([iio.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine=d=0.2", str(sound)], check=True)
    _refused(tmp_path, f"{sound}: not a readable video (it has no video stream)", _result([0]), sound, "o.mp4")


def test_frame_numbers_come_from_numeric_or_numbered_string_ids(source: Path) -> None:
    info = probe_video(source)
    assert video_frame_indices(_result(np.arange(3, 8)).prepared, info).tolist() == [3, 4, 5, 6, 7]
    assert video_frame_indices(_result(np.arange(1, 25)).prepared, info, first_frame=1).tolist() == list(range(24))
    names = np.array([f"frame_{i:06d}.jpg" for i in (5, 6, 7)])
    assert video_frame_indices(_result(names).prepared, info).tolist() == [5, 6, 7]
    with pytest.raises(UserInputError, match="image ids such as 'left.jpg' do not number the video's frames"):
        video_frame_indices(_result(np.array(["left.jpg", "right.jpg"])).prepared, info)


def test_the_source_video_is_not_overwritten(source: Path) -> None:
    size = source.stat().st_size
    with pytest.raises(UserInputError, match="is an input of this command"):
        write_prediction_video(_result([0]), source, source)
    assert source.stat().st_size == size


def test_without_imageio_ffmpeg_a_video_is_a_one_line_error(source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as if not installed: importing it fails
    with pytest.raises(UserInputError, match=r"needs imageio-ffmpeg.*pip install 'mlpgraph\[video\]'"):
        probe_video(source)


# ----------------------------------------------------------------------------- mlpgraph predict --video --mp4


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 3-frame h36m16 MLP-Graph checkpoint."""
    import torch

    from mlpgraph.checkpoints import network_entry, save_checkpoint
    from mlpgraph.models import build_model

    torch.manual_seed(0)
    model = build_model("mlpgraph", layout="h36m16", frames=3, hid_dim=16, spatial_hid_dim=16, channel_hid_dim=16)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "f3.pt", {"model": network_entry("mlpgraph", model)})


def _coco_track(path: Path, count: int) -> Path:
    """COCO-17 results for frames 0..count-1 inside the source frame, without an image size."""
    import json

    rng = np.random.default_rng(5)
    entries = [
        {"image_id": i, "keypoints": np.c_[rng.uniform((20, 10), (140, 110), (17, 2)), np.ones(17)].ravel().tolist()}
        for i in range(count)
    ]
    path.write_text(json.dumps(entries))
    return path


def test_predict_video_writes_an_mp4_matching_the_source(tmp_path, source, tiny_checkpoint):
    from mlpgraph.cli import main

    keypoints = _coco_track(tmp_path / "kp.json", FRAMES)
    out, mp4 = tmp_path / "poses.npz", tmp_path / "out.mp4"
    argv = ["predict", "--checkpoint", str(tiny_checkpoint), "--input", str(keypoints), "--out", str(out)]
    assert main([*argv, "--video", str(source), "--mp4", str(mp4), "--view", "fixed"]) == 0
    info = probe_video(mp4)
    assert (info.num_frames, info.fps) == (FRAMES, FPS)
    assert (info.width, info.height) == output_size(W, H)
    result = np.load(out, allow_pickle=False)
    assert result["poses_3d"].shape == (FRAMES, 16, 3)
    assert float(result["fps"]) == FPS and (float(result["width"]), float(result["height"])) == (W, H)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mp4", "o.mp4"], "--video and --mp4 go together"),
        (["--video", "{source}", "--mp4", "o.mp4", "--view", "spin"], "--view must be one of"),
        (["--video", "{source}", "--mp4", "o.mp4", "--width", "640", "--height", "480"], "but the video"),
    ],
)
def test_predict_video_mistakes_are_one_line(tmp_path, source, tiny_checkpoint, capsys, extra, message):
    from mlpgraph.cli import main

    keypoints = _coco_track(tmp_path / "kp.json", FRAMES)
    out = tmp_path / "poses.npz"
    argv = ["predict", "--checkpoint", str(tiny_checkpoint), "--input", str(keypoints), "--out", str(out)]
    extra = [str(tmp_path / e) if e.endswith(".mp4") else e.format(source=source) for e in extra]
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err, err
    assert not out.exists() and not (tmp_path / "o.mp4").exists()
