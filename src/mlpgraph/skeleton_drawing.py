"""Skeleton frames: the 2D input beside the predicted and ground-truth 3D, drawn with matplotlib.

Layout of a frame: on the left the 2D input in pixels (axes of the image's size, y down); on the
right one 3D panel with the prediction (left/right bones in two colours) over the ground truth
(thick grey), root-relative metres, equal aspect, camera space drawn with its y axis flipped so
that the person stands up (camera space has y pointing down). The 3D view starts 30 degrees
round from the camera's viewpoint (azimuth -60; at -90 image right would be plot right and
depth edge-on), 15 degrees above, and either stays there (``view="fixed"``) or turns by
:data:`ROTATE_DEGREES_PER_FRAME` per rendered frame (``view="rotate"``).

Drawing uses matplotlib's Agg canvas through :class:`matplotlib.figure.Figure` (never pyplot):
one figure is built once and its artists are updated per frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from mlpgraph.layouts import SkeletonLayout

DEFAULT_SIZE_PX = (960, 480)
ROTATE_DEGREES_PER_FRAME = 2.0
VIEWS = ("rotate", "fixed")
START_AZIMUTH = -60.0  # 30 degrees round from the camera's viewpoint (-90: image right is plot right)
ELEVATION = 15.0
DPI = 100

LEFT_COLOUR = "#1f77b4"  # blue
RIGHT_COLOUR = "#d62728"  # red
CENTRE_COLOUR = "#333333"
GT_COLOUR = "#9a9a9a"
_SIDE_COLOURS = {"left": LEFT_COLOUR, "right": RIGHT_COLOUR, "centre": CENTRE_COLOUR}


def bone_sides(layout: SkeletonLayout) -> list[str]:
    """``"left"``, ``"right"`` or ``"centre"`` for each of ``layout.bones``, by the child joint's name."""
    sides = []
    for child, _ in layout.bones:
        name = layout.joint_names[int(child)]
        sides.append("left" if name.startswith("left_") else "right" if name.startswith("right_") else "centre")
    return sides


def _plot_coords(poses: np.ndarray) -> np.ndarray:
    """Camera-space (..., 3) (x right, y down, z forward) to plot axes (x, depth z, up = -y)."""
    return np.stack([poses[..., 0], poses[..., 2], -poses[..., 1]], axis=-1)


def _cube_limits(points: np.ndarray, margin: float = 0.1) -> np.ndarray:
    """(3, 2) limits of one cube holding every point: equal ranges on all axes, so equal aspect."""
    flat = points.reshape(-1, 3)
    lo, hi = flat.min(axis=0), flat.max(axis=0)
    centre = (lo + hi) / 2
    half = max(float((hi - lo).max()) / 2 + margin, 0.5)
    return np.stack([centre - half, centre + half], axis=1)


def render_frames(
    poses_2d_px: np.ndarray,
    pred_3d: np.ndarray,
    gt_3d: np.ndarray | None,
    layout: SkeletonLayout,
    image_size: tuple[int, int],
    title: str,
    view: str = "rotate",
    size_px: tuple[int, int] = DEFAULT_SIZE_PX,
    frame_labels: Sequence[int] | None = None,
    degrees_per_frame: float = ROTATE_DEGREES_PER_FRAME,
) -> list[Image.Image]:
    """One RGB image per frame: the 2D input (pixels) on the left, prediction and ground truth in 3D on the right.

    ``poses_2d_px`` (T, J, 2) pixels; ``pred_3d`` and ``gt_3d`` (T, J, 3) root-relative camera-space
    metres (``gt_3d`` may be None); ``image_size`` (width, height) of the camera image;
    ``size_px`` (width, height) of the output images. ``view`` ``"fixed"`` keeps the camera's
    viewpoint, ``"rotate"`` turns the azimuth by ``degrees_per_frame`` per frame.
    ``frame_labels`` (T,) are the frame numbers shown in each image (default 0..T-1). The 3D
    limits are one cube over the whole clip, so the scale does not change between frames.
    """
    poses_2d_px = np.asarray(poses_2d_px, dtype=np.float64)
    pred_3d = np.asarray(pred_3d, dtype=np.float64)
    gt = None if gt_3d is None else np.asarray(gt_3d, dtype=np.float64)
    labels = _check_frames(poses_2d_px, pred_3d, gt, layout, view, frame_labels)
    if not labels:
        return []
    # 3D panel: plot x = camera x, plot y = depth, plot z = up (-camera y); one cube for the clip.
    pred_plot = _plot_coords(pred_3d)
    gt_plot = None if gt is None else _plot_coords(gt)
    limits = _cube_limits(pred_plot if gt_plot is None else np.concatenate([pred_plot, gt_plot]))
    figure = _SkeletonFigure(layout, image_size, title, size_px, limits, with_gt=gt_plot is not None)
    errors_mm = None if gt is None else np.linalg.norm(pred_3d - gt, axis=-1).mean(axis=-1) * 1000.0
    images = []
    for t, label in enumerate(labels):
        azimuth = START_AZIMUTH + (degrees_per_frame * t if view == "rotate" else 0.0)
        images.append(
            figure.draw(
                poses_2d_px[t],
                pred_plot[t],
                None if gt_plot is None else gt_plot[t],
                azimuth,
                f"frame {label}",
                None if errors_mm is None else f"MPJPE {errors_mm[t]:.0f} mm",
            )
        )
    return images


