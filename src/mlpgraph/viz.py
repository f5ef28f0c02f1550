"""Skeleton demos: the 2D input beside the predicted and ground-truth 3D, as an animated GIF or MP4.

:func:`render_sequence` is what ``mlpgraph render`` runs: it loads a checkpoint and one sequence
(subject, action, camera) of a processed HDF5 file, predicts the frames with
:func:`mlpgraph.evaluation.predict` (temporal models get their edge-padded windows from the whole
sequence, as in evaluation; a refinement module in the checkpoint is applied with the
ground-truth root depth, as the evaluation's oracle setting does), and writes the animation.

Layout of a frame: on the left the 2D input in pixels (axes of the image's size, y down); on the
right one 3D panel with the prediction (left/right bones in two colours) over the ground truth
(thick grey), root-relative metres, equal aspect, camera space drawn with its y axis flipped so
that the person stands up (camera space has y pointing down). The 3D view starts 30 degrees
round from the camera's viewpoint (azimuth -60; at -90 image right would be plot right and
depth edge-on), 15 degrees above, and either stays there (``view="fixed"``) or turns by
:data:`ROTATE_DEGREES_PER_FRAME` per rendered frame (``view="rotate"``).

Frame rate: the data is 50 fps; by default every 2nd frame is rendered and played at 25 fps,
i.e. in real time. A chosen ``fps`` keeps real time too: every ``round(data_fps / fps)``-th frame
is rendered and played at ``fps``. GIF frame durations are whole centiseconds and most viewers
slow down frames shorter than 20 ms, so GIFs above 50 fps are not useful.

Drawing uses matplotlib's Agg canvas through :class:`matplotlib.figure.Figure` (never pyplot):
one figure is built once and its artists are updated per frame. GIFs are written with Pillow
(one shared palette); MP4s are piped to an ``ffmpeg`` found on ``PATH`` or bundled with the
optional ``imageio-ffmpeg`` wheel (``pip install mlpgraph[video]``).
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mlpgraph.errors import UserInputError
from mlpgraph.io import atomic_path
from mlpgraph.layouts import SkeletonLayout

log = logging.getLogger(__name__)

DEFAULT_SIZE_PX = (960, 480)
DEFAULT_NUM_FRAMES = 100
DEFAULT_STRIDE = 2
ROTATE_DEGREES_PER_FRAME = 2.0
VIEWS = ("rotate", "fixed")
START_AZIMUTH = -60.0  # 30 degrees round from the camera's viewpoint (-90: image right is plot right)
ELEVATION = 15.0
DPI = 100
GIF_COLOURS = 128

LEFT_COLOUR = "#1f77b4"  # blue
RIGHT_COLOUR = "#d62728"  # red
CENTRE_COLOUR = "#333333"
GT_COLOUR = "#9a9a9a"


def bone_sides(layout: SkeletonLayout) -> list[str]:
    """``"left"``, ``"right"`` or ``"centre"`` for each of ``layout.bones``, by the child joint's name."""
    sides = []
    for child, _ in layout.bones:
        name = layout.joint_names[int(child)]
        sides.append("left" if name.startswith("left_") else "right" if name.startswith("right_") else "centre")
    return sides


