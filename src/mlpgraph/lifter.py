"""The Python API for lifting 2D keypoints to root-relative 3D: :class:`Lifter`.

``Lifter.from_checkpoint(path, device="auto")`` loads a checkpoint's lifting network once;
``lifter.lift(keypoints, scores, width=..., height=..., fps=..., layout="coco17")`` lifts one
person's (T, K, 2) pixel track and returns one root-relative pose (metres) per input frame, with
the joints that were filled in time. The keypoints go through exactly what ``mlpgraph predict``
does (:mod:`mlpgraph.user_keypoints`: mapping onto the model's layout by joint name, filling of
low-confidence joints), are normalised as preprocessing does, and are lifted by
:func:`mlpgraph.evaluation.predict` (the models' fast inference arithmetic, batched, flip test).

The models were trained on 50 fps sequences (Human3.6M's rate). A temporal model's window spans a
fixed time at that rate, so keypoints at another rate are resampled to 50 fps (linear
interpolation in time), lifted, and the poses resampled back onto the input frames
(:func:`resample_frames`). A 1-frame model sees each frame on its own: its input is never resampled.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from torch import nn

from mlpgraph.cameras import normalise_screen
from mlpgraph.checkpoints import lifting_network
from mlpgraph.errors import UserInputError
from mlpgraph.layouts import SkeletonLayout
from mlpgraph.user_keypoints.filling import DEFAULT_MAX_GAP, DEFAULT_MIN_SCORE, PreparedKeypoints, prepare_keypoints
from mlpgraph.user_keypoints.joint_maps import BODY25_JOINTS, COCO17_JOINTS, HALPE26_JOINTS
from mlpgraph.user_keypoints.sequence import Keypoints2D, positive_size

if TYPE_CHECKING:
    from mlpgraph.evaluation import NonFinitePrediction

# The frame rate every model here is trained at (Human3.6M's, and the synthetic generator's).
MODEL_FPS = 50.0
# Highest input frame rate accepted (a camera beyond this is a typo, or a rate in the wrong unit).
MAX_INPUT_FPS = 1000.0
# A non-finite output on keypoints farther than this from the image centre (in normalised units: 1 is
# the image's half-width) is blamed on the keypoints; nearer, on the checkpoint's weights.
FAR_OUTSIDE_IMAGE = 10.0
# Detector joint sets that :mod:`mlpgraph.user_keypoints` maps onto a model's layout by joint name.
DETECTOR_JOINT_SETS: dict[str, tuple[str, ...]] = {
    "coco17": COCO17_JOINTS,
    "halpe26": HALPE26_JOINTS,
    "body25": BODY25_JOINTS,
}


@dataclass(frozen=True)
class LiftedPoses:
    """What :meth:`Lifter.lift` returns, one row per input frame.

    ``poses_3d`` (T, J, 3) float32 root-relative camera-space metres in ``joint_names`` (the
    model's layout); ``filled`` (T, J) True where the 2D was interpolated in time (low score or
    missing), so the 3D there rests on a guess; ``keypoints_2d`` (T, J, 2) the filled pixels lifted.
    """

    poses_3d: np.ndarray
    filled: np.ndarray
    keypoints_2d: np.ndarray
    joint_names: tuple[str, ...]
    fps: float


def check_fps(fps: float, what: str = "fps") -> float:
    """``fps`` as a float in (0, :data:`MAX_INPUT_FPS`]; a one-line :class:`UserInputError` otherwise."""
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise UserInputError(f"{what} must be a number of frames per second, got {fps!r:.60}") from None
    if not math.isfinite(value) or not 0 < value <= MAX_INPUT_FPS:
        raise UserInputError(f"{what} must be a frame rate in (0, {MAX_INPUT_FPS:g}] frames per second, got {fps!r}")
    return value


def resample_frames(values: np.ndarray, from_fps: float, to_fps: float, count: int | None = None) -> np.ndarray:
    """(T, ...) frames sampled at ``from_fps`` resampled to ``to_fps`` by linear interpolation in time.

    Output frame k lies at time k / ``to_fps`` (frame 0 at time 0 in both). ``count`` output frames
    (default: every one within the input's time span); frames past the input's last one repeat it.
    """
    values = np.asarray(values)
    if count is None:
        count = math.floor((len(values) - 1) * to_fps / from_fps + 1e-9) + 1
    position = np.arange(count, dtype=np.float64) * (from_fps / to_fps)
    position = np.minimum(position, len(values) - 1)
    lower = np.floor(position).astype(np.int64)
    upper = np.minimum(lower + 1, len(values) - 1)
    weight = (position - lower).reshape((-1,) + (1,) * (values.ndim - 1))
    return values[lower] * (1.0 - weight) + values[upper] * weight


class Lifter:
    """A trained lifting network ready to lift people's 2D keypoints (see the module docstring)."""

    def __init__(
        self, model: nn.Module, layout: SkeletonLayout, device: str = "cpu", batch_size: int = 1024, source: str = ""
    ) -> None:
        if batch_size < 1:
            raise UserInputError(f"--batch-size must be >= 1, got {batch_size}")
        self.model = model.eval().to(device)
        self.layout = layout
        self.device = str(device)
        self.batch_size = int(batch_size)
        self.source = source or type(model).__name__

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], device: str = "auto", batch_size: int = 1024) -> Lifter:
        """The lifting network of checkpoint ``path`` on ``device`` (``auto``: CUDA when present, else CPU)."""
        from mlpgraph.devices import resolve_device

        resolved = resolve_device(device, "device")
        model, layout = lifting_network(path)
        return cls(model, layout, str(resolved), batch_size, source=str(path))

    @property
    def frames(self) -> int:
        """Frames per input window (1 for single-frame models)."""
        return int(getattr(self.model, "frames", 1))

    def lift(
        self,
        keypoints: np.ndarray,
        scores: np.ndarray | None = None,
        *,
        width: float,
        height: float,
        fps: float = MODEL_FPS,
        layout: str = "coco17",
        min_score: float = DEFAULT_MIN_SCORE,
        max_gap: int = DEFAULT_MAX_GAP,
        flip_test: bool = True,
    ) -> LiftedPoses:
        """Lift one person's (T, K, 2) pixel keypoints (frames at ``fps``) in joint set ``layout``.

        ``layout``: a detector's joint set (``coco17``, ``halpe26``, OpenPose's ``body25``), mapped
        by joint name as :mod:`mlpgraph.user_keypoints` maps files, or the model's own layout name.
        ``scores`` (T, K): joints scored below ``min_score`` are filled in time (at most ``max_gap``
        frames in a row); None: all confident.
        """
        sequence = keypoints_from_arrays(keypoints, scores, width, height, layout, self.layout)
        prepared = prepare_keypoints(sequence, self.layout, min_score, max_gap)
        poses = self.lift_prepared(prepared, fps, flip_test)
        return LiftedPoses(poses, prepared.filled, prepared.keypoints, self.layout.joint_names, check_fps(fps))

    def lift_prepared(self, prepared: PreparedKeypoints, fps: float = MODEL_FPS, flip_test: bool = True) -> np.ndarray:
        """(T, J, 3) float32 metres for keypoints already in the model's layout on a gap-free frame grid."""
        from mlpgraph.evaluation import NonFinitePrediction

        fps = check_fps(fps)
        with np.errstate(over="ignore", invalid="ignore"):
            normalised = normalise_screen(prepared.keypoints, prepared.width, prepared.height).astype(np.float32)
        bad = ~np.isfinite(normalised).reshape(len(normalised), -1).all(axis=1)
        if bad.any():
            raise UserInputError(
                f"{prepared.source}: keypoints of {frame_list(prepared.frames[bad])} are not finite once normalised "
                f"by the {prepared.width:g} x {prepared.height:g} image (values too large)"
            )
        resample = self.frames > 1 and fps != MODEL_FPS
        model_rate = resample_frames(normalised, fps, MODEL_FPS) if resample else normalised
        try:
            poses = self._lift_normalised(model_rate.astype(np.float32), flip_test)
        except NonFinitePrediction as exc:
            if resample:
                raise UserInputError(f"{self.source}: the network's output is NaN or infinite") from None
            raise UserInputError(self._non_finite_message(exc, prepared, normalised)) from None
        if resample:
            poses = resample_frames(poses, MODEL_FPS, fps, count=len(normalised)).astype(np.float32)
        return poses

    def _lift_normalised(self, keypoints_2d: np.ndarray, flip_test: bool) -> np.ndarray:
        """(T, J, 3) for one sequence of (T, J, 2) normalised 2D: :func:`mlpgraph.evaluation.predict`.

        Temporal models get windows of ``frames`` centred on each frame, edge-padded at the ends.
        """
        from mlpgraph.data.batches import PoseArrays
        from mlpgraph.evaluation import model_pad, predict

        count = keypoints_2d.shape[0]
        data = PoseArrays.from_numpy(
            keypoints_2d,
            np.zeros((count, self.layout.num_joints, 3), dtype=np.float32),
            np.array([[0, count]], dtype=np.int64),
            layout=self.layout.name,
            device=self.device,
        )
        pred = predict(self.model, data, model_pad(self.model), flip_test=flip_test, batch_size=self.batch_size)
        return pred.detach().cpu().numpy().astype(np.float32)

    def _non_finite_message(self, exc: NonFinitePrediction, prepared: PreparedKeypoints, normalised: np.ndarray) -> str:
        """The one line for a NaN or infinite pose: which frames; the keypoints or the weights at fault."""
        from mlpgraph.evaluation import model_pad

        pad, count = model_pad(self.model), len(normalised)
        window = np.clip(exc.samples[:, None] + np.arange(-pad, pad + 1), 0, count - 1)
        largest = float(np.abs(normalised[window]).max())
        frames = frame_list(prepared.frames[exc.samples])
        if largest > FAR_OUTSIDE_IMAGE:
            return (
                f"{prepared.source}: the network's output is NaN or infinite for {frames}: their keypoints lie "
                f"far outside the {prepared.width:g} x {prepared.height:g} image ({largest:.3g} half-widths from "
                "its centre)"
            )
        return (
            f"{self.source}: the network's output is NaN or infinite for {frames} of {prepared.source}, whose "
            "keypoints are within the image: the checkpoint's weights overflow"
        )


