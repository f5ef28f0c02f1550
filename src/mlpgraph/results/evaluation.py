"""The evaluation stages' files: Human3.6M, refinement, MPI-INF-3DHP, hard poses, real mocap, and skips.

``h36m/EXP.json`` is :class:`H36mEvaluation`, ``h36m/EXP_refine.json`` :class:`RefineEvaluation`,
``3dhp/EXP.json`` :class:`DhpEvaluation` (:class:`DhpUnavailable` without a test file),
``hard/EXP.json`` :class:`HardEvaluation`, ``real/EXP.json`` :class:`RealMocapEvaluation`,
``real/EXP_refine.json`` :class:`RealRefineEvaluation`; any
stage's file of a pretrained experiment without its release folder is :class:`Skipped`. Each figure
is given for two models, ``last_epoch`` and ``best_on_test`` (the selection rule is in each one's
``selection``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mlpgraph.results.records import OPTIONAL_KEY, Record

# --------------------------------------------------------------------------------------------
# Shared parts


@dataclass(frozen=True, kw_only=True)
class DataDescription(Record):
    """What the figures were measured on (``data``): synthetic data have a ``scale``, the user's a ``dir``."""

    source: str
    name: str
    layout: str
    preset: str | None
    fingerprint: str | None
    scale: str | None = field(default=None, metadata=OPTIONAL_KEY)
    dir: str | None = field(default=None, metadata=OPTIONAL_KEY)
    label: str


@dataclass(frozen=True, kw_only=True)
class Skipped(Record):
    """Any stage's file for a pretrained experiment without its release folder: why nothing was measured.

    The training stages also record ``source`` and ``data``.
    """

    experiment: str
    model: str
    source: str | None = field(default=None, metadata=OPTIONAL_KEY)
    data: DataDescription | None = field(default=None, metadata=OPTIONAL_KEY)
    available: Literal[False] = False
    reason: str
    mlflow_run_id: str | None

    @classmethod
    def matches(cls, data: Mapping[str, Any]) -> bool:
        """A skip: ``available: false`` and no evaluation protocol (``flip_test``)."""
        return data.get("available") is False and "flip_test" not in data


# --------------------------------------------------------------------------------------------
# Human3.6M evaluation (h36m/EXP.json) and refinement evaluation (h36m/EXP_refine.json)


@dataclass(frozen=True, kw_only=True)
class ErrorPair(Record):
    """P1 (MPJPE) and P2 (PA-MPJPE) in mm."""

    P1: float
    P2: float


@dataclass(frozen=True, kw_only=True)
class ActionFigures(Record):
    """One action family's P1 / P2 (mm) and its number of test samples."""

    P1: float
    P2: float
    num_samples: int


@dataclass(frozen=True, kw_only=True)
class H36mFigures(Record):
    """One model's Human3.6M figures: P1 / P2 as the mean over action families, per action and per joint."""

    selection: str
    P1: float
    P2: float
    P1_sample_mean: float
    P2_sample_mean: float
    num_samples: int
    per_joint: dict[str, float]
    per_action: dict[str, ActionFigures]
    note: str | None = field(default=None, metadata=OPTIONAL_KEY)


@dataclass(frozen=True, kw_only=True)
class BatchTiming(Record):
    """Median seconds per forward pass at one batch size."""

    median_s: float
    poses_per_s: float
    runs: int


@dataclass(frozen=True, kw_only=True)
class InferenceTime(Record):
    """Where and how fast the model ran: per batch size (the keys are the sizes as strings)."""

    device: str
    device_name: str
    torch_threads: int
    batch: dict[str, BatchTiming]
    path: str


@dataclass(frozen=True, kw_only=True)
class H36mEvaluation(Record):
    """``h36m/EXP.json``: the lifting network on the test subjects, for both selections."""

    experiment: str
    model: str
    keypoints: str
    frames: int
    flip_test: bool
    data: DataDescription
    mean_pose_baseline: ErrorPair
    last_epoch: H36mFigures
    best_on_test: H36mFigures
    parameters: int
    model_config: dict[str, Any]
    inference_time: InferenceTime
    mlflow_run_id: str | None


@dataclass(frozen=True, kw_only=True)
class RefinedSelection(Record):
    """One selection of the refinement run: without refinement, refined with oracle and estimated root depth."""

    selection: str
    without_refinement: H36mFigures
    refined_gt_root: H36mFigures
    refined_estimated_root: H36mFigures


@dataclass(frozen=True, kw_only=True)
class RefineEvaluation(Record):
    """``h36m/EXP_refine.json``: the refinement run's networks, for both selections."""

    experiment: str
    model: str
    keypoints: str
    frames: int
    flip_test: bool
    data: DataDescription
    refinement: dict[str, Any]
    last_epoch: RefinedSelection
    best_on_test: RefinedSelection
    mlflow_run_id: str | None


# --------------------------------------------------------------------------------------------
# MPI-INF-3DHP (3dhp/EXP.json) and hard poses (hard/EXP.json)


