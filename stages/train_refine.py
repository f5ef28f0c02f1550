"""Stage ``train_refine@EXP``: the pose refinement, with the lifting network (joint) or on its frozen weights.

dvc.yaml: ``python stages/train_refine.py --params params.yaml --experiment EXP --processed
data/processed/<name>_<keypoints>_<layout>.h5 --spatial models/EXP/spatial --out models/EXP/refine
--metrics metrics/train/EXP_refine.json --curve metrics/train/EXP_refine_curve.json``. The mode
and the root depth used in training come from ``refinement.EXP``; ``two_stage`` starts from
``--spatial``'s ``final.pt``. Resumes from ``last.pt``; one MLflow run; also runs under ``torchrun``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlpgraph.entry import run_command, stage_parser
from mlpgraph.experiments import load_experiment
from mlpgraph.outputs import check_outputs
from mlpgraph.params import load_params
from mlpgraph.training_stage import TrainingOutputs, run_training_stage


def main(args: argparse.Namespace) -> None:
    """Train (or import) the experiment's refinement module."""
    params = load_params(args.params)
    outputs = TrainingOutputs(models=Path(args.out), summary=Path(args.metrics), curve=Path(args.curve))
    check_outputs(outputs.outputs(), inputs=[args.params, args.processed, args.spatial])
    experiment = load_experiment(params, args.experiment)
    run_training_stage(
        params, experiment, Path(args.processed), outputs, spatial_dir=Path(args.spatial), params_file=args.params
    )


def parser() -> argparse.ArgumentParser:
    """``--params``, ``--experiment``, ``--processed``, ``--spatial`` (read), ``--out``, ``--metrics``, ``--curve``."""
    result = stage_parser(__doc__.splitlines()[0])
    result.add_argument("--processed", required=True, help="processed HDF5 file of the experiment's 2D source")
    result.add_argument("--spatial", required=True, help="the train_spatial checkpoints (models/EXP/spatial)")
    result.add_argument("--out", required=True, help="checkpoint folder (the pipeline: models/EXP/refine)")
    result.add_argument("--metrics", required=True, help="summary (the pipeline: metrics/train/EXP_refine.json)")
    result.add_argument("--curve", required=True, help="curve (the pipeline: metrics/train/EXP_refine_curve.json)")
    return result


if __name__ == "__main__":
    sys.exit(run_command("train_refine", parser(), main))
