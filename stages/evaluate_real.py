"""Stage ``evaluate_real@EXP``: P1/P2 on real people's motion capture seen through the Human3.6M cameras.

dvc.yaml: ``python stages/evaluate_real.py --params params.yaml --experiment EXP --models
models/EXP/spatial --mocap <evaluate.real_mocap> --out metrics/real/EXP.json``. Every other figure
is measured on the synthetic test split; this one takes real clips (``evaluate.real_mocap``, by
default ``tests/data/real_mocap/real_mocap_A.npz``), makes the experiment's 2D from them as the
synthetic set's is made (:mod:`mlpgraph.evaluation.real_mocap`), and gives P1/P2 per clip and
overall beside the clip-mean-pose baseline. Both selections; one MLflow run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlpgraph.checkpoints import networks_from_checkpoint
from mlpgraph.devices import params_device
from mlpgraph.entry import run_command, stage_parser
from mlpgraph.evaluation.real_mocap import (
    evaluate_real_mocap,
    experiment_real_set,
    real_record_fields,
)
from mlpgraph.evaluation_stage import Selection, measure_selections
from mlpgraph.experiments import load_experiment
from mlpgraph.io import sha256_file
from mlpgraph.outputs import Output, check_outputs
from mlpgraph.params import load_params
from mlpgraph.provenance import data_description, stage_params
from mlpgraph.release_stage import skip_if_unavailable
from mlpgraph.results import RealFigures, RealMocapEvaluation, write_record
from mlpgraph.tracking import StageRun


def main(args: argparse.Namespace) -> None:
    """Measure both selected models of the experiment on the real clips and write ``--out``."""
    params = load_params(args.params)
    mocap = Path(args.mocap or params["evaluate"]["real_mocap"])
    check_outputs([Output(args.out, option="--out")], inputs=[args.params, args.models, mocap])
    experiment = load_experiment(params, args.experiment)
    out, flip, batch = Path(args.out), params["evaluate"]["flip_test"], params["evaluate"]["batch_size"]
    if skip_if_unavailable(params, "evaluate_real", experiment, out):
        return
    device = params_device(params, args.params)
    real = experiment_real_set(mocap, params["data"], experiment.keypoints)
    fingerprint = sha256_file(mocap)
    shared = real_record_fields(experiment, mocap, fingerprint, real, flip, data_description(params, None))

    def measure(chosen: Selection) -> RealFigures:
        model = networks_from_checkpoint(chosen.checkpoint)["model"].to(device)
        result = evaluate_real_mocap(model, real, experiment.pad, flip, batch, device)
        return RealFigures.from_dict({"selection": chosen.label, **result})

    with StageRun("evaluate_real", experiment.name, stage_params(params, experiment), fingerprint) as run:
        figures = measure_selections(Path(args.models), measure, run, lambda f: {"P1": f.P1, "P2": f.P2}, data=mocap)
        record = RealMocapEvaluation(**shared, **figures, mlflow_run_id=run.run_id)
        write_record(out, record)
        run.log_artifact(out)


def parser() -> argparse.ArgumentParser:
    """``--params``, ``--experiment``, ``--models``, ``--mocap`` (read) and ``--out`` (written)."""
    result = stage_parser(__doc__.splitlines()[0])
    result.add_argument("--models", required=True, help="checkpoint folder (the pipeline: models/EXP/spatial)")
    result.add_argument("--mocap", help="real mocap .npz (the pipeline: evaluate.real_mocap, also the default)")
    result.add_argument("--out", required=True, help="metrics file (the pipeline: metrics/real/EXP.json)")
    return result


if __name__ == "__main__":
    sys.exit(run_command("evaluate_real", parser(), main))
