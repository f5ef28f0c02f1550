"""Stage ``fetch``: the raw data set (the synthetic generator, or the user's files) in the community formats.

dvc.yaml: ``python stages/fetch.py --params params.yaml --out data/raw``. Writes the folder
atomically with ``manifest.json`` (SHA-256 of every file) last; one MLflow run.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mlpgraph.data.fetch import fetch, fetch_inputs
from mlpgraph.entry import run_command, stage_parser
from mlpgraph.outputs import RAW, Output, check_outputs
from mlpgraph.params import load_params
from mlpgraph.tracking import StageRun

log = logging.getLogger("mlpgraph.stages.fetch")


def main(args: argparse.Namespace) -> None:
    """Fetch the data set ``params.yaml``'s ``data`` section describes into ``--out``."""
    params = load_params(args.params)
    out, base_dir = Path(args.out), Path(args.params).resolve().parent
    check_outputs([Output(out, RAW, "--out")], inputs=[args.params, *fetch_inputs(params, base_dir)])
    with StageRun("fetch", params={"preset": params.get("preset"), "data": params["data"]}) as run:
        manifest = fetch(params, out, base_dir=base_dir)
        run.set_tags({"data_fingerprint": manifest["fingerprint"]})
        run.log_metrics({"files": len(manifest["files"])})
        run.log_artifact(out / "manifest.json")
    log.info("fetch: %d files in %s (fingerprint %s)", len(manifest["files"]), out, manifest["fingerprint"][:12])


def parser() -> argparse.ArgumentParser:
    """``--params`` and ``--out`` (the raw data folder)."""
    result = stage_parser(__doc__.splitlines()[0], experiment=False)
    result.add_argument("--out", required=True, help="raw data folder to write (the pipeline: data/raw)")
    return result


if __name__ == "__main__":
    sys.exit(run_command("fetch", parser(), main))
