"""The real-data check: lifting networks on real people's motion capture, seen through the Human3.6M cameras.

Every other figure of the pipeline is measured on the synthetic test split. This protocol takes
real motion capture (a community-style ``.npz``, ``positions_3d`` = {subject: {action: (T, J, 3)}},
metres, **Y up**, 50 fps; ``tests/data/real_mocap/README.md``) and makes network inputs from it
exactly as the synthetic set's are made:

1. each clip to the Human3.6M world frame: ``(x, y, z) -> (x, -z, y)`` (Z up, right-handed), then
   its mean pelvis position on the ground plane moved to the capture centre the synthetic
   subjects move around (:data:`~mlpgraph.data.synthetic.H36M_CAPTURE_CENTRE`);
2. its joints mapped by name to the experiment's layout (h36m16 drops ``neck``);
3. projected through the four Human3.6M cameras of :data:`CAMERA_SUBJECT` by
   :func:`~mlpgraph.data.projection.project_dataset` (the synthetic generator's projection, with
   distortion), normalised with the camera's ``normalise`` (``normalise_screen``) as preprocessing
   does; the 3D targets are the camera-space poses made root-relative;
4. for ``hr`` experiments trained on the synthetic set, the generator's detector noise
   (:func:`~mlpgraph.data.synthetic.add_detector_noise`) with a fixed seed; any other 2D source
   has no noise model for 3D-only input, so it gets the projected ground truth (recorded).

Each (clip, camera) is one sequence: temporal windows stay inside it. P1 / P2 (mm) per clip and
overall, frame-weighted (every frame of every camera counts once), beside the clip-mean-pose
baseline (:func:`clip_mean_pose`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from mlpgraph.cameras import Camera, CameraSet, load_cameras
from mlpgraph.data import schema
from mlpgraph.data.batches import PoseArrays
from mlpgraph.data.formats import read_positions_3d
from mlpgraph.data.motion import make_rng
from mlpgraph.data.projection import centre_on_ground, project_dataset, y_up_to_z_up
from mlpgraph.data.synthetic import H36M_CAPTURE_CENTRE, add_detector_noise
from mlpgraph.evaluation.h36m import errors_mm
from mlpgraph.evaluation.prediction import predict
from mlpgraph.layouts import SkeletonLayout, get_layout, layout_for_joint_count, root_relative, select_joints
from mlpgraph.models.refine import PoseRefinement
from mlpgraph.results import DataDescription, RealBaseline

if TYPE_CHECKING:
    from mlpgraph.experiments import Experiment

log = logging.getLogger(__name__)

# Whose calibration of the four Human3.6M cameras the clips are seen through: S9, a test subject.
CAMERA_SUBJECT = "S9"
# The 2D sources whose simulation from 3D the synthetic generator defines (data.source synthetic).
SIMULATED_2D = {"hr": "the synthetic generator's hr detector noise (fixed seed) on the projected ground truth"}
GT_2D = "ground-truth 2D: the 3D projected through the cameras"
CLIP_MEAN_POSE = (
    "clip mean pose (oracle): for each clip and camera, the mean over the clip's frames of the "
    "root-relative camera-space 3D target, predicted for every frame of that clip in that camera"
)


@dataclass(frozen=True)
class MocapClip:
    """One real clip: ``world`` (T, J, 3) float64 metres, Human3.6M world frame (Z up), centred on the capture area."""

    subject: str
    action: str
    world: np.ndarray

    @property
    def name(self) -> str:
        """``subject / action``: the clip's key in the metrics file."""
        return f"{self.subject} / {self.action}"


def to_h36m_world(positions: np.ndarray, root: int) -> np.ndarray:
    """Y-up mocap (T, J, 3) metres to the Human3.6M world: Z up, mean root on the ground at the capture centre."""
    world = centre_on_ground(y_up_to_z_up(np.asarray(positions, dtype=np.float64)), root)
    world[..., :2] += np.asarray(H36M_CAPTURE_CENTRE)
    return world


def read_real_mocap(path: str | os.PathLike[str], layout: str | SkeletonLayout) -> list[MocapClip]:
    """Every clip of a real mocap file, in the Human3.6M world frame and ``layout``'s joints (by name).

    Read through the restricted unpickler and the 3D checks of
    :func:`~mlpgraph.data.formats.read_positions_3d` (one-line errors naming the file); the file's
    layout follows from its joint count (16, 17 or 32, Human3.6M's joint order).
    """
    target = get_layout(layout)
    clips = []
    for subject, actions in read_positions_3d(path).items():
        for action, poses in actions.items():
            source = layout_for_joint_count(poses.shape[1], str(path))
            world = to_h36m_world(poses, source.root)
            clips.append(MocapClip(subject, action, select_joints(world, source, target)))
    return clips


