"""Stage ``summarise@EXP``: one flat file of the experiment's headline figures, the columns of ``dvc exp show``.

dvc.yaml: ``python stages/summarise.py --experiment EXP --h36m metrics/h36m/EXP.json --dhp
metrics/3dhp/EXP.json --hard metrics/hard/EXP.json --real metrics/real/EXP.json --out
metrics/summary/EXP.json``. P1/P2 of the last epoch and best on test, 3DHP PCK/AUC, hard-pose P1
and real-mocap P1 of the last epoch (the detail files stay plain outputs; ``--real`` may be left
out, and the summary then has no real-mocap P1); a skipped pretrained experiment's summary says
``available: false``. One MLflow run, logging the same figures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlpgraph.entry import run_command
from mlpgraph.outputs import Output, check_outputs
from mlpgraph.results import (
    DhpEvaluation,
    DhpUnavailable,
    H36mEvaluation,
    HardEvaluation,
    RealMocapEvaluation,
    Skipped,
    read_record,
    summarise,
    write_record,
)
from mlpgraph.tracking import StageRun


def main(args: argparse.Namespace) -> None:
    """Read the evaluation files and write the summary."""
    inputs = [args.h36m, args.dhp, args.hard, *([args.real] if args.real else [])]
    check_outputs([Output(args.out, option="--out")], inputs=inputs)
    h36m = read_record(Path(args.h36m), H36mEvaluation, Skipped)
    dhp = read_record(Path(args.dhp), DhpEvaluation, DhpUnavailable, Skipped)
    hard = read_record(Path(args.hard), HardEvaluation, Skipped)
    real = read_record(Path(args.real), RealMocapEvaluation, Skipped) if args.real else None
    if h36m.experiment != args.experiment:
        raise ValueError(f"{args.h36m} is experiment {h36m.experiment!r}, not {args.experiment!r}")
    summary = summarise(h36m, dhp, hard, real=real)
    fingerprint = h36m.data.fingerprint if isinstance(h36m, H36mEvaluation) else None
    with StageRun("summarise", args.experiment, data_fingerprint=fingerprint) as run:
        if not summary.available:
            run.set_tags({"available": False})
        write_record(args.out, summary)
        run.log_metrics(summary.to_dict())
        run.log_artifact(args.out)


def parser() -> argparse.ArgumentParser:
    """``--experiment``, the evaluation files (read) and ``--out`` (written)."""
    result = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    result.add_argument("--experiment", required=True, help="experiment name (checked against the files)")
    result.add_argument("--h36m", required=True, help="metrics/h36m/EXP.json")
    result.add_argument("--dhp", required=True, help="metrics/3dhp/EXP.json")
    result.add_argument("--hard", required=True, help="metrics/hard/EXP.json")
    result.add_argument("--real", help="metrics/real/EXP.json (optional: without it, no real-mocap P1)")
    result.add_argument("--out", required=True, help="the summary to write (metrics/summary/EXP.json)")
    return result


if __name__ == "__main__":
    sys.exit(run_command("summarise", parser(), main))