_SIDE_COLOURS = {"left": LEFT_COLOUR, "right": RIGHT_COLOUR, "centre": CENTRE_COLOUR}


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
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    poses_2d_px = np.asarray(poses_2d_px, dtype=np.float64)
    pred_3d = np.asarray(pred_3d, dtype=np.float64)
    gt = None if gt_3d is None else np.asarray(gt_3d, dtype=np.float64)
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
    if num == 0:
        return []

    width_px, height_px = (int(v) for v in size_px)
    fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    canvas = FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.1, top=0.88, wspace=0.12)
    ax2d = fig.add_subplot(1, 2, 1)
    ax3d = fig.add_subplot(1, 2, 2, projection="3d")
    fig.suptitle(title, fontsize=10)
    frame_text = fig.text(0.01, 0.01, "", fontsize=8, ha="left", va="bottom")
    error_text = fig.text(0.99, 0.01, "", fontsize=8, ha="right", va="bottom")

    bones = layout.bones
    sides = bone_sides(layout)

    # 2D panel: the whole image, y down, equal aspect.
    img_w, img_h = (float(v) for v in image_size)
    ax2d.set_xlim(0, img_w)
    ax2d.set_ylim(img_h, 0)
    ax2d.set_aspect("equal")
    ax2d.set_title("2D input (pixels)", fontsize=9)
    ax2d.set_xlabel("x (px)", fontsize=8)
    ax2d.set_ylabel("y (px)", fontsize=8)
    ax2d.tick_params(labelsize=7)
    ax2d.grid(True, linewidth=0.3, alpha=0.5)
    lines_2d = [ax2d.plot([], [], color=_SIDE_COLOURS[s], linewidth=2, solid_capstyle="round")[0] for s in sides]
    joints_2d = ax2d.plot([], [], linestyle="none", marker="o", markersize=2.5, color="black")[0]

    # 3D panel: plot x = camera x, plot y = depth, plot z = up (-camera y); one cube for the clip.
    pred_plot = _plot_coords(pred_3d)
    gt_plot = None if gt is None else _plot_coords(gt)
    limits = _cube_limits(pred_plot if gt_plot is None else np.concatenate([pred_plot, gt_plot]))
    ax3d.set_xlim(*limits[0])
    ax3d.set_ylim(*limits[1])
    ax3d.set_zlim(*limits[2])
    ax3d.set_box_aspect((1, 1, 1), zoom=1.15)
    for axis in (ax3d.xaxis, ax3d.yaxis, ax3d.zaxis):
        axis.set_major_locator(MaxNLocator(5))
    ax3d.set_title("3D, root-relative (m)", fontsize=9)
    ax3d.set_xlabel("x (m)", fontsize=7, labelpad=-6)
    ax3d.set_ylabel("depth z (m)", fontsize=7, labelpad=-6)
    ax3d.set_zlabel("up −y (m)", fontsize=7, labelpad=-6)
    ax3d.tick_params(labelsize=6, pad=-2)
    lines_gt = []
    if gt_plot is not None:
        lines_gt = [
            ax3d.plot([], [], [], color=GT_COLOUR, linewidth=4, alpha=0.8, solid_capstyle="round")[0] for _ in sides
        ]
    lines_pred = [ax3d.plot([], [], [], color=_SIDE_COLOURS[s], linewidth=2)[0] for s in sides]
    handles = [
        Line2D([], [], color=LEFT_COLOUR, linewidth=2, label="prediction, left"),
        Line2D([], [], color=RIGHT_COLOUR, linewidth=2, label="prediction, right"),
    ]
    if gt_plot is not None:
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

    errors_mm = None
    if gt is not None:
        errors_mm = np.linalg.norm(pred_3d - gt, axis=-1).mean(axis=-1) * 1000.0

    images: list[Image.Image] = []
    for t in range(num):
        for line, (child, parent) in zip(lines_2d, bones, strict=True):
            line.set_data(poses_2d_px[t, [child, parent], 0], poses_2d_px[t, [child, parent], 1])
        joints_2d.set_data(poses_2d_px[t, :, 0], poses_2d_px[t, :, 1])
        for line, (child, parent) in zip(lines_pred, bones, strict=True):
            seg = pred_plot[t, [child, parent]]
            line.set_data_3d(seg[:, 0], seg[:, 1], seg[:, 2])
        if gt_plot is not None:
            for line, (child, parent) in zip(lines_gt, bones, strict=True):
                seg = gt_plot[t, [child, parent]]
                line.set_data_3d(seg[:, 0], seg[:, 1], seg[:, 2])
        azimuth = START_AZIMUTH + (degrees_per_frame * t if view == "rotate" else 0.0)
        ax3d.view_init(elev=ELEVATION, azim=azimuth)
        frame_text.set_text(f"frame {labels[t]}")
        if errors_mm is not None:
            error_text.set_text(f"MPJPE {errors_mm[t]:.0f} mm")
        canvas.draw()
        rgba = np.asarray(canvas.buffer_rgba())
        images.append(Image.fromarray(rgba[..., :3].copy(), mode="RGB"))
    return images


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
    and ``imageio-ffmpeg`` not installed) or when ffmpeg fails. Odd image sizes are cropped by one
    pixel (yuv420p needs even ones).
    """
    if not frames:
        raise ValueError("write_mp4: no frames")
    exe = find_ffmpeg()
    if exe is None:
        log.warning(
            "no MP4 written: no ffmpeg on PATH and imageio-ffmpeg is not installed (pip install imageio-ffmpeg)"
        )
        return False
    width, height = frames[0].size
    width, height = width - width % 2, height - height % 2
    path = Path(path)
    failure = ""
    for codec in ("libx264", "mpeg4"):
        try:
            with atomic_path(path) as tmp, tempfile.TemporaryFile() as errors:
                command = [
                    exe, "-y", "-loglevel", "error",
                    "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", "-",
                    "-an", "-c:v", codec, "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4", str(tmp),
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
                if code != 0 or not tmp.is_file():
                    errors.seek(0)
                    last = errors.read().decode(errors="replace").strip().splitlines()[-1:]
                    raise _FfmpegFailedError(last[0] if last else f"exit status {code}")
            return True
        except _FfmpegFailedError as exc:
            failure = str(exc)
            log.debug("ffmpeg with %s failed: %s", codec, failure)
    log.warning("no MP4 written: %s failed (%s)", exe, failure)
    return False


def _parse_range(frames: slice | tuple[int, int] | None, length: int, where: str) -> tuple[int, int, int | None]:
    """(start, end, step or None) of a frame range inside a sequence of ``length`` frames."""
    if frames is None:
        return 0, min(DEFAULT_NUM_FRAMES, length), None
    if isinstance(frames, slice):
        start, end, step = frames.start, frames.stop, frames.step
    else:
        start, end = frames
        step = None
    if step is not None and int(step) < 1:
        raise UserInputError(f"frames: step must be >= 1, got {step}")
    shown = f"{'' if start is None else start}:{'' if end is None else end}"
    start = 0 if start is None else int(start)
    if not 0 <= start < length or (end is not None and not start < int(end) <= length):
        raise UserInputError(f"frames {shown} out of range for {where}, which has frames 0:{length}")
    end = min(start + DEFAULT_NUM_FRAMES, length) if end is None else int(end)
    return start, end, None if step is None else int(step)


def _file_labels(processed: Path) -> dict[str, Any] | None:
    """The processed file's ``subjects`` / ``actions`` / ``fps`` attributes, or None if unreadable."""
    import h5py

    try:
        with h5py.File(processed, "r") as handle:
            return {
                "subjects": json.loads(handle.attrs["subjects"]),
                "actions": json.loads(handle.attrs["actions"]),
            }
    except (OSError, KeyError, ValueError, TypeError):
        return None  # load_processed reports what is wrong with the file


