"""Lift the user's own 2D keypoints to root-relative 3D with a trained checkpoint (``mlpgraph predict``).

The keypoint file is read and prepared by :mod:`mlpgraph.user_keypoints`: an ``.npz`` in the
model's layout or COCO-17 keypoint JSON (told apart by content), COCO-17 mapped onto the model's
layout by joint name, low-confidence joints and missing frames filled from their neighbours in
time. The pixels are then normalised as preprocessing does
(:func:`mlpgraph.cameras.normalise_screen`), and the sequence lifted through
:func:`mlpgraph.evaluation.predict` on a one-sequence :class:`~mlpgraph.data.batches.PoseArrays`,
so temporal models see the same edge-padded windows, and the same flip test, as in evaluation.
Every problem with the input is a one-line :class:`~mlpgraph.errors.UserInputError` naming the file.
The lifted poses are checked to be finite: NaN or infinity in the network's output names the
frames and blames the keypoint file (keypoints far outside the image) or the checkpoint's weights.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from torch import nn

from mlpgraph.cameras import normalise_screen
from mlpgraph.errors import UserInputError
from mlpgraph.layouts import SkeletonLayout, get_layout
from mlpgraph.outputs import atomic_outputs, atomic_path
from mlpgraph.user_keypoints.filling import DEFAULT_MAX_GAP, DEFAULT_MIN_SCORE, PreparedKeypoints, prepare_keypoints
from mlpgraph.user_keypoints.reading import read_keypoints

if TYPE_CHECKING:
    from mlpgraph.evaluation import NonFinitePrediction

log = logging.getLogger(__name__)

# A non-finite output on keypoints farther than this from the image centre (in normalised units: 1 is
# the image's half-width) is blamed on the keypoints; nearer, on the checkpoint's weights.
FAR_OUTSIDE_IMAGE = 10.0
# --gif draws at most this many frames (evenly spaced over the sequence), played at GIF_FPS.
GIF_MAX_FRAMES = 200
GIF_FPS = 25.0


@dataclass(frozen=True)
class LiftResult:
    """What :func:`predict_file` lifted: the prepared 2D and the (T, J, 3) float32 metres."""

    prepared: PreparedKeypoints
    poses_3d: np.ndarray
    frames_per_window: int
    flip_test: bool


def lifting_network(path: str | os.PathLike[str]) -> tuple[nn.Module, SkeletonLayout]:
    """The lifting network (role ``model``) of a checkpoint, in eval mode, and its layout.

    A checkpoint without one (a refinement module alone, say) is a user error. A refinement
    module stored beside it is not applied: its input needs the camera intrinsics and root depth.
    """
    from mlpgraph.checkpoints import networks_from_checkpoint
    from mlpgraph.models.refine import PoseRefinement

    networks = networks_from_checkpoint(path)
    model = networks.get("model")
    if model is None or isinstance(model, PoseRefinement):
        raise UserInputError(
            f"{path}: not a lifting network checkpoint (it holds {sorted(networks)}; "
            "expected a 2D-to-3D network under 'model')"
        )
    return model, get_layout(str(model.config["layout"]))


def lift(
    model: nn.Module,
    keypoints_2d: np.ndarray,
    layout: SkeletonLayout,
    flip_test: bool = True,
    batch_size: int = 1024,
    device: str = "cpu",
) -> np.ndarray:
    """(T, J, 3) float32 root-relative metres for one sequence of (T, J, 2) normalised 2D.

    Exactly :func:`mlpgraph.evaluation.predict` on a one-sequence :class:`PoseArrays`: temporal
    models get windows of ``frames`` centred on each frame, edge-padded at the sequence's ends.
    """
    from mlpgraph.data.batches import PoseArrays
    from mlpgraph.evaluation import model_pad, predict

    num_frames = keypoints_2d.shape[0]
    data = PoseArrays.from_numpy(
        np.asarray(keypoints_2d, dtype=np.float32),
        np.zeros((num_frames, layout.num_joints, 3), dtype=np.float32),
        np.array([[0, num_frames]], dtype=np.int64),
        layout=layout.name,
        device=device,
    )
    pred = predict(model, data, model_pad(model), flip_test=flip_test, batch_size=batch_size)
    return pred.detach().cpu().numpy().astype(np.float32)


def write_prediction(path: str | os.PathLike[str], result: LiftResult) -> Path:
    """Write ``result`` as an ``.npz`` (atomically; readable with ``allow_pickle=False``).

    Keys: ``poses_3d`` (T, J, 3) float32 root-relative camera-space metres, ``keypoints_2d``
    (T, J, 2) float32 the filled pixels that were lifted, ``filled`` (T, J) bool, ``frames`` (T,)
    image ids, ``present`` (T,) bool (frame in the input file), ``joint_names``, ``layout``,
    ``width``, ``height``, ``frames_per_window``, ``flip_test``.
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
        )
    return path


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
    device: str = "cpu",
    gif: str | os.PathLike[str] | None = None,
) -> LiftResult:
    """Read, map, fill, normalise, lift and write one keypoint file (``mlpgraph predict``).

    With ``gif``, also :func:`render_gif`. Everything that can be wrong with the inputs is checked
    before anything is logged or written, so a user error leaves a single line and no output file.
    Both files are written under temporary names and renamed into place together: a failure
    leaves neither, and whatever was at ``out`` and ``gif`` before stays as it was.
    """
    from mlpgraph.evaluation import NonFinitePrediction

    model, layout = lifting_network(checkpoint)
    seq = read_keypoints(input_path, layout, width, height, track_id)
    prepared = prepare_keypoints(seq, layout, min_score, max_gap)
    with np.errstate(over="ignore", invalid="ignore"):
        normalised = normalise_screen(prepared.keypoints, prepared.width, prepared.height).astype(np.float32)
    bad = ~np.isfinite(normalised).reshape(len(normalised), -1).all(axis=1)
    if bad.any():
        raise UserInputError(
            f"{input_path}: keypoints of {_frame_list(prepared.frames[bad])} are not finite once normalised "
            f"by the {prepared.width:g} x {prepared.height:g} image (values too large)"
        )
    try:
        poses = lift(model, normalised, layout, flip_test=flip_test, batch_size=batch_size, device=device)
    except NonFinitePrediction as exc:
        raise UserInputError(_non_finite_output(exc, checkpoint, input_path, prepared, normalised, model)) from None
    result = LiftResult(prepared, poses, int(getattr(model, "frames", 1)), flip_test)
    with atomic_outputs(out, *([gif] if gif is not None else [])) as staged:
        write_prediction(staged[0], result)
        if gif is not None:
            render_gif(result, staged[1])
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


