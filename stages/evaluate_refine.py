"""Stage ``evaluate_refine@EXP``: P1/P2 without and with the pose refinement, with oracle and estimated root depth.

dvc.yaml: ``python stages/evaluate_refine.py --params params.yaml --experiment EXP --processed
data/processed/<name>_<keypoints>_<layout>.h5 --models models/EXP/refine --out
metrics/h36m/EXP_refine.json``. The estimated root depth uses the training set's mean bone
lengths. Both selections; one MLflow run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from torch import Tensor

from mlpgraph.checkpoints import networks_from_checkpoint
from mlpgraph.entry import run_command, stage_parser
from mlpgraph.evaluation import evaluate_h36m, predict
from mlpgraph.evaluation_stage import (
    REFINED_VARIANTS,
    EvaluationSetup,
    Selection,
    h36m_figures,
    measure_selections,
    training_bone_lengths,
)
from mlpgraph.experiments import load_experiment
from mlpgraph.outputs import Output, check_outputs
from mlpgraph.params import load_params
from mlpgraph.provenance import stage_params
from mlpgraph.release_stage import skip_if_unavailable
from mlpgraph.results import RefinedSelection, RefineEvaluation, write_record
from mlpgraph.tracking import StageRun


def measure(ev: EvaluationSetup, chosen: Selection, bones: Tensor) -> RefinedSelection:
    """One selection's networks: the lifting network alone, then refined with each root depth."""
    nets = networks_from_checkpoint(chosen.checkpoint)
    model, refine = nets["model"].to(ev.device), nets["refine"].to(ev.device)
    pad, test = ev.experiment.pad, ev.test
    plain = evaluate_h36m(predict(model, test, pad, ev.flip, ev.batch), test)
    refined = {}
    for depth, key, note in REFINED_VARIANTS:
        pred = predict(model, test, pad, ev.flip, ev.batch, refine, depth, bones)
        refined[key] = h36m_figures(evaluate_h36m(pred, test), chosen.label, note)
    return RefinedSelection(selection=chosen.label, without_refinement=h36m_figures(plain, chosen.label), **refined)


def logged(figures: RefinedSelection) -> dict[str, float]:
    """What each selection logs to MLflow: P1 without refinement and refined with each root depth."""
    return {
        "P1_without_refinement": figures.without_refinement.P1,
        "P1_refined_gt_root": figures.refined_gt_root.P1,
        "P1_refined_estimated_root": figures.refined_estimated_root.P1,
    }


def main(args: argparse.Namespace) -> None:
    """Measure both selected refinement runs of the experiment and write ``--out``."""
    params = load_params(args.params)
    check_outputs([Output(args.out, option="--out")], inputs=[args.params, args.processed, args.models])
    experiment = load_experiment(params, args.experiment)
    if skip_if_unavailable(params, "evaluate_refine", experiment, Path(args.out)):
        return
    ev = EvaluationSetup.load(params, experiment, Path(args.processed), args.params)
    bones = training_bone_lengths(ev.train)
    described = stage_params(params, experiment, refinement=True)
    with StageRun("evaluate_refine", experiment.name, described, ev.fingerprint) as run:
        figures = measure_selections(
            Path(args.models), lambda chosen: measure(ev, chosen, bones), run, logged, data=args.processed
        )
        header = ev.header(params)
        record = RefineEvaluation(**header, refinement=experiment.refinement, **figures, mlflow_run_id=run.run_id)
        write_record(args.out, record)
        run.log_artifact(args.out)


def parser() -> argparse.ArgumentParser:
    """``--params``, ``--experiment``, ``--processed``, ``--models`` (read) and ``--out`` (written)."""
    result = stage_parser(__doc__.splitlines()[0])
    result.add_argument("--processed", required=True, help="processed HDF5 file of the experiment's 2D source")
    result.add_argument("--models", required=True, help="checkpoint folder (the pipeline: models/EXP/refine)")
    result.add_argument("--out", required=True, help="metrics file (the pipeline: metrics/h36m/EXP_refine.json)")
    return result


if __name__ == "__main__":
    sys.exit(run_command("evaluate_refine", parser(), main))
