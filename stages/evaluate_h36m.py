"""Stage ``evaluate_h36m@EXP``: Human3.6M P1/P2 per action on the test subjects, with flip averaging.

dvc.yaml: ``python stages/evaluate_h36m.py --params params.yaml --experiment EXP --processed
data/processed/<name>_<keypoints>_<layout>.h5 --models models/EXP/spatial --out
metrics/h36m/EXP.json``. Both selections (last epoch, best on test), the training set's mean-pose
baseline, the model's size and its inference time; one MLflow run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlpgraph.checkpoints import networks_from_checkpoint
from mlpgraph.entry import run_command, stage_parser
from mlpgraph.evaluation import evaluate_h36m, predict
from mlpgraph.evaluation_stage import (
    EvaluationSetup,
    Selection,
    h36m_figures,
    mean_pose_baseline,
    measure_selections,
    timing,
)
from mlpgraph.experiments import load_experiment
from mlpgraph.models import count_parameters
from mlpgraph.outputs import Output, check_outputs
from mlpgraph.params import load_params
from mlpgraph.provenance import stage_params
from mlpgraph.release_stage import skip_if_unavailable
from mlpgraph.results import H36mEvaluation, H36mFigures, write_record
from mlpgraph.tracking import StageRun


def main(args: argparse.Namespace) -> None:
    """Measure both selected models of the experiment and write ``--out``."""
    params = load_params(args.params)
    check_outputs([Output(args.out, option="--out")], inputs=[args.params, args.processed, args.models])
    experiment = load_experiment(params, args.experiment)
    if skip_if_unavailable(params, "evaluate_h36m", experiment, Path(args.out)):
        return
    ev = EvaluationSetup.load(params, experiment, Path(args.processed), args.params)
    networks = []

    def measure(chosen: Selection) -> H36mFigures:
        networks.append(networks_from_checkpoint(chosen.checkpoint)["model"].to(ev.device))
        result = evaluate_h36m(predict(networks[-1], ev.test, experiment.pad, ev.flip, ev.batch), ev.test)
        return h36m_figures(result, chosen.label)

    with StageRun("evaluate_h36m", experiment.name, stage_params(params, experiment), ev.fingerprint) as run:
        figures = measure_selections(
            Path(args.models), measure, run, lambda f: {"P1": f.P1, "P2": f.P2}, data=args.processed
        )
        model = networks[-1]  # the last one measured: its size and speed are the experiment's
        record = H36mEvaluation(
            **ev.header(params),
            mean_pose_baseline=mean_pose_baseline(ev.train, ev.test),
            **figures,
            parameters=count_parameters(model),
            model_config=dict(model.config),
            inference_time=timing(model, experiment.frames, ev.test.num_joints, params["evaluate"]["timing_batches"]),
            mlflow_run_id=run.run_id,
        )
        write_record(args.out, record)
        run.log_artifact(args.out)


def parser() -> argparse.ArgumentParser:
    """``--params``, ``--experiment``, ``--processed``, ``--models`` (read) and ``--out`` (written)."""
    result = stage_parser(__doc__.splitlines()[0])
    result.add_argument("--processed", required=True, help="processed HDF5 file of the experiment's 2D source")
    result.add_argument("--models", required=True, help="checkpoint folder (the pipeline: models/EXP/spatial)")
    result.add_argument("--out", required=True, help="metrics file (the pipeline: metrics/h36m/EXP.json)")
    return result


if __name__ == "__main__":
    sys.exit(run_command("evaluate_h36m", parser(), main))
