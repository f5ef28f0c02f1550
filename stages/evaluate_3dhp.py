"""Stage ``evaluate_3dhp@EXP``: MPI-INF-3DHP PCK@150 mm and AUC (cross-data-set), overall, per scene and sequence.

dvc.yaml: ``python stages/evaluate_3dhp.py --params params.yaml --experiment EXP --models
models/EXP/spatial --raw data/raw --out metrics/3dhp/EXP.json``. Reads the raw folder's 3DHP test
file (P-STMO's or PoseAug's format); without one the file says ``available: false``. Both
selections; one MLflow run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlpgraph.checkpoints import networks_from_checkpoint
from mlpgraph.data import schema
from mlpgraph.data.formats import read_3dhp_test
from mlpgraph.devices import params_device
from mlpgraph.entry import run_command, stage_parser
from mlpgraph.evaluation import evaluate_3dhp
from mlpgraph.evaluation_stage import Selection, measure_selections
from mlpgraph.experiments import load_experiment
from mlpgraph.io import sha256_file
from mlpgraph.outputs import Output, check_outputs
from mlpgraph.params import load_params
from mlpgraph.provenance import data_description, stage_params
from mlpgraph.release_stage import skip_if_unavailable
from mlpgraph.results import DhpEvaluation, DhpFigures, DhpUnavailable, write_record
from mlpgraph.tracking import StageRun


def find_3dhp_file(raw_dir: Path) -> Path | None:
    """The raw folder's MPI-INF-3DHP test file (P-STMO's or PoseAug's format), if any."""
    found = [raw_dir / name for name in (schema.RAW_3DHP_PSTMO, schema.RAW_3DHP_POSEAUG)]
    return next((path for path in found if path.is_file()), None)


def main(args: argparse.Namespace) -> None:
    """Measure both selected models of the experiment on the 3DHP test set and write ``--out``."""
    params = load_params(args.params)
    check_outputs([Output(args.out, option="--out")], inputs=[args.params, args.models, args.raw])
    experiment = load_experiment(params, args.experiment)
    out, flip, batch = Path(args.out), params["evaluate"]["flip_test"], params["evaluate"]["batch_size"]
    if skip_if_unavailable(params, "evaluate_3dhp", experiment, out):
        return
    path = find_3dhp_file(Path(args.raw))
    if path is None:
        reason = f"no MPI-INF-3DHP test file in {args.raw}"
        name, model_name = experiment.name, experiment.model
        write_record(out, DhpUnavailable(experiment=name, model=model_name, flip_test=flip, reason=reason))
        return
    device = params_device(params, args.params)
    test = read_3dhp_test(path, layout=params["data"]["layout"])
    fingerprint = sha256_file(path)

    def measure(chosen: Selection) -> DhpFigures:
        model = networks_from_checkpoint(chosen.checkpoint)["model"].to(device)
        result = evaluate_3dhp(model, test, experiment.pad, flip, batch, device)
        return DhpFigures.from_dict({"selection": chosen.label, **result})

    with StageRun("evaluate_3dhp", experiment.name, stage_params(params, experiment), fingerprint) as run:
        figures = measure_selections(Path(args.models), measure, run, lambda f: {"PCK": f.PCK, "AUC": f.AUC}, data=path)
        record = DhpEvaluation(
            experiment=experiment.name,
            model=experiment.model,
            flip_test=flip,
            file=path.name,
            data=data_description(params, fingerprint),
            **figures,
            mlflow_run_id=run.run_id,
        )
        write_record(out, record)
        run.log_artifact(out)


def parser() -> argparse.ArgumentParser:
    """``--params``, ``--experiment``, ``--models``, ``--raw`` (read) and ``--out`` (written)."""
    result = stage_parser(__doc__.splitlines()[0])
    result.add_argument("--models", required=True, help="checkpoint folder (the pipeline: models/EXP/spatial)")
    result.add_argument("--raw", required=True, help="raw data folder holding the 3DHP test file (data/raw)")
    result.add_argument("--out", required=True, help="metrics file (the pipeline: metrics/3dhp/EXP.json)")
    return result


if __name__ == "__main__":
    sys.exit(run_command("evaluate_3dhp", parser(), main))
