"""Stage ``hard_pose_set``: the hard poses every experiment is also evaluated on.

dvc.yaml: ``python stages/hard_pose_set.py --params params.yaml --raw data/raw --processed
data/processed/<name>_gt_<layout>.h5 --out data/processed/hard_poses.npz``. The user's hard-pose
file when fetched into the raw folder, else the derived set: every ``evaluate.hard_every``-th test
frame, the ``evaluate.hard_fraction`` farthest from their nearest training pose. One MLflow run.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mlpgraph.data import schema
from mlpgraph.devices import params_device
from mlpgraph.entry import run_command, stage_parser
from mlpgraph.hard_pose_set import derived_hard_poses, user_hard_poses
from mlpgraph.outputs import Output, check_outputs
from mlpgraph.params import load_params
from mlpgraph.tracking import StageRun

log = logging.getLogger("mlpgraph.stages.hard_pose_set")


def main(args: argparse.Namespace) -> None:
    """Build the set and write ``--out``."""
    params = load_params(args.params)
    check_outputs([Output(args.out, option="--out")], inputs=[args.params, args.raw, args.processed])
    data, settings = params["data"], params["evaluate"]
    user_file = Path(args.raw) / schema.RAW_HARD_POSES
    if user_file.is_file():
        hard = user_hard_poses(user_file, data["layout"])
    else:
        device = str(params_device(params, args.params))
        subjects = list(data["train_subjects"]), list(data["test_subjects"])
        every, fraction = settings["hard_every"], settings["hard_fraction"]
        hard = derived_hard_poses(Path(args.processed), *subjects, every, fraction, device)
    hard.write(Path(args.out))
    summary = {"source": hard.source, "num_poses": len(hard.poses_3d)}
    described = {"evaluate": {key: settings[key] for key in ("hard_every", "hard_fraction")}, "source": hard.source}
    with StageRun("hard_pose_set", params=described, data_fingerprint=hard.fingerprint) as run:
        run.log_metrics({"num_poses": summary["num_poses"]})
    log.info("hard poses: %s", summary)


def parser() -> argparse.ArgumentParser:
    """``--params``, ``--raw``, ``--processed`` (read) and ``--out`` (written)."""
    result = stage_parser(__doc__.splitlines()[0], experiment=False)
    result.add_argument("--raw", required=True, help="raw data folder (a user hard-pose file is taken from there)")
    result.add_argument("--processed", required=True, help="processed HDF5 whose train/test 3D define the derived set")
    result.add_argument("--out", required=True, help="the set to write (the pipeline: data/processed/hard_poses.npz)")
    return result


if __name__ == "__main__":
    sys.exit(run_command("hard_pose_set", parser(), main))