def _choices(values: Sequence[Any]) -> str:
    return ", ".join(str(v) for v in values)


def render_sequence(
    checkpoint: Path,
    processed: Path,
    subject: str,
    action: str,
    camera: int,
    frames: slice | tuple[int, int] | None,
    out: Path,
    view: str = "rotate",
    fps: float | None = None,
    mp4: bool = False,
    flip_test: bool = True,
    device: str = "cpu",
    size_px: tuple[int, int] = DEFAULT_SIZE_PX,
) -> dict[str, Any]:
    """Render one sequence of a processed file with a checkpoint's predictions into ``out`` (a GIF).

    ``frames`` is a range of the sequence's frame numbers (``(start, end)`` half-open, or a
    slice whose step, if given, overrides the stride); None means the first
    :data:`DEFAULT_NUM_FRAMES`. The stride is ``round(data_fps / fps)`` (default ``fps``: data
    fps / 2, i.e. every 2nd frame at 25 fps for 50 fps data). With ``mp4`` an MP4 is written
    beside the GIF (``out`` with suffix ``.mp4``) when ffmpeg is available.

    Returns ``{"gif", "mp4" (None if not written), "frames" (rendered count), "frame_range"
    [start, end], "stride", "fps", "size" [w, h], "p1_mm" (MPJPE of the rendered frames),
    "refined", "seconds"}``. Unknown subject, action or camera, an empty or out-of-range frame
    range, and a checkpoint whose layout differs from the file's are :class:`UserInputError`\\ s.
    """
    import torch

    from mlpgraph import metrics
    from mlpgraph.cameras import denormalise_screen
    from mlpgraph.checkpoints import networks_from_checkpoint
    from mlpgraph.data import schema
    from mlpgraph.data.batches import PoseArrays
    from mlpgraph.evaluation import model_pad, predict
    from mlpgraph.layouts import get_layout

    began = time.perf_counter()
    checkpoint, processed, out = Path(checkpoint), Path(processed), Path(out)
    if view not in VIEWS:
        raise UserInputError(f"view must be one of {_choices(VIEWS)}, got {view!r}")
    if fps is not None and not fps > 0:
        raise UserInputError(f"fps must be positive, got {fps}")
    labels = _file_labels(processed)
    if labels is not None and subject not in labels["subjects"]:
        raise UserInputError(f"{processed}: no subject {subject!r}; choose from {_choices(labels['subjects'])}")
    networks = networks_from_checkpoint(checkpoint)
    if "model" not in networks:
        raise UserInputError(f"{checkpoint}: no lifting network (role 'model'); it has {_choices(networks)}")
    model, refine = networks["model"], networks.get("refine")
    data = PoseArrays.from_processed(processed, [subject], device=device)
    model_layout = str(getattr(model, "config", {}).get("layout", data.layout))
    if model_layout != data.layout:
        raise UserInputError(f"{checkpoint}: model layout {model_layout} but {processed} holds {data.layout}")

    actions = data.attrs["actions"]
    action_ids = data.meta[schema.ACTION].cpu().numpy()
    present = [actions[i] for i in sorted(set(action_ids.tolist()))]
    if action not in present:
        raise UserInputError(
            f"{processed}: subject {subject} has no action {action!r}; choose from {_choices(present)}"
        )
    cameras = data.meta[schema.CAMERA].cpu().numpy()
    in_action = action_ids == actions.index(action)
    present_cams = sorted(set(cameras[in_action].tolist()))
    if camera not in present_cams:
        raise UserInputError(
            f"{processed}: {subject} {action} has no camera {camera}; choose from {_choices(present_cams)}"
        )
    rows = np.flatnonzero(in_action & (cameras == camera))
    frame_numbers = data.meta[schema.FRAME].cpu().numpy()[rows]
    rows = rows[np.argsort(frame_numbers, kind="stable")]
    frame_numbers = np.sort(frame_numbers)
    where = f"{subject} {action} camera {camera}"
    start, end, step = _parse_range(frames, len(rows), where)

    data_fps = float(data.attrs.get("fps", 50))
    if step is not None:
        stride = step
        play_fps = fps if fps is not None else data_fps / stride
    elif fps is None:
        stride = DEFAULT_STRIDE
        play_fps = data_fps / stride
    else:
        stride = max(1, round(data_fps / fps))
        play_fps = float(fps)
    if play_fps > 50:
        log.warning("GIF at %.0f fps: most viewers slow down frames shorter than 20 ms", play_fps)
    chosen = rows[start:end:stride]
    chosen_t = torch.as_tensor(chosen, dtype=torch.long, device=data.device)

    pred = predict(model, data, model_pad(model), flip_test=flip_test, refine=refine, root_depth="gt", indices=chosen_t)
    pred_np = pred.cpu().numpy()
    gt_np = data.poses_3d[chosen_t].cpu().numpy()
    root = get_layout(data.layout).root
    gt_np = gt_np - gt_np[:, root : root + 1]
    p1_mm = metrics.mpjpe(pred_np * 1000.0, gt_np * 1000.0)

    intrinsics = data.meta[schema.INTRINSICS][data.sequence[chosen_t[0]]].cpu().numpy()
    image_w, image_h = float(intrinsics[4]), float(intrinsics[5])
    poses_px = denormalise_screen(data.poses_2d[chosen_t].cpu().numpy(), image_w, image_h)

    network = f"{networks['model'].__class__.__name__} T={getattr(model, 'frames', 1)}"
    if refine is not None:
        network += " + refinement"
    keypoints = data.attrs.get("keypoints", "?")
    title = f"{subject} {action}, camera {camera}: {network}, {keypoints} 2D, P1 {p1_mm:.1f} mm"
    images = render_frames(
        poses_px,
        pred_np,
        gt_np,
        get_layout(data.layout),
        (int(image_w), int(image_h)),
        title,
        view=view,
        size_px=size_px,
        frame_labels=frame_numbers[start:end:stride].tolist(),
    )
    gif = write_gif(images, out, play_fps)
    mp4_path: Path | None = None
    if mp4 and write_mp4(images, out.with_suffix(".mp4"), play_fps):
        mp4_path = out.with_suffix(".mp4")
    seconds = time.perf_counter() - began
    result = {
        "gif": str(gif),
        "mp4": None if mp4_path is None else str(mp4_path),
        "frames": len(images),
        "frame_range": [int(frame_numbers[start]), int(frame_numbers[end - 1]) + 1],
        "stride": int(stride),
        "fps": float(play_fps),
        "size": list(images[0].size),
        "p1_mm": float(p1_mm),
        "refined": refine is not None,
        "seconds": round(seconds, 2),
    }
    log.info(
        "render: %s (%d frames %d:%d every %d, %g fps, %dx%d, P1 %.1f mm) in %.1f s%s",
        gif, len(images), *result["frame_range"], stride, play_fps, *result["size"], p1_mm, seconds,
        f"; {mp4_path}" if mp4_path else "",
    )  # fmt: skip
    return result