def _check_frames(
    poses_2d_px: np.ndarray,
    pred_3d: np.ndarray,
    gt: np.ndarray | None,
    layout: SkeletonLayout,
    view: str,
    frame_labels: Sequence[int] | None,
) -> list[int]:
    """The frame labels (default 0..T-1), after checking the shapes of the poses and the view."""
    num, joints = poses_2d_px.shape[:2]
    if poses_2d_px.shape != (num, layout.num_joints, 2) or pred_3d.shape != (num, joints, 3):
        raise ValueError(
            f"render_frames: 2D {poses_2d_px.shape} and 3D {pred_3d.shape} must be (T, {layout.num_joints}, 2 / 3)"
        )
    if gt is not None and gt.shape != pred_3d.shape:
        raise ValueError(f"render_frames: ground truth {gt.shape} differs from prediction {pred_3d.shape}")
    if view not in VIEWS:
        raise ValueError(f"render_frames: view must be one of {VIEWS}, got {view!r}")
    labels = list(range(num)) if frame_labels is None else [int(f) for f in frame_labels]
    if len(labels) != num:
        raise ValueError(f"render_frames: {len(labels)} frame labels for {num} frames")
    return labels


class _SkeletonFigure:
    """One figure on an Agg canvas, built once; :meth:`draw` moves its artists to a frame and renders it."""

    def __init__(
        self,
        layout: SkeletonLayout,
        image_size: tuple[int, int],
        title: str,
        size_px: tuple[int, int],
        limits: np.ndarray,
        with_gt: bool,
    ) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        width_px, height_px = (int(v) for v in size_px)
        fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
        self.canvas = FigureCanvasAgg(fig)
        fig.subplots_adjust(left=0.07, right=0.99, bottom=0.1, top=0.88, wspace=0.12)
        ax2d = fig.add_subplot(1, 2, 1)
        self.ax3d = fig.add_subplot(1, 2, 2, projection="3d")
        fig.suptitle(title, fontsize=10)
        self.frame_text = fig.text(0.01, 0.01, "", fontsize=8, ha="left", va="bottom")
        self.error_text = fig.text(0.99, 0.01, "", fontsize=8, ha="right", va="bottom")
        self.bones = layout.bones
        sides = bone_sides(layout)
        self.lines_2d, self.joints_2d = _build_2d_panel(ax2d, image_size, sides)
        self.lines_gt, self.lines_pred = _build_3d_panel(self.ax3d, limits, sides, with_gt)
        _add_legends(ax2d, self.ax3d, with_gt)

    def draw(
        self,
        pose_2d: np.ndarray,
        pred: np.ndarray,
        gt: np.ndarray | None,
        azimuth: float,
        frame_label: str,
        error_label: str | None,
    ) -> Image.Image:
        """The RGB image of one frame: (J, 2) pixels, (J, 3) prediction and ground truth in plot axes."""
        for line, (child, parent) in zip(self.lines_2d, self.bones, strict=True):
            line.set_data(pose_2d[[child, parent], 0], pose_2d[[child, parent], 1])
        self.joints_2d.set_data(pose_2d[:, 0], pose_2d[:, 1])
        _set_segments_3d(self.lines_pred, pred, self.bones)
        if gt is not None:
            _set_segments_3d(self.lines_gt, gt, self.bones)
        self.ax3d.view_init(elev=ELEVATION, azim=azimuth)
        self.frame_text.set_text(frame_label)
        if error_label is not None:
            self.error_text.set_text(error_label)
        self.canvas.draw()
        rgba = np.asarray(self.canvas.buffer_rgba())
        return Image.fromarray(rgba[..., :3].copy(), mode="RGB")