def _frame_list(frames: np.ndarray, shown: int = 5) -> str:
    """``frame 7`` or ``frames 3, 4, 9, ... (12 in all)``: image ids for a message."""
    ids = [str(int(f)) for f in np.asarray(frames)[:shown]]
    if len(frames) == 1:
        return f"frame {ids[0]}"
    more = f", ... ({len(frames)} in all)" if len(frames) > shown else ""
    return f"frames {', '.join(ids)}{more}"


def _non_finite_output(
    exc: NonFinitePrediction,
    checkpoint: str | os.PathLike[str],
    input_path: str | os.PathLike[str],
    prepared: PreparedKeypoints,
    normalised: np.ndarray,
    model: nn.Module,
) -> str:
    """The one line for a NaN or infinite pose: which frames, and whether the keypoints or the weights are at fault."""
    from mlpgraph.evaluation import model_pad

    pad, count = model_pad(model), len(normalised)
    window = np.clip(exc.samples[:, None] + np.arange(-pad, pad + 1), 0, count - 1)
    largest = float(np.abs(normalised[window]).max())
    frames = _frame_list(prepared.frames[exc.samples])
    if largest > FAR_OUTSIDE_IMAGE:
        return (
            f"{input_path}: the network's output is NaN or infinite for {frames}: their keypoints lie far outside "
            f"the {prepared.width:g} x {prepared.height:g} image ({largest:.3g} half-widths from its centre)"
        )
    return (
        f"{checkpoint}: the network's output is NaN or infinite for {frames} of {input_path}, whose keypoints "
        "are within the image: the checkpoint's weights overflow"
    )


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