def keypoints_from_arrays(
    keypoints: np.ndarray,
    scores: np.ndarray | None,
    width: float,
    height: float,
    joint_set: str,
    model_layout: SkeletonLayout,
) -> Keypoints2D:
    """In-memory (T, K, 2) pixels (and (T, K) scores) of joint set ``joint_set`` as a checked :class:`Keypoints2D`."""
    where = "keypoints"
    names = input_joint_names(joint_set, model_layout)
    points = np.asarray(keypoints, dtype=np.float64)
    if points.ndim != 3 or points.shape[1:] != (len(names), 2) or len(points) == 0:
        raise UserInputError(f"{where}: expected shape (T, {len(names)}, 2) for {joint_set}, got {points.shape}")
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != points.shape[:2]:
            raise UserInputError(f"scores: expected shape {points.shape[:2]}, got {scores.shape}")
        if not np.isfinite(scores).all():
            raise UserInputError("scores: NaN or infinite values")
    if not np.isfinite(points).all():
        raise UserInputError(f"{where}: NaN or infinite values (mark a missing joint with a low score instead)")
    w, h = positive_size(width, "width", where), positive_size(height, "height", where)
    frames = np.arange(len(points), dtype=np.int64)
    if scores is None and names != model_layout.joint_names:
        scores = np.ones(points.shape[:2])
    return Keypoints2D(points, scores, frames, frames.copy(), w, h, names, where)


def input_joint_names(joint_set: str, model_layout: SkeletonLayout) -> tuple[str, ...]:
    """The joint names of input joint set ``joint_set``: a detector's (``coco17``, ...) or the model's layout."""
    if joint_set in DETECTOR_JOINT_SETS:
        return DETECTOR_JOINT_SETS[joint_set]
    if joint_set == model_layout.name:
        return model_layout.joint_names
    known = ", ".join([*DETECTOR_JOINT_SETS, model_layout.name])
    raise UserInputError(f"layout {joint_set!r}: unknown joint set for this model (expected one of {known})")


def frame_list(frames: np.ndarray, shown: int = 5) -> str:
    """``frame 7`` or ``frames 3, 4, 9, ... (12 in all)``: image ids for a message."""
    ids = [str(int(f)) if np.issubdtype(np.asarray(frames).dtype, np.integer) else str(f) for f in frames[:shown]]
    if len(frames) == 1:
        return f"frame {ids[0]}"
    more = f", ... ({len(frames)} in all)" if len(frames) > shown else ""
    return f"frames {', '.join(ids)}{more}"