def input_2d(keypoints: str, data_source: str) -> str:
    """How the 2D of an experiment with 2D source ``keypoints`` is made from the real 3D (a sentence)."""
    if data_source == "synthetic" and keypoints in SIMULATED_2D:
        return SIMULATED_2D[keypoints]
    if keypoints == "gt":
        return GT_2D
    return f"{GT_2D} (the experiment's {keypoints!r} 2D has no noise model for 3D-only input)"


@dataclass(frozen=True)
class RealMocapSet:
    """The clips seen through the cameras: per-sample arrays in (clip, camera, frame) order, ready for :meth:`arrays`.

    ``poses_2d`` normalised screen coordinates, ``poses_3d`` root-relative camera-space metres,
    ``root_3d`` the camera-space root; ``sequences`` (S, 2) (start, length) per (clip, camera),
    ``intrinsics`` (S, 6) as a processed file's; ``clip`` (N,) the index into ``clip_names``.
    """

    poses_2d: np.ndarray
    poses_3d: np.ndarray
    root_3d: np.ndarray
    sequences: np.ndarray
    intrinsics: np.ndarray
    clip: np.ndarray
    clip_names: tuple[str, ...]
    clip_frames: tuple[int, ...]
    camera_ids: tuple[str, ...]
    layout: str
    input_2d: str

    def arrays(self, device: str | torch.device = "cpu") -> PoseArrays:
        """The set as :class:`~mlpgraph.data.batches.PoseArrays` (``meta``: root_3d and intrinsics, for refinement)."""
        meta = {schema.ROOT_3D: self.root_3d, schema.INTRINSICS: self.intrinsics}
        return PoseArrays.from_numpy(
            self.poses_2d, self.poses_3d, self.sequences, layout=self.layout, device=device, meta=meta
        )


def _seen(
    clips: list[MocapClip], layout: SkeletonLayout, cameras: CameraSet, keypoints: str, data_source: str, seed: int
) -> list[list[tuple[Camera, np.ndarray, np.ndarray]]]:
    """Per clip, per camera: (the camera, 2D pixels (T, J, 2) of the 2D source, camera-space 3D (T, J, 3))."""
    keys = [str(i) for i in range(len(clips))]
    pixels = project_dataset({CAMERA_SUBJECT: {k: c.world for k, c in zip(keys, clips, strict=True)}}, cameras)
    noisy = data_source == "synthetic" and keypoints in SIMULATED_2D
    views = []
    for key, clip in zip(keys, clips, strict=True):
        per_camera = []
        for index, camera in enumerate(cameras.cameras(CAMERA_SUBJECT)):
            seen = pixels[CAMERA_SUBJECT][key][index]
            if noisy:
                rng = make_rng(seed, "real_mocap", keypoints, clip.subject, clip.action, index)
                seen = add_detector_noise(seen, layout, rng)[0]
            per_camera.append((camera, seen, camera.world_to_camera(clip.world)))
        views.append(per_camera)
    return views


def build_real_set(
    clips: list[MocapClip],
    layout: str | SkeletonLayout,
    cameras: CameraSet,
    keypoints: str = "gt",
    data_source: str = "synthetic",
    seed: int = 0,
) -> RealMocapSet:
    """``clips`` (in ``layout``) seen through every camera of :data:`CAMERA_SUBJECT`, as the experiment's 2D source.

    The 2D is made as :func:`input_2d` says (``seed``: the detector noise's, ``data.seed``); the
    arrays are laid out like a processed file's (:mod:`mlpgraph.data.preprocess`).
    """
    lay = get_layout(layout)
    if not clips or any(c.world.shape[1] != lay.num_joints for c in clips):
        raise ValueError(f"build_real_set: needs clips in layout {lay.name} ({lay.num_joints} joints)")
    poses_2d, cam_3d, intrinsics, clip_index, lengths = [], [], [], [], []
    views = _seen(clips, lay, cameras, keypoints, data_source, seed)
    for number, per_camera in enumerate(views):
        for camera, pixels, points in per_camera:
            poses_2d.append(camera.normalise(pixels.astype(np.float64)))
            cam_3d.append(points)
            focal, centre = camera.normalised_intrinsics()
            intrinsics.append((*focal, *centre, camera.res_w, camera.res_h))
            clip_index.append(np.full(len(points), number))
            lengths.append(len(points))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    cam = np.concatenate(cam_3d)
    return RealMocapSet(
        poses_2d=np.concatenate(poses_2d).astype(np.float32),
        poses_3d=root_relative(cam, lay.root).astype(np.float32),
        root_3d=cam[:, lay.root].astype(np.float32),
        sequences=np.stack([starts, lengths], axis=1).astype(np.int64),
        intrinsics=np.asarray(intrinsics, dtype=np.float32),
        clip=np.concatenate(clip_index).astype(np.int64),
        clip_names=tuple(c.name for c in clips),
        clip_frames=tuple(len(c.world) for c in clips),
        camera_ids=tuple(camera.id for camera, _, _ in views[0]),
        layout=lay.name,
        input_2d=input_2d(keypoints, data_source),
    )


