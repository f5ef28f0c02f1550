"""What the evaluation stages share: the experiment's splits, the two selected models, and figure records.

Every evaluation stage measures two models of an experiment, the last epoch's (``final.pt``) and
the epoch best on test (``best.pt``, the release's rule, reported beside it): :func:`selections`
yields them and notices when both hold the same weights, so the figures are measured once and
relabelled (:func:`relabelled`). :class:`EvaluationSetup` loads what the stage reads; the
``*_figures`` functions turn a protocol's result into the records of :mod:`mlpgraph.results`.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from mlpgraph.checkpoints import load_checkpoint
from mlpgraph.data.batches import PoseArrays
from mlpgraph.devices import params_device
from mlpgraph.errors import UserInputError
from mlpgraph.evaluation import NonFinitePrediction, evaluate_h36m, inference_time
from mlpgraph.experiments import Experiment
from mlpgraph.io import sha256_file
from mlpgraph.models.refine import mean_bone_lengths
from mlpgraph.provenance import data_description
from mlpgraph.results import ActionFigures, DataDescription, ErrorPair, H36mFigures, InferenceTime, Record
from mlpgraph.tracking import StageRun
from mlpgraph.training import BEST, BEST_SELECTION, FINAL, FINAL_SELECTION
from mlpgraph.training_stage import ORACLE_NOTE, load_split

R = TypeVar("R", bound=Record)

# The two models every figure is given for: (key in the metrics file, checkpoint, selection label).
SELECTIONS = (("last_epoch", FINAL, FINAL_SELECTION), ("best_on_test", BEST, BEST_SELECTION))

ESTIMATED_NOTE = "root depth estimated from the 2D and the training set's mean bone lengths"
# The refined figures every refinement evaluation gives: (predict's root_depth, key in the metrics file, note).
REFINED_VARIANTS = (("gt", "refined_gt_root", ORACLE_NOTE), ("estimated", "refined_estimated_root", ESTIMATED_NOTE))


@dataclass(frozen=True)
class Selection:
    """One model to measure: its key in the metrics file, its label, its checkpoint, and an earlier twin."""

    key: str
    label: str
    checkpoint: Path
    twin: str | None  # the key of an earlier selection holding the same weights, if any


def selections(models_dir: Path) -> Iterator[Selection]:
    """:data:`SELECTIONS` for ``models_dir``; ``twin`` set when an earlier one holds the same weights.

    The same training epoch, or the same file for imported checkpoints, is the same network: its
    figures are reused instead of measured again, which halves the work when the last epoch is the best.
    """
    seen: dict[Any, str] = {}
    for key, file, label in SELECTIONS:
        path = models_dir / file
        epoch = load_checkpoint(path)["meta"].get("epoch")
        identity = ("epoch", epoch) if epoch is not None else ("file", sha256_file(path))
        twin = seen.setdefault(identity, key)
        yield Selection(key, label, path, twin if twin != key else None)


def measure_selections(
    models_dir: Path,
    measure: Callable[[Selection], R],
    run: StageRun,
    logged: Callable[[R], Mapping[str, float]],
    data: str | os.PathLike[str] | None = None,
) -> dict[str, R]:
    """Each selection's figures (``last_epoch``, ``best_on_test``): ``measure``-d, or a twin's relabelled.

    ``logged(figures)`` are the figures each selection logs to the stage's MLflow ``run``. A
    non-finite prediction (:class:`~mlpgraph.evaluation.NonFinitePrediction`) is one line naming
    the checkpoint and ``data`` (the file the inputs came from).
    """
    figures: dict[str, R] = {}
    for chosen in selections(models_dir):
        if chosen.twin:
            figures[chosen.key] = relabelled(figures[chosen.twin], chosen.label)
        else:
            try:
                figures[chosen.key] = measure(chosen)
            except NonFinitePrediction as exc:
                source = f"{chosen.checkpoint} on {data}" if data is not None else str(chosen.checkpoint)
                raise UserInputError(f"{source}: {exc}") from None
        run.log_metrics({chosen.key: logged(figures[chosen.key])})
    return figures


def relabelled(figures: R, label: str) -> R:
    """A copy of ``figures`` with every ``selection`` field set to ``label``."""

    def relabel(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: label if k == "selection" else relabel(v) for k, v in value.items()}
        return copy.deepcopy(value)

    return type(figures).from_dict(relabel(figures.to_dict()))


@dataclass(frozen=True)
class EvaluationSetup:
    """What the Human3.6M evaluation stages start from: the experiment, its splits and the protocol settings."""

    experiment: Experiment
    device: torch.device
    flip: bool
    batch: int
    train: PoseArrays
    test: PoseArrays
    fingerprint: str

    @classmethod
    def load(
        cls, params: Mapping[str, Any], experiment: Experiment, processed: Path, params_file: str | None = None
    ) -> EvaluationSetup:
        """Both splits of ``processed`` on ``train.device`` (checked first), and ``evaluate``'s flip and batch size.

        ``params_file`` is named by the error for a device this machine lacks.
        """
        device = params_device(params, params_file)
        test = load_split(params, processed, "test", device, experiment)
        return cls(
            experiment=experiment,
            device=device,
            flip=params["evaluate"]["flip_test"],
            batch=params["evaluate"]["batch_size"],
            train=load_split(params, processed, "train", device, experiment),
            test=test,
            fingerprint=str(test.attrs.get("fingerprint")),
        )

    def header(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The fields every Human3.6M metrics file of an experiment starts with."""
        return {
            "experiment": self.experiment.name,
            "model": self.experiment.model,
            "keypoints": self.experiment.keypoints,
            "frames": self.experiment.frames,
            "flip_test": self.flip,
            "data": self.data(params),
        }

    def data(self, params: Mapping[str, Any]) -> DataDescription:
        return data_description(params, self.fingerprint)


