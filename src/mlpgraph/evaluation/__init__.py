"""Evaluation protocols (docs/model.md, "Evaluation protocols").

Prediction with test-time flip and optional pose refinement (:mod:`~mlpgraph.evaluation.prediction`),
Human3.6M P1/P2 per action family (:mod:`~mlpgraph.evaluation.h36m`), MPI-INF-3DHP PCK/AUC per scene
(:mod:`~mlpgraph.evaluation.mpi3dhp`), the derived hard-pose set (:mod:`~mlpgraph.evaluation.hard_poses`; its
exact nearest-pose search: :mod:`~mlpgraph.evaluation.nearest_pose` over a :mod:`~mlpgraph.evaluation.pose_tree`)
and inference time (:mod:`~mlpgraph.evaluation.timing`).

Predictions are root-relative metres; the metrics (:mod:`mlpgraph.metrics`) are taken in mm. Every
result is a JSON-serialisable dict of plain floats, ints and strings whose figures have upper-case
names: ``P1``, ``P2``, ``P1_sample_mean``, ``P2_sample_mean``, ``PCK``, ``AUC``.
"""

from mlpgraph.evaluation.h36m import evaluate_h36m, evaluate_poses
from mlpgraph.evaluation.hard_poses import derive_hard_poses
from mlpgraph.evaluation.mpi3dhp import SCENES, evaluate_3dhp
from mlpgraph.evaluation.prediction import NonFinitePrediction, model_pad, predict
from mlpgraph.evaluation.timing import inference_time

__all__ = [
    "SCENES",
    "NonFinitePrediction",
    "derive_hard_poses",
    "evaluate_3dhp",
    "evaluate_h36m",
    "evaluate_poses",
    "inference_time",
    "model_pad",
    "predict",
]