def experiment_real_set(mocap: str | os.PathLike[str], data: Mapping[str, Any], keypoints: str) -> RealMocapSet:
    """The clips of ``mocap`` as an experiment with 2D source ``keypoints`` sees them (``data``: params' ``data``)."""
    clips = read_real_mocap(mocap, data["layout"])
    return build_real_set(clips, data["layout"], load_cameras(), keypoints, data["source"], data["seed"])


def cameras_description(real: RealMocapSet) -> str:
    """Which cameras the clips were seen through, for the record."""
    return f"Human3.6M cameras {', '.join(real.camera_ids)} as calibrated for {CAMERA_SUBJECT}"


def clip_mean_pose(real: RealMocapSet) -> np.ndarray:
    """(N, J, 3) the clip-mean-pose prediction: each (clip, camera) sequence's mean root-relative 3D target, per frame.

    An oracle baseline: it knows the clip's own poses (their mean), only not which frame is which.
    A lifting network that is worse than this on a clip recovers less of the motion than a
    constant pose fitted to the answer.
    """
    sequence = np.repeat(np.arange(len(real.sequences)), real.sequences[:, 1])
    sums = np.zeros((len(real.sequences), *real.poses_3d.shape[1:]), dtype=np.float64)
    np.add.at(sums, sequence, real.poses_3d.astype(np.float64))
    means = sums / real.sequences[:, 1, None, None]
    return means[sequence]


def real_figures(pred: torch.Tensor | np.ndarray, real: RealMocapSet) -> dict[str, Any]:
    """P1 / P2 (mm) of root-relative metre predictions (N, J, 3): overall (frame-weighted) and per clip.

    Returns ``{"P1", "P2", "num_samples", "per_clip": {clip name: {"P1", "P2", "frames", "num_samples"}}}``;
    a sample is one frame in one camera.
    """
    pred = torch.as_tensor(pred)
    joint_mm, p2 = errors_mm(root_relative(pred, get_layout(real.layout).root), torch.as_tensor(real.poses_3d))
    p1 = joint_mm.mean(axis=1)
    per_clip = {}
    for number, name in enumerate(real.clip_names):
        mask = real.clip == number
        per_clip[name] = {
            "P1": float(p1[mask].mean()),
            "P2": float(p2[mask].mean()),
            "frames": int(real.clip_frames[number]),
            "num_samples": int(mask.sum()),
        }
    return {"P1": float(p1.mean()), "P2": float(p2.mean()), "num_samples": len(p1), "per_clip": per_clip}


def evaluate_real_mocap(
    model: nn.Module,
    real: RealMocapSet,
    pad: int,
    flip_test: bool = True,
    batch_size: int = 1024,
    device: str | torch.device = "cpu",
    refine: PoseRefinement | None = None,
    root_depth: str = "gt",
    bone_lengths: torch.Tensor | None = None,
) -> dict[str, Any]:
    """:func:`real_figures` of ``model``'s predictions (windows of ``2 * pad + 1`` frames, test-time flip as asked).

    With ``refine`` the predictions are refined as :func:`~mlpgraph.evaluation.prediction.predict`
    does: the clips' camera-space root depth for ``root_depth`` "gt" (an oracle), or the depth
    estimated from the 2D with ``bone_lengths`` (the training split's) for "estimated".
    """
    data = real.arrays(device)
    pred = predict(model, data, pad, flip_test, batch_size, refine, root_depth, bone_lengths)
    result = real_figures(pred, real)
    how = f"refined ({root_depth} root depth)" if refine is not None else "lifting network"
    p1, p2, count = result["P1"], result["P2"], result["num_samples"]
    log.info("real mocap, %s: P1 %.1f mm, P2 %.1f mm over %d poses", how, p1, p2, count)
    return result


def real_record_fields(
    experiment: Experiment, mocap: os.PathLike[str], sha256: str, real: RealMocapSet, flip_test: bool,
    trained_on: DataDescription,
) -> dict[str, Any]:  # fmt: skip
    """The fields every real-mocap record shares: the experiment, the clips and how they were seen, the baseline.

    Both ``evaluate_real`` and ``evaluate_real_refine`` start their record from these; the
    clip-mean-pose baseline is computed here, once per stage.
    """
    baseline = real_figures(clip_mean_pose(real), real)
    return {
        "experiment": experiment.name,
        "model": experiment.model,
        "keypoints": experiment.keypoints,
        "frames": experiment.frames,
        "flip_test": flip_test,
        "file": str(mocap),
        "sha256": sha256,
        "layout": real.layout,
        "cameras": cameras_description(real),
        "input_2d": real.input_2d,
        "trained_on": trained_on,
        "clip_mean_pose": RealBaseline.from_dict({"definition": CLIP_MEAN_POSE, **baseline}),
    }
