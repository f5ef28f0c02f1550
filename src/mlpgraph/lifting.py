"""Lift the user's own keypoint file to root-relative 3D with a trained checkpoint (``mlpgraph predict``).

The keypoint file is read and prepared by :mod:`mlpgraph.user_keypoints`: an ``.npz`` in the
model's layout, or a 2D detector's output (COCO-17 results, MMPose/RTMPose predictions,
AlphaPose results, an OpenPose BODY_25 JSON folder; told apart by content), mapped onto the model's layout
by joint name, low-confidence joints and missing frames filled from their neighbours in time. The
lifting itself is :class:`mlpgraph.lifter.Lifter` (the Python API), so the command and the API
give the same poses. Every problem with the input is a one-line
:class:`~mlpgraph.errors.UserInputError` naming the file, raised before anything is written.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mlpgraph.errors import UserInputError
from mlpgraph.lifter import MODEL_FPS, Lifter, check_fps, lifting_network
from mlpgraph.outputs import atomic_outputs, atomic_path
from mlpgraph.user_keypoints.filling import DEFAULT_MAX_GAP, DEFAULT_MIN_SCORE, PreparedKeypoints, prepare_keypoints
from mlpgraph.user_keypoints.reading import read_keypoints

if TYPE_CHECKING:
    from mlpgraph.video import VideoInfo

__all__ = ["DEFAULT_MAX_GAP", "DEFAULT_MIN_SCORE", "LiftResult", "lifting_network", "predict_file"]

log = logging.getLogger(__name__)

# --gif draws at most this many frames (evenly spaced over the sequence), played at GIF_FPS.
GIF_MAX_FRAMES = 200
GIF_FPS = 25.0


@dataclass(frozen=True)
class LiftResult:
    """What :func:`predict_file` lifted: the prepared 2D and the (T, J, 3) float32 metres.

    ``fps``: the input's frame rate (temporal models saw it resampled to 50 fps).
    """

    prepared: PreparedKeypoints
    poses_3d: np.ndarray
    frames_per_window: int
    flip_test: bool
    fps: float = MODEL_FPS


def write_prediction(path: str | os.PathLike[str], result: LiftResult) -> Path:
    """Write ``result`` as an ``.npz`` (atomically; readable with ``allow_pickle=False``).

    Keys: ``poses_3d`` (T, J, 3) float32 root-relative camera-space metres, ``keypoints_2d``
    (T, J, 2) float32 the filled pixels that were lifted, ``filled`` (T, J) bool, ``frames`` (T,)
    image ids, ``present`` (T,) bool (frame in the input file), ``joint_names``, ``layout``,
    ``width``, ``height``, ``frames_per_window``, ``flip_test``, ``fps`` (the input's frame rate).
    """
    prep = result.prepared
    path = Path(path)
    for name, values in (("poses_3d", result.poses_3d), ("keypoints_2d", prep.keypoints)):
        if not np.isfinite(values).all():
            raise ValueError(f"{path}: refusing to write {name} holding NaN or infinite values")
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            poses_3d=result.poses_3d.astype(np.float32),
            keypoints_2d=prep.keypoints.astype(np.float32),
            filled=prep.filled,
            frames=prep.frames,
            present=prep.present,
            joint_names=np.array(prep.layout.joint_names, dtype=str),
            layout=np.array(prep.layout.name),
            width=np.float64(prep.width),
            height=np.float64(prep.height),
            frames_per_window=np.int64(result.frames_per_window),
            flip_test=np.bool_(result.flip_test),
            fps=np.float64(result.fps),
        )
    return path


@dataclass(frozen=True)
class VideoOptions:
    """``predict --video IN --mp4 OUT``: the source video and the MP4 drawn over it.

    ``first_frame``: the keypoint file's frame number of the video's first frame; ``view``:
    ``rotate`` or ``fixed`` 3D panel (:func:`mlpgraph.video.write_prediction_video`).
    """

    video: str | os.PathLike[str]
    mp4: str | os.PathLike[str]
    view: str = "rotate"
    first_frame: int = 0


def predict_file(
    checkpoint: str | os.PathLike[str],
    input_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    width: float | None = None,
    height: float | None = None,
    min_score: float = DEFAULT_MIN_SCORE,
    track_id: int | None = None,
    max_gap: int = DEFAULT_MAX_GAP,
    flip_test: bool = True,
    batch_size: int = 1024,
    device: str = "auto",
    gif: str | os.PathLike[str] | None = None,
    input_fps: float | None = None,
    video: VideoOptions | None = None,
    fmt: str = "auto",
) -> LiftResult:
    """Read, map, fill, lift and write one keypoint file (``mlpgraph predict``).

    ``fmt``: the keypoint file's format (:data:`~mlpgraph.user_keypoints.reading.KEYPOINT_FORMATS`;
    ``auto``: told from the content). ``input_fps``: the keypoints' frame rate (default: the
    video's, else the file's, else 50); one pose is written per input frame. With ``gif``, also
    :func:`render_gif`; with ``video``, the MP4 of the source video with the 2D and 3D skeletons,
    whose size also stands in for ``width`` / ``height``.
    Everything that can be wrong with the inputs is checked before anything is logged or
    written, so a user error leaves a single line and no output file. All outputs are written
    under temporary names and renamed into place together: a failure leaves none of them, and
    whatever was at those paths before stays as it was.
    """
    from mlpgraph.devices import resolve_device

    info = _probe_video(video)
    if info is not None:
        width, height = width or float(info.width), height or float(info.height)
        input_fps = info.fps if input_fps is None else input_fps
    if input_fps is not None:
        check_fps(input_fps, "--input-fps")
    lifter = Lifter.from_checkpoint(checkpoint, device=str(resolve_device(device, "--device")), batch_size=batch_size)
    seq = read_keypoints(input_path, lifter.layout, width, height, track_id, fmt)
    fps = check_fps(input_fps or seq.fps or MODEL_FPS, "--input-fps")
    prepared = prepare_keypoints(seq, lifter.layout, min_score, max_gap)
    if video is not None and info is not None:
        from mlpgraph.video import video_frame_indices

        video_frame_indices(prepared, info, video.first_frame)
    result = LiftResult(prepared, lifter.lift_prepared(prepared, fps, flip_test), lifter.frames, flip_test, fps)
    extra = [path for path in (gif, video.mp4 if video else None) if path is not None]
    with atomic_outputs(out, *extra) as staged:
        write_prediction(staged[0], result)
        if gif is not None:
            render_gif(result, staged[1])
        if video is not None:
            from mlpgraph.video import write_prediction_video

            write_prediction_video(result, video.video, staged[-1], video.view, video.first_frame, info)
    if seq.selection:
        log.info("predict: %s: kept %s", seq.source, seq.selection)
    log.info(
        "predict: %d frames (%d inserted), %d of %d joint values filled (--min-score %g)",
        len(prepared.frames),
        int((~prepared.present).sum()),
        int(prepared.filled.sum()),
        prepared.filled.size,
        min_score,
    )
    return result


def _probe_video(video: VideoOptions | None) -> VideoInfo | None:
    """The source video's frame count, rate and size, checked before any work (None without ``--video``)."""
    if video is None:
        return None
    from mlpgraph.video import VIEWS, probe_video

    if video.view not in VIEWS:
        raise UserInputError(f"--view must be one of {', '.join(VIEWS)}, got {video.view!r}")
    return probe_video(video.video)


def render_gif(result: LiftResult, path: str | os.PathLike[str], title: str = "") -> Path:
    """An animated GIF of the lifted sequence: the filled 2D input beside the 3D prediction.

    Draws at most :data:`GIF_MAX_FRAMES` frames, evenly spaced (every ``ceil(T / 200)``-th), and
    plays them at :data:`GIF_FPS`; the 3D view turns slowly.
    """
    from mlpgraph.animation import write_gif
    from mlpgraph.skeleton_drawing import render_frames

    prep = result.prepared
    stride = max(1, math.ceil(len(prep.frames) / GIF_MAX_FRAMES))
    images = render_frames(
        poses_2d_px=prep.keypoints[::stride],
        pred_3d=result.poses_3d[::stride],
        gt_3d=None,
        layout=prep.layout,
        image_size=(round(prep.width), round(prep.height)),
        title=title or Path(prep.source).name,
        view="rotate",
        size_px=(960, 480),
    )
    return write_gif(images, path, GIF_FPS)
