"""Skeleton demos (``mlpgraph render``): GIF frames, views, MP4 and one-line user errors.

Covers mlpgraph.viz (render entry points), mlpgraph.skeleton_drawing and mlpgraph.animation (GIF / MP4).
Everything runs on a tiny processed file written here (a stick figure seen by a pinhole camera)
and an untrained 3-frame MLP-Graph, with renders of a few small frames.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from mlpgraph import animation, skeleton_drawing, viz
from mlpgraph.cameras import normalise_screen
from mlpgraph.checkpoints import network_entry, save_checkpoint
from mlpgraph.cli import main
from mlpgraph.data import schema
from mlpgraph.layouts import H36M16
from mlpgraph.models import build_model

SIZE = (320, 160)
IMAGE = (1000, 1002)
FRAMES = 24
# (subject, action, camera) of each sequence, in file order.
SEQUENCES = [("S1", "Walking", 0), ("S9", "Eating", 0), ("S9", "Walking", 0), ("S9", "Walking", 1)]
SUBJECTS = ["S1", "S9"]
ACTIONS = ["Eating", "Walking"]

# h36m16 stick figure in camera space (x right, y down), metres, relative to the pelvis.
_BASE = np.array(
    [
        (0, 0), (-0.12, 0), (-0.12, 0.45), (-0.12, 0.9), (0.12, 0), (0.12, 0.45), (0.12, 0.9),
        (0, -0.25), (0, -0.5), (0, -0.7), (0.18, -0.5), (0.2, -0.25), (0.2, 0),
        (-0.18, -0.5), (-0.2, -0.25), (-0.2, 0),
    ],
    dtype=np.float64,
)  # fmt: skip


def _sequence_3d(phase: float) -> np.ndarray:
    """(FRAMES, 16, 3) root-relative poses: arms and legs swinging in depth."""
    t = np.arange(FRAMES)[:, None] / 10.0
    poses = np.zeros((FRAMES, 16, 3))
    poses[:, :, :2] = _BASE
    swing = np.sin(2 * np.pi * t + phase)
    for joint, sign in ((2, 1), (3, 1), (5, -1), (6, -1), (11, -1), (12, -1), (14, 1), (15, 1)):
        poses[:, joint, 2] = 0.25 * sign * swing[:, 0]
    return poses


def write_processed(path: Path) -> Path:
    """A tiny processed HDF5 file in the schema's layout, 2D projected with a pinhole camera."""
    focal, centre = np.array([1150.0, 1150.0]), np.array([500.0, 501.0])
    lengths = np.full(len(SEQUENCES), FRAMES)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    arrays: dict[str, list[np.ndarray]] = {name: [] for name in schema.PER_SAMPLE_DATASETS}
    for seq, (subject, action, camera) in enumerate(SEQUENCES):
        rel = _sequence_3d(phase=seq)
        root = np.tile([0.1 * seq, 0.2, 4.5], (FRAMES, 1))
        absolute = rel + root[:, None]
        pixels = absolute[..., :2] / absolute[..., 2:] * focal + centre
        arrays[schema.POSES_3D].append(rel.astype(np.float32))
        arrays[schema.POSES_2D].append(normalise_screen(pixels, *IMAGE).astype(np.float32))
        arrays[schema.ROOT_3D].append(root.astype(np.float32))
        arrays[schema.SUBJECT].append(np.full(FRAMES, SUBJECTS.index(subject), dtype=np.int16))
        arrays[schema.ACTION].append(np.full(FRAMES, ACTIONS.index(action), dtype=np.int16))
        arrays[schema.FAMILY].append(np.full(FRAMES, ACTIONS.index(action), dtype=np.int16))
        arrays[schema.CAMERA].append(np.full(FRAMES, camera, dtype=np.int16))
        arrays[schema.FRAME].append(np.arange(FRAMES, dtype=np.int32))
        arrays[schema.SEQUENCE].append(np.full(FRAMES, seq, dtype=np.int32))
    intrinsics = np.tile(
        [*(focal / IMAGE[0] * 2), *normalise_screen(centre, *IMAGE), *IMAGE], (len(SEQUENCES), 1)
    ).astype(np.float32)
    with h5py.File(path, "w") as h5:
        for name, parts in arrays.items():
            h5.create_dataset(name, data=np.concatenate(parts))
        h5.create_dataset(schema.SEQUENCES, data=np.stack([starts, lengths], axis=1).astype(np.int64))
        h5.create_dataset(schema.INTRINSICS, data=intrinsics)
        h5.attrs["format_version"] = schema.FORMAT_VERSION
        h5.attrs["dataset"] = "tiny"
        h5.attrs["keypoints"] = "gt"
        h5.attrs["layout"] = "h36m16"
        h5.attrs["subjects"] = json.dumps(SUBJECTS)
        h5.attrs["actions"] = json.dumps(ACTIONS)
        h5.attrs["families"] = json.dumps(ACTIONS)
        h5.attrs["train_subjects"] = json.dumps(["S1"])
        h5.attrs["test_subjects"] = json.dumps(["S9"])
        h5.attrs["fps"] = 50
        h5.attrs["fingerprint"] = "0" * 64
        h5.attrs["raw_files"] = json.dumps({})
        h5.attrs["params"] = json.dumps({})
        h5.attrs["complete"] = True
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("viz")
    model = build_model("mlpgraph", frames=3, hid_dim=16, spatial_hid_dim=16, channel_hid_dim=16, num_layers=1)
    checkpoint = save_checkpoint(root / "model.pt", {"model": network_entry("mlpgraph", model)})
    return {"processed": write_processed(root / "tiny_gt_h36m16.h5"), "checkpoint": checkpoint}


