"""Skeleton demos: the 2D input beside the predicted and ground-truth 3D, as an animated GIF or MP4.

:func:`render_sequence` is what ``mlpgraph render`` runs: it loads a checkpoint and one sequence
(subject, action, camera) of a processed HDF5 file, predicts the frames with
:func:`mlpgraph.evaluation.predict` (temporal models get their edge-padded windows from the whole
sequence, as in evaluation; a refinement module in the checkpoint is applied with the
ground-truth root depth, as the evaluation's oracle setting does), and writes the animation.
:func:`render_demos` renders the report stage's demos with it. The frames are drawn by
:mod:`mlpgraph.skeleton_drawing` and written by :mod:`mlpgraph.animation`.

Frame rate: the data is 50 fps; by default every 2nd frame is rendered and played at 25 fps,
i.e. in real time. A chosen ``fps`` keeps real time too: every ``round(data_fps / fps)``-th frame
is rendered and played at ``fps``. GIF frame durations are whole centiseconds and most viewers
slow down frames shorter than 20 ms, so GIFs above 50 fps are not useful.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlpgraph.animation import write_gif, write_mp4
from mlpgraph.errors import UserInputError
from mlpgraph.layouts import SkeletonLayout
from mlpgraph.outputs import DEMOS, Output, Staged, atomic_outputs
from mlpgraph.skeleton_drawing import DEFAULT_SIZE_PX, VIEWS, render_frames

log = logging.getLogger(__name__)

DEFAULT_NUM_FRAMES = 100
DEFAULT_STRIDE = 2
DEMO_SIZE_PX = (720, 360)
DEMO_ACTION = "Walking"


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
    beside the GIF (``out`` with suffix ``.mp4``) when ffmpeg is available; the two are renamed
    into place together, so a failure leaves neither.

    Returns ``{"gif", "mp4" (None if not written), "frames" (rendered count), "frame_range"
    [start, end], "stride", "fps", "size" [w, h], "p1_mm" (MPJPE of the rendered frames),
    "refined", "seconds"}``. Unknown subject, action or camera, an empty or out-of-range frame
    range, and a checkpoint whose layout differs from the file's are :class:`UserInputError`\\ s.
    """
    began = time.perf_counter()
    checkpoint, processed, out = Path(checkpoint), Path(processed), Path(out)
    _check_options(view, fps)
    networks, data = _load(checkpoint, processed, subject, device)
    rows, frame_numbers = _sequence_rows(data, processed, subject, action, camera)
    start, end, step = _parse_range(frames, len(rows), f"{subject} {action} camera {camera}")
    stride, play_fps = _stride_and_fps(step, fps, float(data.attrs.get("fps", 50)))
    clip = _predict_clip(networks, data, rows[start:end:stride], flip_test)
    title = f"{subject} {action}, camera {camera}: {clip.network}, {clip.keypoints} 2D, P1 {clip.p1_mm:.1f} mm"
    labels = frame_numbers[start:end:stride].tolist()
    images = render_frames(
        clip.pixels, clip.pred, clip.gt, clip.layout, clip.image_size, title,
        view=view, size_px=size_px, frame_labels=labels,
    )  # fmt: skip
    mp4_path = _write_animations(images, out, play_fps, mp4)
    seconds = time.perf_counter() - began
    result = {
        "gif": str(out),
        "mp4": None if mp4_path is None else str(mp4_path),
        "frames": len(images),
        "frame_range": [int(frame_numbers[start]), int(frame_numbers[end - 1]) + 1],
        "stride": int(stride),
        "fps": float(play_fps),
        "size": list(images[0].size),
        "p1_mm": float(clip.p1_mm),
        "refined": clip.refined,
        "seconds": round(seconds, 2),
    }
    _log_render(result)
    return result


def _write_animations(images: Sequence[Any], gif: Path, fps: float, mp4: bool) -> Path | None:
    """The GIF and, with ``mp4`` and ffmpeg, the MP4 beside it, renamed into place together; the MP4's path or None."""
    mp4_path = gif.with_suffix(".mp4") if mp4 else None
    with atomic_outputs(gif, *([mp4_path] if mp4_path is not None else [])) as staged:
        write_gif(images, staged[0], fps)
        if mp4_path is not None and not write_mp4(images, staged[1], fps):
            mp4_path = None
    return mp4_path


