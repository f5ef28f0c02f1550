"""Stage ``report``: ``metrics/results.md``, its plots and demo GIFs, from the metrics files alone.

dvc.yaml: ``python stages/report.py --params params.yaml --metrics metrics --out metrics/results.md
--html metrics/results.html --plots metrics/plots --demo metrics/demo --models models --processed
data/processed``; the demos (one GIF per temporal experiment) are rendered from the last-epoch
checkpoints in ``--models`` on the processed files in ``--processed``; ``--html`` is the same
document as one self-contained page (plots and demos embedded: what ``snakemake --report`` shows).
The outputs are written under temporary names and renamed into place together when all are
complete. One MLflow run.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mlpgraph.entry import run_command, stage_parser
from mlpgraph.outputs import DEMOS, PLOTS, Output, atomic_outputs, check_outputs
from mlpgraph.params import load_params
from mlpgraph.report import build_report
from mlpgraph.report.html import markdown_to_html
from mlpgraph.tracking import StageRun
from mlpgraph.viz import render_demos

log = logging.getLogger("mlpgraph.stages.report")


def main(args: argparse.Namespace) -> None:
    """Render the demos, then write the report and its plots."""
    params = load_params(args.params)
    out, plots, demo = Path(args.out), Path(args.plots), Path(args.demo) if args.demo else None
    outputs = [Output(out, option="--out"), Output(plots, PLOTS, "--plots")]
    outputs += [Output(demo, DEMOS, "--demo")] if demo is not None else []
    outputs += [Output(args.html, option="--html")] if args.html else []
    check_outputs(outputs, inputs=[args.params, args.metrics, args.models, args.processed])
    described = {"experiments": sorted(params["experiments"]), "refinement": sorted(params.get("refinement") or {})}
    with StageRun("report", params=described) as run:
        with atomic_outputs(*outputs) as staged:
            demos = render_demos(params, Path(args.models), Path(args.processed), demo, staged=staged) if demo else []
            summary = build_report(params, Path(args.metrics), out, plots, demos, staged)
            if args.html:
                page = markdown_to_html(staged.path(out).read_text(), out.parent, "mlpgraph results", staged.path)
                staged.path(Path(args.html)).write_text(page)
        run.set_tags({"data_fingerprint": "+".join(summary["fingerprints"])})
        run.log_artifact(args.out)
    log.info("report: wrote %s and %d plots", summary["markdown"], len(summary["plots"]))


def parser() -> argparse.ArgumentParser:
    """``--params``, ``--metrics`` (read), ``--out``, ``--plots`` and ``--demo`` (written)."""
    result = stage_parser(__doc__.splitlines()[0], experiment=False)
    result.add_argument("--metrics", required=True, help="metrics folder to read (the pipeline: metrics)")
    result.add_argument("--out", required=True, help="report to write (the pipeline: metrics/results.md)")
    result.add_argument("--html", help="the report as one self-contained HTML page (pipeline: metrics/results.html)")
    result.add_argument("--plots", required=True, help="folder for the PNG plots (the pipeline: metrics/plots)")
    result.add_argument("--demo", help="folder for one demo GIF per temporal experiment (the pipeline: metrics/demo)")
    result.add_argument("--models", default="models", help="checkpoints the demos are rendered with (models)")
    result.add_argument("--processed", default="data/processed", help="processed files of the demos (data/processed)")
    return result


if __name__ == "__main__":
    sys.exit(run_command("report", parser(), main))