def _gif_info(path: Path) -> tuple[int, tuple[int, int], list[int]]:
    with Image.open(path) as im:
        durations = []
        for k in range(im.n_frames):
            im.seek(k)
            durations.append(im.info["duration"])
        return im.n_frames, im.size, durations


def test_render_sequence_writes_gif_with_frames_size_and_durations(inputs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "demo.gif"
    result = viz.render_sequence(
        inputs["checkpoint"], inputs["processed"], "S9", "Walking", 1, (0, 12), out, size_px=SIZE
    )
    assert result["gif"] == str(out) and result["mp4"] is None
    assert result["frames"] == 6 and result["stride"] == 2 and result["fps"] == 25.0
    assert result["frame_range"] == [0, 12] and result["size"] == list(SIZE)
    assert np.isfinite(result["p1_mm"]) and result["p1_mm"] > 0 and result["refined"] is False
    assert _gif_info(out) == (6, SIZE, [40] * 6)
    assert [p.name for p in tmp_path.iterdir()] == ["demo.gif"]  # no temporary left behind

    # A chosen fps keeps real time: 10 fps on 50 fps data draws every 5th frame, 100 ms each.
    slow = viz.render_sequence(
        inputs["checkpoint"], inputs["processed"], "S9", "Walking", 0, slice(2, 22), tmp_path / "slow.gif",
        view="fixed", fps=10, size_px=SIZE,
    )  # fmt: skip
    assert slow["frames"] == 4 and slow["stride"] == 5 and slow["frame_range"] == [2, 22]
    assert _gif_info(tmp_path / "slow.gif") == (4, SIZE, [100] * 4)


def test_fixed_and_rotating_views_differ() -> None:
    pred = _sequence_3d(0.0)[:3]
    gt = _sequence_3d(0.3)[:3]
    pixels = (pred[..., :2] + [0.0, 0.0]) / 4.5 * 1150 + 500
    fixed = skeleton_drawing.render_frames(pixels, pred, gt, H36M16, IMAGE, "fixed", view="fixed", size_px=SIZE)
    rotate = skeleton_drawing.render_frames(pixels, pred, gt, H36M16, IMAGE, "fixed", view="rotate", size_px=SIZE)
    assert len(fixed) == len(rotate) == 3 and all(im.size == SIZE and im.mode == "RGB" for im in fixed)
    as_arrays = [[np.asarray(im) for im in frames] for frames in (fixed, rotate)]
    assert np.array_equal(as_arrays[0][0], as_arrays[1][0])  # both start from the same viewpoint
    for k in (1, 2):
        assert not np.array_equal(as_arrays[0][k], as_arrays[1][k])
    # Without ground truth the legend has no ground-truth entry and the images change.
    no_gt = skeleton_drawing.render_frames(pixels, pred, None, H36M16, IMAGE, "fixed", view="fixed", size_px=SIZE)
    assert not np.array_equal(np.asarray(no_gt[0]), as_arrays[0][0])


def test_mp4_written_when_ffmpeg_is_available(inputs: dict[str, Path], tmp_path: Path) -> None:
    if animation.find_ffmpeg() is None:
        pytest.skip("no ffmpeg on PATH and imageio-ffmpeg not installed")
    out = tmp_path / "demo.gif"
    result = viz.render_sequence(
        inputs["checkpoint"], inputs["processed"], "S1", "Walking", 0, (0, 8), out, mp4=True, size_px=(322, 161)
    )
    mp4 = tmp_path / "demo.mp4"
    assert result["mp4"] == str(mp4) and mp4.stat().st_size > 0
    assert mp4.read_bytes()[4:8] == b"ftyp"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.gif", "demo.mp4"]


def test_a_failing_mp4_leaves_neither_animation(
    inputs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIF and MP4 are published together: an MP4 failure keeps the earlier GIF and writes nothing new."""
    (tmp_path / "demo.gif").write_bytes(b"the earlier GIF")

    def broken(*args: object) -> bool:
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr(viz, "write_mp4", broken)
    with pytest.raises(RuntimeError, match="encoder crashed"):
        viz.render_sequence(
            inputs["checkpoint"], inputs["processed"], "S1", "Walking", 0, (0, 4), tmp_path / "demo.gif", mp4=True,
            size_px=SIZE,
        )  # fmt: skip
    assert [p.name for p in tmp_path.iterdir()] == ["demo.gif"]
    assert (tmp_path / "demo.gif").read_bytes() == b"the earlier GIF"
    monkeypatch.setattr(viz, "write_mp4", lambda *args: False)  # no ffmpeg: the GIF alone
    result = viz.render_sequence(
        inputs["checkpoint"], inputs["processed"], "S1", "Walking", 0, (0, 4), tmp_path / "demo.gif", mp4=True,
        size_px=SIZE,
    )  # fmt: skip
    assert result["mp4"] is None and _gif_info(tmp_path / "demo.gif")[0] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["demo.gif"]


def test_write_mp4_without_ffmpeg_returns_false(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(animation, "find_ffmpeg", lambda: None)
    frame = Image.new("RGB", SIZE, "white")
    with caplog.at_level(logging.WARNING, logger="mlpgraph.animation"):
        assert animation.write_mp4([frame, frame], tmp_path / "x.mp4", 25) is False
    assert not (tmp_path / "x.mp4").exists()
    assert "no ffmpeg" in caplog.text


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--subject", "S2", "--action", "Walking"], "no subject 'S2'; choose from S1, S9"),
        (["--subject", "S9", "--action", "Walk"], "S9 has no action 'Walk'; choose from Eating, Walking"),
        (["--subject", "S1", "--action", "Eating"], "S1 has no action 'Eating'; choose from Walking"),
        (["--subject", "S9", "--action", "Walking", "--camera", "3"], "no camera 3; choose from 0, 1"),
        (["--subject", "S9", "--action", "Walking", "--frames", "20:500"], "frames 20:500 out of range"),
        (
            ["--subject", "S9", "--action", "Walking", "--frames", "30:"],
            "frames 30: out of range for S9 Walking camera 0, which has frames 0:24",
        ),
    ],
)
def test_cli_user_errors_are_one_line_exit_2(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], expected: str
) -> None:
    out = tmp_path / "demo.gif"
    argv = ["render", "--checkpoint", str(inputs["checkpoint"]), "--processed", str(inputs["processed"])]
    assert main([*argv, *options, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("mlpgraph render: error:")
    assert expected in err
    assert not out.exists()


def test_cli_render(inputs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "cli.gif"
    argv = ["render", "--checkpoint", str(inputs["checkpoint"]), "--processed", str(inputs["processed"])]
    assert (
        main([*argv, "--subject", "S9", "--action", "Eating", "--frames", ":6", "--view", "fixed", "--out", str(out)])
        == 0
    )
    n_frames, size, durations = _gif_info(out)
    assert n_frames == 3 and size == skeleton_drawing.DEFAULT_SIZE_PX and durations == [40] * 3