def _check_options(view: str, fps: float | None) -> None:
    if view not in VIEWS:
        raise UserInputError(f"view must be one of {_choices(VIEWS)}, got {view!r}")
    if fps is not None and not fps > 0:
        raise UserInputError(f"fps must be positive, got {fps}")


def _log_render(result: dict[str, Any]) -> None:
    log.info(
        "render: %s (%d frames %d:%d every %d, %g fps, %dx%d, P1 %.1f mm) in %.1f s%s",
        result["gif"], result["frames"], *result["frame_range"], result["stride"], result["fps"], *result["size"],
        result["p1_mm"], result["seconds"], f"; {result['mp4']}" if result["mp4"] else "",
    )  # fmt: skip


def _choices(values: Sequence[Any]) -> str:
    return ", ".join(str(v) for v in values)


def _file_labels(processed: Path) -> dict[str, Any] | None:
    """The processed file's ``subjects`` / ``actions`` attributes, or None if unreadable."""
    import h5py

    try:
        with h5py.File(processed, "r") as handle:
            return {
                "subjects": json.loads(handle.attrs["subjects"]),
                "actions": json.loads(handle.attrs["actions"]),
            }
    except (OSError, KeyError, ValueError, TypeError):
        return None  # load_processed reports what is wrong with the file


def _load(checkpoint: Path, processed: Path, subject: str, device: str) -> tuple[dict[str, Any], Any]:
    """The checkpoint's networks (one of them role ``model``) and ``subject``'s :class:`PoseArrays` of the file.

    An unknown subject, a checkpoint without a lifting network, or one whose layout differs from
    the file's is a :class:`UserInputError`.
    """
    from mlpgraph.checkpoints import networks_from_checkpoint
    from mlpgraph.data.batches import PoseArrays

    labels = _file_labels(processed)
    if labels is not None and subject not in labels["subjects"]:
        raise UserInputError(f"{processed}: no subject {subject!r}; choose from {_choices(labels['subjects'])}")
    networks = networks_from_checkpoint(checkpoint)
    if "model" not in networks:
        raise UserInputError(f"{checkpoint}: no lifting network (role 'model'); it has {_choices(networks)}")
    data = PoseArrays.from_processed(processed, [subject], device=device)
    model_layout = str(getattr(networks["model"], "config", {}).get("layout", data.layout))
    if model_layout != data.layout:
        raise UserInputError(f"{checkpoint}: model layout {model_layout} but {processed} holds {data.layout}")
    return networks, data


