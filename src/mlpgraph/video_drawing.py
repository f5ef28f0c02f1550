"""Output frames of ``mlpgraph predict --video``: the source frame with its 2D skeleton, beside the 3D pose.

Layout of a frame (:func:`output_size`): the source frame at its own size (W x H) on the left and a
square H x H 3D panel (:class:`~mlpgraph.skeleton_drawing.Pose3DPanel`) on the right; where W + H
or H is odd, one black column or row is added on the right or at the bottom (H.264 in yuv420p needs
even sizes). The 2D skeleton is drawn with Pillow straight onto the frame's pixels: the layout's
bones in the colours of their body side, joints as white dots, hollow where the joint was filled
in time rather than detected. Only the 3D panel goes through matplotlib, on one figure built once.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageColor, ImageDraw

from mlpgraph.layouts import SkeletonLayout
from mlpgraph.skeleton_drawing import (
    CENTRE_COLOUR,
    LEFT_COLOUR,
    RIGHT_COLOUR,
    Pose3DPanel,
    bone_sides,
    pose_plot_limits,
)

# The 3D panel is rendered at most this many pixels square, then scaled up: matplotlib's 3D drawing
# time grows with the pixel count, and a panel beside a 4K frame needs no more detail than at 1080p.
MAX_PANEL_RENDER_PX = 1080
JOINT_OUTLINE = (20, 20, 20)
JOINT_FILL = (255, 255, 255)
_SIDE_RGB = {
    side: ImageColor.getrgb(c)[:3]
    for side, c in (("left", LEFT_COLOUR), ("right", RIGHT_COLOUR), ("centre", CENTRE_COLOUR))
}


def _even(value: int) -> int:
    """``value`` rounded up to an even number."""
    return int(value) + int(value) % 2


def output_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) of the output frames for a ``width`` x ``height`` source: (W + H, H), each rounded up to even."""
    return _even(width + height), _even(height)


def bone_colours(layout: SkeletonLayout) -> list[tuple[int, int, int]]:
    """The RGB colour of each of ``layout.bones``: its body side's (left, right, centre)."""
    return [_SIDE_RGB[side] for side in bone_sides(layout)]


def skeleton_line_width(width: int, height: int) -> int:
    """Bone width in pixels for a ``width`` x ``height`` frame: about 1/200 of its shorter side, at least 2."""
    return max(2, round(min(width, height) / 200))


def draw_skeleton_2d(
    image: Image.Image,
    keypoints_px: np.ndarray,
    layout: SkeletonLayout,
    filled: np.ndarray | None = None,
    line_width: int | None = None,
) -> None:
    """Draw the (J, 2) pixel keypoints' bones and joints onto the RGB ``image``, in place.

    ``line_width`` defaults to :func:`skeleton_line_width` of the image; joints are dots a little
    wider than the bones, hollow where ``filled`` (J,) marks a joint filled in time.
    """
    points = np.asarray(keypoints_px, dtype=np.float64)
    width = skeleton_line_width(*image.size) if line_width is None else int(line_width)
    radius = width * 0.8 + 1.0
    draw = ImageDraw.Draw(image)
    for (child, parent), colour in zip(layout.bones, bone_colours(layout), strict=True):
        draw.line([tuple(points[child]), tuple(points[parent])], fill=colour, width=width)
    hollow = np.zeros(len(points), dtype=bool) if filled is None else np.asarray(filled, dtype=bool)
    for (x, y), is_hollow in zip(points, hollow, strict=True):
        box = (x - radius, y - radius, x + radius, y + radius)
        draw.ellipse(box, fill=None if is_hollow else JOINT_FILL, outline=JOINT_OUTLINE, width=max(1, width // 2))


def _skeleton_box(keypoints_px: np.ndarray, width: int, height: int, pad: float) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) integer box of the keypoints grown by ``pad`` pixels, clipped to the frame (may be empty)."""
    lo = np.floor(keypoints_px.min(axis=0) - pad).astype(int)
    hi = np.ceil(keypoints_px.max(axis=0) + pad).astype(int) + 1
    x0, x1 = np.clip([lo[0], hi[0]], 0, width)
    y0, y1 = np.clip([lo[1], hi[1]], 0, height)
    return int(x0), int(y0), int(x1), int(y1)


class FrameComposer:
    """Builds output frames for one video: a canvas of :func:`output_size` reused frame after frame.

    ``poses_3d`` (T, J, 3) are all the clip's lifted poses: they fix the 3D panel's cube, so the
    scale does not change between frames.
    """

    def __init__(self, layout: SkeletonLayout, poses_3d: np.ndarray, width: int, height: int) -> None:
        self.layout = layout
        self.width, self.height = int(width), int(height)
        out_w, out_h = output_size(self.width, self.height)
        self.canvas = np.zeros((out_h, out_w, 3), dtype=np.uint8)
        self.line_width = skeleton_line_width(self.width, self.height)
        render_px = min(self.height, MAX_PANEL_RENDER_PX)
        self.panel = Pose3DPanel(layout, pose_plot_limits(poses_3d), render_px)

    def compose(
        self,
        source: bytes | np.ndarray,
        keypoints_px: np.ndarray | None,
        filled: np.ndarray | None,
        pose_3d: np.ndarray | None,
        azimuth: float,
        label: str,
    ) -> np.ndarray:
        """The (out_h, out_w, 3) uint8 output frame (the reused canvas: valid until the next call).

        ``source`` is the frame's raw RGB (H x W x 3 bytes, as ffmpeg pipes it); ``keypoints_px``
        (J, 2) and ``pose_3d`` (J, 3) are None for a frame without a lifted pose.
        """
        h, w = self.height, self.width
        frame = np.frombuffer(source, dtype=np.uint8) if isinstance(source, bytes) else np.asarray(source, np.uint8)
        if frame.size != h * w * 3:
            raise ValueError(f"FrameComposer: a source frame of {frame.size} bytes, expected {w} x {h} x 3")
        self.canvas[:h, :w] = frame.reshape(h, w, 3)
        if keypoints_px is not None:  # drawn on the skeleton's own box only: whole-frame copies through Pillow are slow
            points = np.asarray(keypoints_px, dtype=np.float64)
            x0, y0, x1, y1 = _skeleton_box(points, w, h, pad=2.0 * self.line_width + 2.0)
            if x1 > x0 and y1 > y0:
                patch = Image.fromarray(np.ascontiguousarray(self.canvas[y0:y1, x0:x1]))
                draw_skeleton_2d(patch, points - (x0, y0), self.layout, filled, self.line_width)
                self.canvas[y0:y1, x0:x1] = np.asarray(patch)
        panel = self.panel.draw(pose_3d, azimuth, label)
        if self.panel.side_px != h:
            panel = np.asarray(Image.fromarray(panel).resize((h, h), Image.Resampling.BILINEAR))
        self.canvas[:h, w : w + h] = panel
        return self.canvas
