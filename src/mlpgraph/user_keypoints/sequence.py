"""2D keypoints as a reader returns them (:class:`Keypoints2D`), and the image size they are measured in."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlpgraph.cameras import MAX_IMAGE_SIDE
from mlpgraph.errors import UserInputError

# Image ids, frame numbers and track ids must be exact in float64 (they are compared and
# differenced as numbers): at most 2**53 in magnitude.
MAX_FRAME_NUMBER = 2**53


@dataclass(frozen=True)
class Keypoints2D:
    """2D keypoints as read from a file, one row per frame present in the file, in frame order.

    ``keypoints`` (T, J, 2) float64 pixels of the joints ``joint_names`` (a detector skeleton's,
    :mod:`.joint_maps`, or a model layout's); ``scores`` (T, J) or None (every joint confident).
    ``frame_ids`` (T,) are the image ids (int64, or str); ``frame_numbers`` (T,) int64 increasing
    numbers of those frames when gaps between them can be told (numeric ids, or string ids that
    differ only in one number), else None.
    ``id_template`` (prefix, digits, suffix) names inserted frames for such string ids.
    ``selection`` says which person was kept (multi-person files), for the log. ``fps`` is the
    frame rate when the file records one (none of the supported detector formats does), else None.
    """

    keypoints: np.ndarray
    scores: np.ndarray | None
    frame_ids: np.ndarray
    frame_numbers: np.ndarray | None
    width: float
    height: float
    joint_names: tuple[str, ...]
    source: str
    id_template: tuple[str, int, str] | None = None
    selection: str = ""
    fps: float | None = None

    @property
    def num_frames(self) -> int:
        return int(self.keypoints.shape[0])


def positive_size(value: Any, what: str, where: str) -> float:
    """``value`` as a finite positive float (an image width or height); a :class:`UserInputError` otherwise."""
    try:
        size = float(value)
    except (TypeError, ValueError, OverflowError):
        raise UserInputError(f"{where}: {what} must be a number, got {value!r:.60}") from None
    if not math.isfinite(size) or size <= 0:
        raise UserInputError(f"{where}: {what} must be a positive number, got {value!r}")
    if size > MAX_IMAGE_SIDE:
        raise UserInputError(f"{where}: {what} must be at most {MAX_IMAGE_SIDE} pixels, got {value!r}")
    return size


def check_frame_number(value: float, where: str, what: str) -> None:
    """Refuse an image id, frame number or track id beyond +-:data:`MAX_FRAME_NUMBER`."""
    if abs(value) > MAX_FRAME_NUMBER:
        raise UserInputError(
            f"{where}: {what} is out of range (at most {MAX_FRAME_NUMBER} in magnitude; number the frames from 0 or 1)"
        )


def resolve_image_size(
    file_size: tuple[float, float] | None, width: float | None, height: float | None, where: str, hint: str
) -> tuple[float, float]:
    """The image size: the file's when it gives one (the options must then agree), else the options'.

    ``hint`` says why the file gives none, for the error when the options give none either.
    """
    given = None
    if width is not None or height is not None:
        if width is None or height is None:
            raise UserInputError(f"{where}: give both --width and --height")
        given = (positive_size(width, "--width", where), positive_size(height, "--height", where))
    if file_size is not None:
        if given is not None and not np.allclose(given, file_size):
            raise UserInputError(
                f"{where}: the file gives image size {file_size[0]:g} x {file_size[1]:g}, "
                f"--width/--height say {given[0]:g} x {given[1]:g}"
            )
        return file_size
    if given is None:
        raise UserInputError(f"{where}: {hint}; pass --width and --height")
    return given