DEMO_SIZE_PX = (720, 360)
DEMO_ACTION = "Walking"


def render_demos(
    params: Mapping[str, Any], root: Path, out_dir: Path, size_px: tuple[int, int] = DEMO_SIZE_PX
) -> list[dict[str, Any]]:
    """One GIF per temporal experiment of ``params`` (the report stage's demos), in ``out_dir``.

    Each shows the last-epoch network (with its refinement when the experiment has one) on the
    first test subject's ``Walking``, camera 0, from the first frame (:func:`render_sequence`'s
    defaults). Single-frame and skipped experiments get none. Older GIFs in ``out_dir`` are
    removed first, so the folder holds exactly the current demos. Returns one record per demo:
    ``render_sequence``'s plus ``experiment``, ``subject``, ``action``, ``camera``.
    """
    from mlpgraph.experiments import load_experiment
    from mlpgraph.params import get
    from mlpgraph.training import FINAL

    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.gif"):
        stale.unlink()
    subject = str(get(params, "data.test_subjects")[0])
    demos = []
    for name, entry in get(params, "experiments").items():
        if not isinstance(entry, Mapping) or "model" not in entry or "keypoints" not in entry:
            continue  # a preset's overrides of an experiment params.yaml does not define
        experiment = load_experiment(params, name)
        if experiment.frames == 1 or experiment.skipped_reason is not None:
            continue
        network = "refine" if experiment.refinement is not None else "spatial"
        record = render_sequence(
            root / "models" / name / network / FINAL,
            experiment.processed_path(params, root),
            subject,
            DEMO_ACTION,
            0,
            None,
            out_dir / f"{name}.gif",
            size_px=size_px,
        )
        demos.append({"experiment": name, "subject": subject, "action": DEMO_ACTION, "camera": 0, **record})
        log.info("demo %s: %s (%d frames, P1 %.1f mm)", name, record["gif"], record["frames"], record["p1_mm"])
    return demos