def _set_segments_3d(lines: Sequence[Any], pose: np.ndarray, bones: Sequence[tuple[int, int]]) -> None:
    """Move each bone's 3D line to its (child, parent) segment of ``pose`` (J, 3)."""
    for line, (child, parent) in zip(lines, bones, strict=True):
        seg = pose[[child, parent]]
        line.set_data_3d(seg[:, 0], seg[:, 1], seg[:, 2])


def _build_2d_panel(ax: Any, image_size: tuple[int, int], sides: list[str]) -> tuple[list[Any], Any]:
    """The 2D panel: the whole image, y down, equal aspect; returns its bone lines and joint markers."""
    img_w, img_h = (float(v) for v in image_size)
    ax.set_xlim(0, img_w)
    ax.set_ylim(img_h, 0)
    ax.set_aspect("equal")
    ax.set_title("2D input (pixels)", fontsize=9)
    ax.set_xlabel("x (px)", fontsize=8)
    ax.set_ylabel("y (px)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, linewidth=0.3, alpha=0.5)
    lines = [ax.plot([], [], color=_SIDE_COLOURS[s], linewidth=2, solid_capstyle="round")[0] for s in sides]
    joints = ax.plot([], [], linestyle="none", marker="o", markersize=2.5, color="black")[0]
    return lines, joints


def _build_3d_panel(ax: Any, limits: np.ndarray, sides: list[str], with_gt: bool) -> tuple[list[Any], list[Any]]:
    """The 3D panel in the cube ``limits``; returns its ground-truth bone lines (none without) and predicted ones."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlim(*limits[0])
    ax.set_ylim(*limits[1])
    ax.set_zlim(*limits[2])
    ax.set_box_aspect((1, 1, 1), zoom=1.15)
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
        axis.set_major_locator(MaxNLocator(5))
    ax.set_title("3D, root-relative (m)", fontsize=9)
    ax.set_xlabel("x (m)", fontsize=7, labelpad=-6)
    ax.set_ylabel("depth z (m)", fontsize=7, labelpad=-6)
    ax.set_zlabel("up −y (m)", fontsize=7, labelpad=-6)
    ax.tick_params(labelsize=6, pad=-2)
    lines_gt = []
    if with_gt:
        lines_gt = [
            ax.plot([], [], [], color=GT_COLOUR, linewidth=4, alpha=0.8, solid_capstyle="round")[0] for _ in sides
        ]
    lines_pred = [ax.plot([], [], [], color=_SIDE_COLOURS[s], linewidth=2)[0] for s in sides]
    return lines_gt, lines_pred


def _add_legends(ax2d: Any, ax3d: Any, with_gt: bool) -> None:
    """The 3D panel's legend (prediction left / right, ground truth) and the 2D panel's (left / right)."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=LEFT_COLOUR, linewidth=2, label="prediction, left"),
        Line2D([], [], color=RIGHT_COLOUR, linewidth=2, label="prediction, right"),
    ]
    if with_gt:
        handles.append(Line2D([], [], color=GT_COLOUR, linewidth=4, alpha=0.8, label="ground truth"))
    ax3d.legend(handles=handles, loc="upper left", fontsize=7, frameon=False, bbox_to_anchor=(-0.14, 1.04))
    ax2d.legend(
        handles=[
            Line2D([], [], color=LEFT_COLOUR, linewidth=2, label="left"),
            Line2D([], [], color=RIGHT_COLOUR, linewidth=2, label="right"),
        ],
        loc="upper right",
        fontsize=7,
        frameon=True,
        framealpha=0.7,
    )


