"""Stage ``train_spatial@EXP``: train an experiment's lifting network with the released recipe.

dvc.yaml: ``python stages/train_spatial.py --params params.yaml --experiment EXP --processed
data/processed/<name>_<keypoints>_<layout>.h5 --out models/EXP/spatial --metrics
metrics/train/EXP.json --curve metrics/train/EXP_curve.json``. Resumes from ``last.pt``; writes
``final.pt`` / ``best.pt``, the summary and the per-epoch curve; one MLflow run. A pretrained
experiment imports the release's weights instead. Also runs under ``torchrun`` (DDP).
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
    """Train (or import) the experiment's lifting network."""
    params = load_params(args.params)
    outputs = TrainingOutputs(models=Path(args.out), summary=Path(args.metrics), curve=Path(args.curve))
    check_outputs(outputs.outputs(), inputs=[args.params, args.processed])
    experiment = load_experiment(params, args.experiment)
    run_training_stage(params, experiment, Path(args.processed), outputs, params_file=args.params)


def parser() -> argparse.ArgumentParser:
    """``--params``, ``--experiment``, ``--processed`` (read), ``--out``, ``--metrics``, ``--curve`` (written)."""
    result = stage_parser(__doc__.splitlines()[0])
    result.add_argument("--processed", required=True, help="processed HDF5 file of the experiment's 2D source")
    result.add_argument("--out", required=True, help="checkpoint folder (the pipeline: models/EXP/spatial)")
    result.add_argument("--metrics", required=True, help="training summary (the pipeline: metrics/train/EXP.json)")
    result.add_argument("--curve", required=True, help="per-epoch curve (the pipeline: metrics/train/EXP_curve.json)")
    return result


if __name__ == "__main__":
    sys.exit(run_command("train_spatial", parser(), main))