@dataclass(frozen=True, kw_only=True)
class PckFigures(Record):
    """PCK@150 mm and AUC (%) over some 3DHP poses."""

    PCK: float
    AUC: float
    num_samples: int


@dataclass(frozen=True, kw_only=True)
class DhpFigures(Record):
    """One model's MPI-INF-3DHP figures; per scene and sequence only when the file labels them."""

    selection: str
    PCK: float
    AUC: float
    num_samples: int
    source_format: str
    flip_test: bool
    per_scene: dict[str, PckFigures] | None = field(default=None, metadata=OPTIONAL_KEY)
    per_sequence: dict[str, PckFigures] | None = field(default=None, metadata=OPTIONAL_KEY)


@dataclass(frozen=True, kw_only=True)
class DhpEvaluation(Record):
    """``3dhp/EXP.json``: cross-data-set figures for both selections."""

    experiment: str
    model: str
    flip_test: bool
    available: Literal[True] = True
    file: str
    data: DataDescription
    last_epoch: DhpFigures
    best_on_test: DhpFigures
    mlflow_run_id: str | None


@dataclass(frozen=True, kw_only=True)
class DhpUnavailable(Record):
    """``3dhp/EXP.json`` when the raw folder has no MPI-INF-3DHP test file."""

    experiment: str
    model: str
    flip_test: bool
    available: Literal[False] = False
    reason: str

    @classmethod
    def matches(cls, data: Mapping[str, Any]) -> bool:
        """``available: false`` with the evaluation protocol recorded (a :class:`Skipped` has none)."""
        return data.get("available") is False and "flip_test" in data


@dataclass(frozen=True, kw_only=True)
class HardFigures(Record):
    """One model's P1 / P2 (mm) on the hard poses."""

    selection: str
    P1: float
    P2: float
    num_samples: int


@dataclass(frozen=True, kw_only=True)
class HardEvaluation(Record):
    """``hard/EXP.json``: the hard-pose set's figures (``source``: ``derived`` or ``user``) for both selections."""

    experiment: str
    model: str
    flip_test: bool
    source: str
    data: DataDescription
    last_epoch: HardFigures
    best_on_test: HardFigures
    mlflow_run_id: str | None


# --------------------------------------------------------------------------------------------
# Real motion capture (real/EXP.json and real/EXP_refine.json)


@dataclass(frozen=True, kw_only=True)
class ClipFigures(Record):
    """One real clip's P1 / P2 (mm) over its frames in every camera (``num_samples`` = frames x cameras)."""

    P1: float
    P2: float
    frames: int
    num_samples: int


@dataclass(frozen=True, kw_only=True)
class RealFigures(Record):
    """One model's P1 / P2 (mm) on the real clips: overall, every frame of every camera weighted alike, and per clip."""

    selection: str
    P1: float
    P2: float
    num_samples: int
    per_clip: dict[str, ClipFigures]
    note: str | None = field(default=None, metadata=OPTIONAL_KEY)


@dataclass(frozen=True, kw_only=True)
class RealBaseline(Record):
    """The clip-mean-pose baseline's P1 / P2 (mm) on the real clips; ``definition`` says exactly what it predicts."""

    definition: str
    P1: float
    P2: float
    num_samples: int
    per_clip: dict[str, ClipFigures]


@dataclass(frozen=True, kw_only=True)
class RealMocapEvaluation(Record):
    """``real/EXP.json``: the lifting network on real people's motion capture, for both selections.

    ``file`` and ``sha256`` name the mocap file; ``cameras`` and ``input_2d`` say how the network
    inputs were made from it; ``trained_on`` is the data the network was trained on (not these
    clips; its fingerprint is not read here). ``clip_mean_pose`` is the oracle baseline beside it.
    """

    experiment: str
    model: str
    keypoints: str
    frames: int
    flip_test: bool
    file: str
    sha256: str
    layout: str
    cameras: str
    input_2d: str
    trained_on: DataDescription
    clip_mean_pose: RealBaseline
    last_epoch: RealFigures
    best_on_test: RealFigures
    mlflow_run_id: str | None


@dataclass(frozen=True, kw_only=True)
class RealRefinedSelection(Record):
    """One selection of the refinement run on the real clips: without refinement, refined with each root depth."""

    selection: str
    without_refinement: RealFigures
    refined_gt_root: RealFigures
    refined_estimated_root: RealFigures


@dataclass(frozen=True, kw_only=True)
class RealRefineEvaluation(Record):
    """``real/EXP_refine.json``: the refinement run's networks on real motion capture, for both selections.

    The fields before ``refinement`` are :class:`RealMocapEvaluation`'s; the estimated root depth
    assumes the training split's mean bone lengths (``trained_on``), not the real subjects'.
    """

    experiment: str
    model: str
    keypoints: str
    frames: int
    flip_test: bool
    file: str
    sha256: str
    layout: str
    cameras: str
    input_2d: str
    trained_on: DataDescription
    clip_mean_pose: RealBaseline
    refinement: dict[str, Any]
    last_epoch: RealRefinedSelection
    best_on_test: RealRefinedSelection
    mlflow_run_id: str | None
