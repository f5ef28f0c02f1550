"""Stage ``evaluate_real_refine@EXP``: the refinement run on real motion capture, without and with refinement.

dvc.yaml: ``python stages/evaluate_real_refine.py --params params.yaml --experiment EXP --processed
data/processed/<name>_<keypoints>_<layout>.h5 --models models/EXP/refine --mocap <evaluate.real_mocap>
--out metrics/real/EXP_refine.json``. The real clips of ``evaluate_real`` (made the same way,
:mod:`mlpgraph.evaluation.real_mocap`), scored as ``evaluate_refine`` scores the synthetic test
split: the refinement run's lifting network alone, then refined with the clips' ground-truth root
depth (an oracle) and with the depth estimated from the 2D and the training split's mean bone
lengths (read from ``--processed``). P1/P2 per clip and overall beside the clip-mean-pose baseline.
Both selections; one MLflow run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from mlpgraph.checkpoints import networks_from_checkpoint
from mlpgraph.devices import params_device
from mlpgraph.entry import run_command, stage_parser
from mlpgraph.evaluation.real_mocap import (
    RealMocapSet,
    evaluate_real_mocap,
    experiment_real_set,
    real_record_fields,
)
from mlpgraph.evaluation_stage import REFINED_VARIANTS, Selection, measure_selections, training_bone_lengths
from mlpgraph.experiments import load_experiment
from mlpgraph.io import sha256_file
from mlpgraph.outputs import Output, check_outputs
from mlpgraph.params import load_params
from mlpgraph.provenance import data_description, stage_params
from mlpgraph.release_stage import skip_if_unavailable
from mlpgraph.results import RealFigures, RealRefinedSelection, RealRefineEvaluation, write_record
from mlpgraph.tracking import StageRun
from mlpgraph.training_stage import load_split


def measure(
    chosen: Selection, real: RealMocapSet, pad: int, protocol: dict[str, Any], bones: torch.Tensor
) -> RealRefinedSelection:
    """One selection's networks on the clips: the lifting network alone, then refined with each root depth.

    ``protocol``: :func:`evaluate_real_mocap`'s ``flip_test``, ``batch_size`` and ``device``;
    ``bones``: the training split's mean bone lengths (the estimated root depth's body size).
    """
    nets = networks_from_checkpoint(chosen.checkpoint)
    model, refine = nets["model"].to(protocol["device"]), nets["refine"].to(protocol["device"])

    def figures(note: str | None = None, **refining: Any) -> RealFigures:
        result = evaluate_real_mocap(model, real, pad, **protocol, **refining)
        return RealFigures.from_dict({"selection": chosen.label, **result, "note": note})

    refined = {
        key: figures(note, refine=refine, root_depth=depth, bone_lengths=bones) for depth, key, note in REFINED_VARIANTS
    }
    return RealRefinedSelection(selection=chosen.label, without_refinement=figures(), **refined)


def logged(figures: RealRefinedSelection) -> dict[str, float]:
    """What each selection logs to MLflow: real P1 without refinement and refined with each root depth."""
    return {
        "P1_without_refinement": figures.without_refinement.P1,
        "P1_refined_gt_root": figures.refined_gt_root.P1,
        "P1_refined_estimated_root": figures.refined_estimated_root.P1,
    }


def main(args: argparse.Namespace) -> None:
    """Measure both selected refinement runs of the experiment on the real clips and write ``--out``."""
    params = load_params(args.params)
    mocap, out = Path(args.mocap or params["evaluate"]["real_mocap"]), Path(args.out)
    check_outputs([Output(args.out, option="--out")], inputs=[args.params, args.processed, args.models, mocap])
    experiment = load_experiment(params, args.experiment)
    if skip_if_unavailable(params, "evaluate_real_refine", experiment, out):
        return
    device = params_device(params, args.params)
    train = load_split(params, Path(args.processed), "train", device, experiment)
    real = experiment_real_set(mocap, params["data"], experiment.keypoints)
    flip, bones = params["evaluate"]["flip_test"], training_bone_lengths(train)
    protocol = {"flip_test": flip, "batch_size": params["evaluate"]["batch_size"], "device": device}
    processed_fingerprint = None if train.attrs.get("fingerprint") is None else str(train.attrs["fingerprint"])
    fingerprint = sha256_file(mocap)
    trained_on = data_description(params, processed_fingerprint)
    shared = real_record_fields(experiment, mocap, fingerprint, real, flip, trained_on)
    described = stage_params(params, experiment, refinement=True)
    with StageRun("evaluate_real_refine", experiment.name, described, fingerprint) as run:
        figures = measure_selections(
            Path(args.models), lambda chosen: measure(chosen, real, experiment.pad, protocol, bones), run, logged, mocap
        )
        record = RealRefineEvaluation(
            **shared, refinement=experiment.refinement or {}, **figures, mlflow_run_id=run.run_id
        )
        write_record(out, record)
        run.log_artifact(out)


def parser() -> argparse.ArgumentParser:
    """``--params``, ``--experiment``, ``--processed``, ``--models``, ``--mocap`` (read) and ``--out`` (written)."""
    result = stage_parser(__doc__.splitlines()[0])
    result.add_argument("--processed", required=True, help="processed HDF5 file (its train split: the bone lengths)")
    result.add_argument("--models", required=True, help="checkpoint folder (the pipeline: models/EXP/refine)")
    result.add_argument("--mocap", help="real mocap .npz (the pipeline: evaluate.real_mocap, also the default)")
    result.add_argument("--out", required=True, help="metrics file (the pipeline: metrics/real/EXP_refine.json)")
    return result


if __name__ == "__main__":
    sys.exit(run_command("evaluate_real_refine", parser(), main))
