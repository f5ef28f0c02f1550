"""Stage ``hard_poses@EXP``: P1/P2 with flip averaging on the hard-pose set (derived or the user's).

dvc.yaml: ``python stages/hard_poses.py --params params.yaml --experiment EXP --processed
data/processed/<name>_<keypoints>_<layout>.h5 --models models/EXP/spatial --hard
data/processed/hard_poses.npz --out metrics/hard/EXP.json``. The derived set's poses are
predicted in their test sequences (temporal context); both selections; one MLflow run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlpgraph.checkpoints import networks_from_checkpoint
from mlpgraph.devices import params_device
from mlpgraph.entry import run_command, stage_parser
from mlpgraph.evaluation_stage import Selection, measure_selections
from mlpgraph.experiments import load_experiment
from mlpgraph.hard_pose_set import DERIVED, HardPoseSet, evaluate_hard_poses
from mlpgraph.outputs import Output, check_outputs
from mlpgraph.params import load_params
from mlpgraph.provenance import data_description, stage_params
from mlpgraph.release_stage import skip_if_unavailable
from mlpgraph.results import HardEvaluation, HardFigures, write_record
from mlpgraph.tracking import StageRun
from mlpgraph.training_stage import load_split


def main(args: argparse.Namespace) -> None:
    """Measure both selected models of the experiment on the hard poses and write ``--out``."""
    params = load_params(args.params)
    check_outputs([Output(args.out, option="--out")], inputs=[args.params, args.processed, args.models, args.hard])
    experiment = load_experiment(params, args.experiment)
    if skip_if_unavailable(params, "hard_poses", experiment, Path(args.out)):
        return
    device = params_device(params, args.params)
    flip, batch = params["evaluate"]["flip_test"], params["evaluate"]["batch_size"]
    hard = HardPoseSet.read(Path(args.hard))
    test = load_split(params, Path(args.processed), "test", device, experiment) if hard.source == DERIVED else None
    fingerprint = str(test.attrs.get("fingerprint")) if test is not None else None

    def measure(chosen: Selection) -> HardFigures:
        model = networks_from_checkpoint(chosen.checkpoint)["model"].to(device)
        result = evaluate_hard_poses(model, hard, test, experiment.pad, flip, batch, params["data"]["layout"])
        return HardFigures(selection=chosen.label, **result)

    with StageRun("hard_poses", experiment.name, stage_params(params, experiment), fingerprint) as run:
        data = args.processed if test is not None else args.hard
        figures = measure_selections(Path(args.models), measure, run, lambda f: {"P1": f.P1, "P2": f.P2}, data=data)
        record = HardEvaluation(
            experiment=experiment.name,
            model=experiment.model,
            flip_test=flip,
            source=hard.source,
            data=data_description(params, fingerprint),
            **figures,
            mlflow_run_id=run.run_id,
        )
        write_record(args.out, record)
        run.log_artifact(args.out)


def parser() -> argparse.ArgumentParser:
    """``--params``, ``--experiment``, ``--processed``, ``--models``, ``--hard`` (read) and ``--out`` (written)."""
    result = stage_parser(__doc__.splitlines()[0])
    result.add_argument("--processed", required=True, help="processed HDF5 file of the experiment's 2D source")
    result.add_argument("--models", required=True, help="checkpoint folder (the pipeline: models/EXP/spatial)")
    result.add_argument("--hard", required=True, help="the hard-pose set (data/processed/hard_poses.npz)")
    result.add_argument("--out", required=True, help="metrics file (the pipeline: metrics/hard/EXP.json)")
    return result


if __name__ == "__main__":
    sys.exit(run_command("hard_poses", parser(), main))