MIN_BONE_PX = 2.0  # Pose3DPanel draws bones at least this many pixels wide
PANEL_INCHES = 4.8  # the 3D panel's side in inches: at any pixel size its text and lines keep their proportions


def pose_plot_limits(poses_3d: np.ndarray) -> np.ndarray:
    """(3, 2) plot-axes limits of one cube holding every joint of (T, J, 3) camera-space poses (equal aspect)."""
    return _cube_limits(_plot_coords(np.asarray(poses_3d, dtype=np.float64)))


class Pose3DPanel:
    """A square figure holding the 3D panel alone, built once; :meth:`draw` renders one pose (video frames).

    Same panel as :func:`render_frames`' (bones in left/right colours, root-relative metres, camera
    y flipped so the person stands up) in the fixed cube ``limits`` (:func:`pose_plot_limits`),
    ``side_px`` pixels square.
    """

    def __init__(self, layout: SkeletonLayout, limits: np.ndarray, side_px: int) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D

        self.side_px = int(side_px)
        dpi = self.side_px / PANEL_INCHES
        inches = (self.side_px + 0.25) / dpi  # the canvas truncates to whole pixels: aim a quarter above
        fig = Figure(figsize=(inches, inches), dpi=dpi)
        self.canvas = FigureCanvasAgg(fig)
        fig.subplots_adjust(left=0.03, right=0.97, bottom=0.07, top=0.93)
        self.ax3d = fig.add_subplot(1, 1, 1, projection="3d")
        _, self.lines = _build_3d_panel(self.ax3d, np.asarray(limits, dtype=np.float64), bone_sides(layout), False)
        for line in self.lines:  # at least MIN_BONE_PX wide, or a small panel's bones fade into its grid
            line.set_linewidth(max(line.get_linewidth(), MIN_BONE_PX * 72.0 / dpi))
        self.bones = layout.bones
        handles = [
            Line2D([], [], color=LEFT_COLOUR, linewidth=2, label="left"),
            Line2D([], [], color=RIGHT_COLOUR, linewidth=2, label="right"),
        ]
        self.ax3d.legend(handles=handles, loc="upper left", fontsize=7, frameon=False, bbox_to_anchor=(-0.02, 1.04))
        self.label = fig.text(0.02, 0.015, "", fontsize=8, ha="left", va="bottom")
        self._azimuth: float | None = None
        self._background: Any = None

    def draw(self, pose_3d: np.ndarray | None, azimuth: float, label: str) -> np.ndarray:
        """(side, side, 3) uint8 RGB of the (J, 3) camera-space pose (None: empty axes) seen from ``azimuth``.

        The axes are drawn once per azimuth and kept; the bones and the label are drawn over a copy
        of them (blitting), so a still view costs a few milliseconds a frame. The array is a view of
        the canvas: valid until the next call.
        """
        if azimuth != self._azimuth:
            self.ax3d.view_init(elev=ELEVATION, azim=azimuth)
            for line in self.lines:
                line.set_visible(False)
            self.label.set_text("")
            self.canvas.draw()
            self._background = self.canvas.copy_from_bbox(self.canvas.figure.bbox)
            self._azimuth = azimuth
        else:
            self.canvas.restore_region(self._background)
        if pose_3d is not None:
            _set_segments_3d(self.lines, _plot_coords(np.asarray(pose_3d, dtype=np.float64)), self.bones)
            for line in self.lines:
                line.set_visible(True)
                self.ax3d.draw_artist(line)
        self.label.set_text(label)
        self.canvas.figure.draw_artist(self.label)
        rgb = np.asarray(self.canvas.buffer_rgba())[..., :3]
        if rgb.shape[:2] != (self.side_px, self.side_px):
            raise RuntimeError(f"Pose3DPanel: canvas is {rgb.shape[1]}x{rgb.shape[0]}, not {self.side_px} square")
        return rgb
