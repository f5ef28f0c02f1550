"""The training stages' work: train one experiment's networks (or import the release's) and record it.

``stages/train_spatial.py`` and ``stages/train_refine.py`` call :func:`run_training_stage`. A trained
experiment: the recipe from ``params.yaml`` (:func:`recipe_for`), the processed file's training
split in memory, :func:`mlpgraph.training.train` with a per-epoch Human3.6M evaluation, then the
summary (:class:`~mlpgraph.results.TrainSummary`) and curve files. A pretrained experiment imports
the MLP-Graph release's files instead (:mod:`mlpgraph.release_stage`).

Under ``torchrun`` with several processes every rank trains on its device inside a process group
set up here; rank 0 alone evaluates, opens the MLflow run and writes files. The run ends by logging
``final.pt``'s lifting network as a registered MLflow model (:meth:`~mlpgraph.tracking.StageRun.log_model`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mlpgraph import distributed
from mlpgraph.checkpoints import networks_from_checkpoint
from mlpgraph.data.batches import PoseArrays
from mlpgraph.devices import params_device
from mlpgraph.errors import UserInputError
from mlpgraph.evaluation import evaluate_h36m, predict
from mlpgraph.experiments import Experiment
from mlpgraph.export import EXAMPLE_ROWS, loggable_lifting_model
from mlpgraph.models import build_model, count_parameters
from mlpgraph.outputs import CHECKPOINTS, Output, atomic_outputs
from mlpgraph.provenance import data_description, stage_params
from mlpgraph.release_stage import import_release_stage
from mlpgraph.results import EpochRecord, TrainingCurve, TrainSummary, write_record
from mlpgraph.tracking import NoRun, StageRun, registered_model_name
from mlpgraph.training import BEST_SELECTION, FINAL, FINAL_SELECTION, Recipe, seed_everything, train
from mlpgraph.training.state import TrainResult

log = logging.getLogger(__name__)

ORACLE_NOTE = "root depth from the ground truth (the release's oracle)"


@dataclass(frozen=True)
class TrainingOutputs:
    """Where a training stage writes: the checkpoint folder, the summary and the curve files."""

    models: Path
    summary: Path
    curve: Path

    def outputs(self) -> list[Output]:
        """The three as :class:`~mlpgraph.outputs.Output`\\ s, named by the stages' options."""
        return [
            Output(self.models, CHECKPOINTS, "--out"),
            Output(self.summary, option="--metrics"),
            Output(self.curve, option="--curve"),
        ]


def recipe_for(params: Mapping[str, Any], experiment: Experiment, refine: bool = False) -> Recipe:
    """The experiment's recipe: the ``train`` section plus its keypoint kind's ``recipes`` entry.

    With ``refine`` the refinement's mode and root depth too (``refinement.EXP``); the lifting
    network alone is trained with the defaults (joint, gt), whatever the refinement entry says.
    """
    refinement = (experiment.refinement or {}) if refine else {}
    return Recipe.from_params(
        params,
        experiment.recipe_kind,
        refine=refine,
        refine_mode=str(refinement.get("mode", "joint")),
        root_depth=str(refinement.get("root_depth", "gt")),
    )


def load_split(
    params: Mapping[str, Any], processed: Path, split: str, device: torch.device, experiment: Experiment
) -> PoseArrays:
    """The ``train`` or ``test`` subjects (``data.<split>_subjects``) of ``processed``, in memory on ``device``.

    The file must hold ``experiment``'s 2D source: another one would train or score the network on
    the wrong keypoints (and, for training, under the wrong recipe) without a word.
    """
    data = PoseArrays.from_processed(processed, subjects=list(params["data"][f"{split}_subjects"]), device=device)
    held = data.attrs.get("keypoints")
    if held != experiment.keypoints:
        raise UserInputError(
            f"{processed}: holds {held!r} 2D keypoints, but experiment {experiment.name!r} uses "
            f"{experiment.keypoints!r} (pass its processed file)"
        )
    return data


def h36m_evaluator(params: Mapping[str, Any], experiment: Experiment, test: PoseArrays):
    """The per-epoch test evaluation: P1/P2 (mm); refined, and the lifting network's alone, with refinement.

    It takes every ``evaluate.curve_frame_stride``-th frame of each test sequence (all of them at 1).
    """
    flip, batch = params["evaluate"]["flip_test"], params["evaluate"]["batch_size"]
    frames = test.target_indices(params["evaluate"]["curve_frame_stride"])

    def evaluate(model: nn.Module, refine: nn.Module | None) -> dict[str, float]:
        record: dict[str, float] = {}
        if refine is not None:
            plain = evaluate_h36m(predict(model, test, experiment.pad, flip, batch, indices=frames), test, frames)
            record["P1_spatial"], record["P2_spatial"] = plain["P1"], plain["P2"]
        predicted = predict(model, test, experiment.pad, flip, batch, refine=refine, indices=frames)
        result = evaluate_h36m(predicted, test, frames)
        record["P1"], record["P2"] = result["P1"], result["P2"]
        return record

    return evaluate