def _sequence_rows(data: Any, processed: Path, subject: str, action: str, camera: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``data`` holding ``action`` seen by ``camera``, in frame order, and their frame numbers."""
    from mlpgraph.data import schema

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
    return rows[np.argsort(frame_numbers, kind="stable")], np.sort(frame_numbers)


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


def _stride_and_fps(step: int | None, fps: float | None, data_fps: float) -> tuple[int, float]:
    """(every how many frames one is rendered, playback fps): a given ``step`` wins, else real time at ``fps``."""
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
    return stride, play_fps


@dataclass(frozen=True)
class _Clip:
    """The rendered rows: ``pred`` and ``gt`` (N, J, 3) root-relative metres, their MPJPE, the input
    ``pixels`` (N, J, 2) and the camera's ``image_size``; ``network`` and ``keypoints`` (2D source) name them."""

    pred: np.ndarray
    gt: np.ndarray
    p1_mm: float
    pixels: np.ndarray
    image_size: tuple[int, int]
    layout: SkeletonLayout
    network: str
    keypoints: str
    refined: bool


def _predict_clip(networks: dict[str, Any], data: Any, chosen: np.ndarray, flip_test: bool) -> _Clip:
    """Predict the rows ``chosen`` of ``data``, refined with the ground-truth root depth when the checkpoint can."""
    import torch

    from mlpgraph import metrics
    from mlpgraph.cameras import denormalise_screen
    from mlpgraph.data import schema
    from mlpgraph.evaluation import model_pad, predict
    from mlpgraph.layouts import get_layout

    model, refine = networks["model"], networks.get("refine")
    chosen_t = torch.as_tensor(chosen, dtype=torch.long, device=data.device)
    pred = predict(model, data, model_pad(model), flip_test=flip_test, refine=refine, root_depth="gt", indices=chosen_t)
    pred_np = pred.cpu().numpy()
    gt_np = data.poses_3d[chosen_t].cpu().numpy()
    layout = get_layout(data.layout)
    gt_np = gt_np - gt_np[:, layout.root : layout.root + 1]
    intrinsics = data.meta[schema.INTRINSICS][data.sequence[chosen_t[0]]].cpu().numpy()
    image_w, image_h = float(intrinsics[4]), float(intrinsics[5])
    network = f"{model.__class__.__name__} T={getattr(model, 'frames', 1)}"
    return _Clip(
        pred=pred_np,
        gt=gt_np,
        p1_mm=metrics.mpjpe(pred_np * 1000.0, gt_np * 1000.0),
        pixels=denormalise_screen(data.poses_2d[chosen_t].cpu().numpy(), image_w, image_h),
        image_size=(int(image_w), int(image_h)),
        layout=layout,
        network=network if refine is None else network + " + refinement",
        keypoints=data.attrs.get("keypoints", "?"),
        refined=refine is not None,
    )


def render_demos(
    params: Mapping[str, Any],
    models_dir: Path,
    processed_dir: Path,
    out_dir: Path,
    size_px: tuple[int, int] = DEMO_SIZE_PX,
    staged: Staged | None = None,
) -> list[dict[str, Any]]:
    """One GIF per temporal experiment of ``params`` (the report stage's demos), in ``out_dir``.

    The networks are read from ``models_dir/EXP/{spatial,refine}/final.pt``, the sequences from
    the experiment's processed file in ``processed_dir``.

    Each shows the last-epoch network (with its refinement when the experiment has one) on the
    first test subject's ``Walking``, camera 0, from the first frame (:func:`render_sequence`'s
    defaults). Single-frame and skipped experiments get none. ``out_dir`` is a folder output of
    kind ``demos`` (:mod:`mlpgraph.outputs`), written whole under a temporary name and replacing
    the earlier demos folder, so it holds exactly the current demos; or, with ``staged``, written
    where that :func:`~mlpgraph.outputs.atomic_outputs` block stages ``out_dir``. Returns one
    record per demo: ``render_sequence``'s (with the GIF's final path) plus ``experiment``,
    ``subject``, ``action``, ``camera``.
    """
    if staged is None:
        with atomic_outputs(Output(out_dir, DEMOS)) as own:
            return render_demos(params, models_dir, processed_dir, out_dir, size_px, own)
    from mlpgraph.experiments import load_experiment
    from mlpgraph.params import get
    from mlpgraph.paths import FINAL_CHECKPOINT, REFINE, SPATIAL, processed_name

    subject = str(get(params, "data.test_subjects")[0])
    demos = []
    for name, entry in get(params, "experiments").items():
        if not isinstance(entry, Mapping) or "model" not in entry or "keypoints" not in entry:
            continue  # a preset's overrides of an experiment params.yaml does not define
        experiment = load_experiment(params, name)
        if experiment.frames == 1 or experiment.skipped_reason is not None:
            continue
        network = REFINE if experiment.refinement is not None else SPATIAL
        data = params["data"]
        gif = out_dir / f"{name}.gif"
        record = render_sequence(
            models_dir / name / network / FINAL_CHECKPOINT,
            processed_dir / processed_name(data["name"], experiment.keypoints, data["layout"]),
            subject,
            DEMO_ACTION,
            0,
            None,
            staged.path(gif),
            size_px=size_px,
        )
        record["gif"] = str(gif)
        demos.append({"experiment": name, "subject": subject, "action": DEMO_ACTION, "camera": 0, **record})
        log.info("demo %s: %s (%d frames, P1 %.1f mm)", name, gif, record["frames"], record["p1_mm"])
    return demos
