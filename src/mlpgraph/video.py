"""The lifted poses drawn over the user's video (``mlpgraph predict --video IN --mp4 OUT``).

:func:`write_prediction_video` reads the source video frame by frame through the ffmpeg of
``imageio-ffmpeg`` (``pip install mlpgraph[video]``), draws each frame
(:class:`~mlpgraph.video_drawing.FrameComposer`: the source frame with its 2D skeleton beside the
3D pose) and pipes it straight back into ffmpeg: H.264 (libx264, yuv420p) at the source frame rate,
one output frame per source frame, never the whole video in memory. Keypoint frame numbers are
0-based indices into the video's decoded frames (``first_frame`` shifts them); source frames
without a lifted pose show the frame alone. Whether the keypoint file fits the video (frame
numbers, image size) is checked before anything is written, and the MP4 is written atomically.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from mlpgraph.errors import UserInputError
from mlpgraph.outputs import atomic_path, check_outputs
from mlpgraph.progress import progress
from mlpgraph.skeleton_drawing import START_AZIMUTH, VIEWS
from mlpgraph.video_drawing import FrameComposer, output_size

if TYPE_CHECKING:
    from mlpgraph.lifting import LiftResult
    from mlpgraph.user_keypoints.filling import PreparedKeypoints

log = logging.getLogger(__name__)

# view="rotate" turns the 3D panel by this much per second of video: a full turn in 12 s.
ROTATE_DEGREES_PER_SECOND = 30.0
# libx264's constant rate factor (0 lossless, 51 worst; 18 is close to visually lossless).
CRF = 18
# Decode every frame as it is stored (no frames dropped or repeated to reach a constant rate), the
# first video stream only: the same frames that probe_video counts.
_READ_PARAMS = ["-map", "0:v:0", "-fps_mode", "passthrough"]
_LAST_NUMBER = re.compile(r"(\d+)\D*$")


@dataclass(frozen=True)
class VideoInfo:
    """A video as ffmpeg decodes it: its frame count, frame rate and frame size in pixels."""

    path: Path
    num_frames: int
    fps: float
    width: int
    height: int


def _imageio_ffmpeg() -> ModuleType:
    """The ``imageio_ffmpeg`` module; a one-line :class:`UserInputError` when it is not installed."""
    try:
        import imageio_ffmpeg  # type: ignore[import-not-found]
    except ImportError:
        raise UserInputError(
            "--video needs imageio-ffmpeg, which is not installed (pip install 'mlpgraph[video]')"
        ) from None
    return imageio_ffmpeg


def _ffmpeg_reason(exc: BaseException) -> str:
    """ffmpeg's own last line from an ``imageio_ffmpeg`` error, without the ``[demuxer @ 0x...]`` prefix."""
    text = str(exc)
    if "does not contain any stream" in text or "matches no streams" in text or "'0:v:0'" in text:
        return "it has no video stream"
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("===")]
    last = re.sub(r"^\[[^\]]*\]\s*", "", lines[-1]) if lines else type(exc).__name__
    return last.split(": ", 1)[-1] if last.startswith("Error opening input") else last


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Frame count, frame rate and size of the video at ``path``, as :func:`write_prediction_video` reads it.

    The frames are counted by decoding the video (containers' frame counts are often wrong).
    A missing file, a file ffmpeg cannot read, one without a video stream, without frames or
    without a frame rate is a one-line :class:`UserInputError`.
    """
    iio = _imageio_ffmpeg()
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: video file not found")
    reader = iio.read_frames(str(path), output_params=_READ_PARAMS)
    try:
        meta = next(reader)
        num_frames, _ = iio.count_frames_and_secs(str(path))
    except (OSError, RuntimeError, ValueError, StopIteration) as exc:
        raise UserInputError(f"{path}: not a readable video ({_ffmpeg_reason(exc)})") from None
    finally:
        reader.close()
    width, height = (int(v) for v in meta["size"])
    fps = float(meta.get("fps") or 0.0)
    if not num_frames:
        raise UserInputError(f"{path}: the video has no frames")
    if not np.isfinite(fps) or fps <= 0:
        raise UserInputError(f"{path}: ffmpeg cannot tell the video's frame rate")
    return VideoInfo(path, int(num_frames), fps, width, height)


def _frame_numbers(prepared: PreparedKeypoints) -> np.ndarray:
    """(T,) int64 frame numbers of the lifted frames: numeric image ids, or the last number in string ids."""
    frames = np.asarray(prepared.frames)
    if np.issubdtype(frames.dtype, np.integer):
        return frames.astype(np.int64)
    found = [_LAST_NUMBER.search(str(f)) for f in frames]
    numbers = np.array([int(m.group(1)) if m else -1 for m in found], dtype=np.int64)
    if not all(found) or np.any(np.diff(numbers) <= 0):
        raise UserInputError(
            f"{prepared.source}: image ids such as {str(frames[0])!r} do not number the video's frames "
            "(use integer image ids, or ids that differ only in a frame number)"
        )
    return numbers


def video_frame_indices(prepared: PreparedKeypoints, info: VideoInfo, first_frame: int = 0) -> np.ndarray:
    """(T,) 0-based index into ``info``'s frames of each lifted frame, after checking that the file fits the video.

    Frame number ``first_frame`` of the keypoint file is the video's first frame. Errors (one
    line, naming both files): an image size other than the video's, or frame numbers outside the
    video.
    """
    if abs(prepared.width - info.width) > 0.5 or abs(prepared.height - info.height) > 0.5:
        raise UserInputError(
            f"{prepared.source}: keypoints are in a {prepared.width:g} x {prepared.height:g} image, "
            f"but the video {info.path} is {info.width} x {info.height}"
        )
    index = _frame_numbers(prepared) - int(first_frame)
    outside = (index < 0) | (index >= info.num_frames)
    if outside.any():
        bad = _frame_numbers(prepared)[outside]
        raise UserInputError(
            f"{prepared.source}: {outside.sum()} keypoint frames (numbers {bad.min()} to {bad.max()}) are outside "
            f"the video {info.path}, whose {info.num_frames} frames are numbered {first_frame} to "
            f"{first_frame + info.num_frames - 1}"
        )
    return index


def write_prediction_video(
    result: LiftResult,
    video_in: str | os.PathLike[str],
    mp4_out: str | os.PathLike[str],
    view: str = "rotate",
    first_frame: int = 0,
    info: VideoInfo | None = None,
) -> Path:
    """Write ``mp4_out``: every frame of ``video_in`` with its 2D skeleton, beside the 3D pose lifted for it.

    Output frames are :func:`~mlpgraph.video_drawing.output_size`; ``view`` ``"rotate"`` turns the
    3D panel by :data:`ROTATE_DEGREES_PER_SECOND`, ``"fixed"`` keeps it still. ``info`` (from
    :func:`probe_video`) saves probing the video again. Every check (the video, the keypoints'
    fit, the output path) runs before anything is written; the MP4 appears only when complete.
    """
    if view not in VIEWS:
        raise UserInputError(f"--view must be one of {', '.join(VIEWS)}, got {view!r}")
    prep = result.prepared
    if result.poses_3d.shape != (*prep.keypoints.shape[:2], 3):
        raise ValueError(f"write_prediction_video: poses {result.poses_3d.shape} do not match {prep.keypoints.shape}")
    info = probe_video(video_in) if info is None else info
    index = video_frame_indices(prep, info, first_frame)
    check_outputs([mp4_out], [video_in])
    lookup = np.full(info.num_frames, -1, dtype=np.int64)
    lookup[index] = np.arange(len(index))
    mp4_out = Path(mp4_out)
    out_w, out_h = output_size(info.width, info.height)
    log.info(
        "video: %s: %d frames of %d x %d at %g fps, %d with a lifted pose; writing %s (%d x %d)",
        info.path, info.num_frames, info.width, info.height, info.fps, len(index), mp4_out, out_w, out_h,
    )  # fmt: skip
    start = time.perf_counter()
    with atomic_path(mp4_out) as tmp:
        written = _encode(result, info, lookup, view, first_frame, tmp)
    if written != info.num_frames:
        log.warning("video: %s decoded %d frames, %d when probed", info.path, written, info.num_frames)
    log.info("video: wrote %s (%d frames) in %.1f s", mp4_out, written, time.perf_counter() - start)
    return mp4_out


def _encode(result: LiftResult, info: VideoInfo, lookup: np.ndarray, view: str, first_frame: int, out: Path) -> int:
    """Stream ``info``'s frames through a :class:`FrameComposer` into an H.264 MP4 at ``out``; the frames written."""
    iio = _imageio_ffmpeg()
    prep = result.prepared
    composer = FrameComposer(prep.layout, result.poses_3d, info.width, info.height)
    reader = iio.read_frames(str(info.path), output_params=_READ_PARAMS)
    writer = iio.write_frames(
        str(out), output_size(info.width, info.height), fps=info.fps, codec="libx264", quality=None,
        macro_block_size=2, ffmpeg_log_level="error",
        output_params=["-crf", str(CRF), "-preset", "veryfast", "-movflags", "+faststart", "-f", "mp4"],
    )  # fmt: skip
    degrees_per_frame = ROTATE_DEGREES_PER_SECOND / info.fps if view == "rotate" else 0.0
    written = 0
    try:
        next(reader)
        writer.send(None)
        frames = progress(reader, total=info.num_frames, desc="video", unit="frame")
        for i, raw in enumerate(frames):
            t = int(lookup[i]) if i < len(lookup) else -1
            posed = t >= 0
            frame = composer.compose(
                raw,
                prep.keypoints[t] if posed else None,
                prep.filled[t] if posed else None,
                result.poses_3d[t] if posed else None,
                START_AZIMUTH + degrees_per_frame * i,
                f"frame {first_frame + i}" + ("" if posed else " (no pose)"),
            )
            writer.send(frame)
            written += 1
    finally:
        reader.close()
        writer.close()
    if written == 0 or not out.is_file() or out.stat().st_size == 0:
        raise RuntimeError(f"ffmpeg wrote no video for {info.path} ({written} frames sent)")
    return written