def run_training_stage(
    params: Mapping[str, Any],
    experiment: Experiment,
    processed: Path,
    outputs: TrainingOutputs,
    spatial_dir: Path | None = None,
    params_file: str | None = None,
) -> Any:
    """Stage ``train_spatial@EXP`` (``spatial_dir`` None) or ``train_refine@EXP``; returns the summary record.

    ``train.device`` is checked to exist on this machine before any data is read (the error names
    ``params_file``).
    """
    refining = spatial_dir is not None
    stage = "train_refine" if refining else "train_spatial"
    if refining and experiment.refinement is None:
        raise UserInputError(f"params: experiment {experiment.name!r} has no entry in 'refinement'")
    if experiment.pretrained is not None:
        return import_release_stage(params, experiment, stage, outputs, refining)
    recipe = recipe_for(params, experiment, refine=refining)
    params_device(params, params_file)
    with distributed.distributed_context(recipe.device) as context:
        return _train(params, experiment, recipe, context, stage, processed, outputs, spatial_dir)


def _train(
    params: Mapping[str, Any],
    experiment: Experiment,
    recipe: Recipe,
    context: distributed.DistributedContext,
    stage: str,
    processed: Path,
    outputs: TrainingOutputs,
    spatial_dir: Path | None,
) -> TrainSummary:
    """:func:`run_training_stage`'s body on one rank (``context``)."""
    train_data = load_split(params, processed, "train", context.device, experiment)
    test_data = load_split(params, processed, "test", context.device, experiment) if context.is_main else None
    fingerprint = str(train_data.attrs.get("fingerprint"))
    model, refine = _networks(experiment, recipe, train_data.layout, spatial_dir)
    began = time.perf_counter()
    described = stage_params(params, experiment, recipe.to_dict(), refinement=recipe.refine)
    tracked = StageRun(stage, experiment.name, described, fingerprint)
    with tracked if context.is_main else NoRun() as run:
        result = train(
            model,
            train_data,
            recipe,
            outputs.models,
            pad=experiment.pad,
            evaluate=h36m_evaluator(params, experiment, test_data) if test_data is not None else None,
            refine=refine,
            on_epoch=lambda epoch, record: run.log_metrics(record, step=epoch),
            data_fingerprint=fingerprint,
            model_name=experiment.model,
        )
        summary = _summary(params, experiment, model, recipe, result, fingerprint, run.run_id, began, context)
        if context.is_main:
            curve = TrainingCurve(history=tuple(EpochRecord.from_dict(r) for r in result.history))
            with atomic_outputs(outputs.summary, outputs.curve) as (summary_tmp, curve_tmp):
                write_record(summary_tmp, summary)
                write_record(curve_tmp, curve)
            run.log_artifact(outputs.summary)
            _log_final_model(run, stage, experiment, outputs, train_data)
    return summary


def _log_final_model(
    run: StageRun | NoRun, stage: str, experiment: Experiment, outputs: TrainingOutputs, train_data: PoseArrays
) -> None:
    """Log final.pt's lifting network to the MLflow run and register it, two training windows as its example.

    Best-effort like all tracking: a network that cannot be prepared is a warning, never the stage's failure.
    """
    if run.run_id is None:
        return
    try:
        model = networks_from_checkpoint(outputs.models / FINAL)["model"]
        rows = torch.arange(min(EXAMPLE_ROWS, train_data.num_samples), device=train_data.device)
        module, example, metadata = loggable_lifting_model(
            model, train_data.windows(rows, experiment.pad).cpu().numpy()
        )
    except Exception as exc:  # tracking must never make the stage fail
        log.warning("MLflow model not logged: %s: %s", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        return
    run.log_model(module, example, registered_model_name(stage, experiment.name), metadata)


def _networks(
    experiment: Experiment, recipe: Recipe, layout: str, spatial_dir: Path | None
) -> tuple[nn.Module, nn.Module | None]:
    """The networks to train, built after seeding (reproducible initial weights); two_stage starts from spatial."""
    seed_everything(recipe.seed)
    if spatial_dir is not None and recipe.refine_mode == "two_stage":
        model = networks_from_checkpoint(spatial_dir / FINAL)["model"]
    else:
        model = build_model(experiment.model, layout=layout, **experiment.model_args)
    refine = build_model("refine", layout=layout) if spatial_dir is not None else None
    return model, refine


def _summary(
    params: Mapping[str, Any],
    experiment: Experiment,
    model: nn.Module,
    recipe: Recipe,
    result: TrainResult,
    fingerprint: str,
    run_id: str | None,
    began: float,
    context: distributed.DistributedContext,
) -> TrainSummary:
    """The training summary: configuration, recipe, data, and the records of the two selected epochs."""
    last = next((r for r in result.history if r.get("epoch") == result.last_epoch), {})
    best = next((r for r in result.history if r.get("epoch") == result.best_epoch), {})
    refining = experiment.refinement is not None and recipe.refine
    return TrainSummary(
        experiment=experiment.name,
        model=experiment.model,
        model_config=dict(model.config),
        parameters=count_parameters(model),
        recipe=recipe.to_dict(),
        data=data_description(params, fingerprint),
        epochs=result.last_epoch,
        seconds=time.perf_counter() - began,
        last_epoch=EpochRecord.from_dict({"selection": FINAL_SELECTION, **last}),
        best_on_test=EpochRecord.from_dict({"selection": BEST_SELECTION, **best}),
        mlflow_run_id=run_id,
        refinement=experiment.refinement if refining else None,
        selection_metric=f"refined P1 on the test split, {ORACLE_NOTE}" if refining else None,
        processes=context.world_size if context.is_distributed else None,
    )