def h36m_figures(result: Mapping[str, Any], label: str, note: str | None = None) -> H36mFigures:
    """The record of one :func:`~mlpgraph.evaluation.evaluate_h36m` result."""
    return H36mFigures(
        selection=label,
        P1=result["P1"],
        P2=result["P2"],
        P1_sample_mean=result["P1_sample_mean"],
        P2_sample_mean=result["P2_sample_mean"],
        num_samples=result["num_samples"],
        per_joint=dict(result["per_joint"]),
        per_action={
            family: ActionFigures(P1=r["P1"], P2=r["P2"], num_samples=r["num_samples"])
            for family, r in result["per_family"].items()
        },
        note=note,
    )


def training_bone_lengths(train: PoseArrays) -> torch.Tensor:
    """(B,) the body size the estimated root depth assumes: the training split's mean bone lengths."""
    return mean_bone_lengths(train.poses_3d, train.layout)


def mean_pose_baseline(train: PoseArrays, test: PoseArrays) -> ErrorPair:
    """P1/P2 of predicting the training set's mean root-relative pose for every test sample."""
    mean = train.poses_3d.mean(dim=0, keepdim=True)
    result = evaluate_h36m(mean.expand_as(test.poses_3d), test)
    return ErrorPair(P1=result["P1"], P2=result["P2"])


def timing(model: nn.Module, frames: int, joints: int, batch_sizes: list[int]) -> InferenceTime:
    """Inference time of ``model`` as deployed: eval mode, no autograd, its default arithmetic.

    ``path`` records the arithmetic of the largest batch (``folded``, ``joint_major`` or ``release``
    for MLP-Graph, ``plain`` for networks with one arithmetic).
    """
    deployed = copy.deepcopy(model).eval()
    device = next(deployed.parameters()).device
    measured = inference_time(deployed, (frames, joints, 2), device, batch_sizes=tuple(batch_sizes))
    path_for = getattr(deployed, "path_for", None)
    with torch.no_grad():
        measured["path"] = path_for(max(batch_sizes)) if path_for is not None else "plain"
    return InferenceTime.from_dict(measured)
