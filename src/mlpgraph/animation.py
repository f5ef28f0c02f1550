"""Rendered frames to animation files: a looping GIF with Pillow, an H.264 MP4 with ffmpeg.

GIFs get one palette shared by all frames. GIF frame durations are whole centiseconds and most
viewers slow down frames shorter than 20 ms, so GIFs above 50 fps are not useful. MP4s are piped
to an ``ffmpeg`` found on ``PATH`` or bundled with the optional ``imageio-ffmpeg`` wheel
(``pip install mlpgraph[video]``).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from mlpgraph.outputs import atomic_path

log = logging.getLogger(__name__)

GIF_COLOURS = 128


def write_gif(frames: Sequence[Image.Image], path: str | Path, fps: float) -> Path:
    """Write ``frames`` as a looping GIF at ``fps`` (atomically), with one palette shared by all frames.

    Frame durations are rounded to whole centiseconds (GIF's unit); Pillow merges identical
    consecutive frames into one longer frame.
    """
    if not frames:
        raise ValueError("write_gif: no frames")
    if fps <= 0:
        raise ValueError(f"write_gif: fps must be positive, got {fps}")
    duration_ms = max(10, round(100.0 / fps) * 10)
    palette = frames[0].convert("RGB").quantize(colors=GIF_COLOURS, method=Image.Quantize.MEDIANCUT)
    indexed = [f.convert("RGB").quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    path = Path(path)
    with atomic_path(path) as tmp:
        indexed[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=indexed[1:],
            duration=duration_ms,
            loop=0,
            optimize=False,
        )
    return path


def find_ffmpeg() -> str | None:
    """An ``ffmpeg`` executable: the one on ``PATH``, else the ``imageio-ffmpeg`` wheel's bundled binary."""
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (RuntimeError, OSError):
        return None


class _FfmpegFailedError(Exception):
    """ffmpeg exited with an error (the message is its last line of stderr)."""


def write_mp4(frames: Sequence[Image.Image], path: str | Path, fps: float) -> bool:
    """Write ``frames`` as an H.264 MP4 at ``fps`` (atomically) with ffmpeg; False when it cannot.

    Returns False, with the reason logged as a warning, when no ffmpeg is found (none on ``PATH``
    and ``imageio-ffmpeg`` not installed) or when ffmpeg fails with both ``libx264`` and ``mpeg4``.
    Odd image sizes are cropped by one pixel (yuv420p needs even ones).
    """
    if not frames:
        raise ValueError("write_mp4: no frames")
    exe = find_ffmpeg()
    if exe is None:
        log.warning(
            "no MP4 written: no ffmpeg on PATH and imageio-ffmpeg is not installed (pip install imageio-ffmpeg)"
        )
        return False
    path = Path(path)
    failure = ""
    for codec in ("libx264", "mpeg4"):
        try:
            with atomic_path(path) as tmp:
                _encode_mp4(exe, codec, frames, tmp, fps)
            return True
        except _FfmpegFailedError as exc:
            failure = str(exc)
            log.debug("ffmpeg with %s failed: %s", codec, failure)
    log.warning("no MP4 written: %s failed (%s)", exe, failure)
    return False


def _encode_mp4(exe: str, codec: str, frames: Sequence[Image.Image], out: Path, fps: float) -> None:
    """Pipe ``frames`` (cropped to even sizes) as raw RGB to ffmpeg, encoding ``out`` with ``codec``."""
    width, height = frames[0].size
    width, height = width - width % 2, height - height % 2
    with tempfile.TemporaryFile() as errors:
        command = [
            exe, "-y", "-loglevel", "error",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", "-",
            "-an", "-c:v", codec, "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4", str(out),
        ]  # fmt: skip
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=errors)
        assert proc.stdin is not None
        try:
            for frame in frames:
                proc.stdin.write(np.asarray(frame.convert("RGB"))[:height, :width].tobytes())
        except BrokenPipeError:
            pass  # ffmpeg stopped early; its exit status and stderr say why
        finally:
            proc.stdin.close()
        code = proc.wait()
        if code != 0 or not out.is_file():
            errors.seek(0)
            last = errors.read().decode(errors="replace").strip().splitlines()[-1:]
            raise _FfmpegFailedError(last[0] if last else f"exit status {code}")
