"""Stage ``preprocess@KEYPOINTS``: one HDF5 file (3D, 2D, cameras, sequence index) per 2D source.

dvc.yaml: ``python stages/preprocess.py --params params.yaml --raw data/raw --keypoints KP --out
data/processed/<name>_<KP>_<layout>.h5``. Written atomically; one MLflow run.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import h5py

from mlpgraph.data import schema
from mlpgraph.data.preprocess import build_hdf5
from mlpgraph.entry import run_command, stage_parser
from mlpgraph.outputs import Output, check_outputs
from mlpgraph.params import load_params
from mlpgraph.tracking import StageRun

log = logging.getLogger("mlpgraph.stages.preprocess")


def main(args: argparse.Namespace) -> None:
    """Turn the raw folder's 3D and ``--keypoints`` 2D into the processed file ``--out``."""
    data = load_params(args.params)["data"]
    check_outputs([Output(args.out, option="--out")], inputs=[args.params, args.raw])
    with StageRun("preprocess", params={"data": data}, item=args.keypoints) as run:
        build_hdf5(
            Path(args.raw),
            Path(args.out),
            keypoints=args.keypoints,
            layout=data["layout"],
            train_subjects=tuple(data["train_subjects"]),
            test_subjects=tuple(data["test_subjects"]),
            dataset=data["name"],
            params=data,
        )
        with h5py.File(args.out, "r") as handle:
            run.set_tags({"data_fingerprint": handle.attrs["fingerprint"]})
            run.log_metrics({"samples": handle[schema.POSES_3D].shape[0]})
    log.info("preprocess: wrote %s", args.out)


def parser() -> argparse.ArgumentParser:
    """``--params``, ``--raw``, ``--keypoints`` and ``--out``."""
    result = stage_parser(__doc__.splitlines()[0], experiment=False)
    result.add_argument("--raw", required=True, help="raw data folder (the pipeline: data/raw)")
    result.add_argument("--keypoints", required=True, help="2D source: gt, hr, cpn_ft_h36m_dbb, ...")
    result.add_argument("--out", required=True, help="processed HDF5 file to write")
    return result


if __name__ == "__main__":
    sys.exit(run_command("preprocess", parser(), main))
