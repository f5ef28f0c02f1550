"""Every pipeline stage at Human3.6M's size (the ``full`` preset): wall time, peak memory and disk written per stage.

The stages run in a scratch work folder (``--workdir``; by default a new folder under
``.bench-scale/``, removed at the end unless ``--keep``) holding a ``params.yaml`` (the repository's,
at ``preset: <--scale>``) with the presets beside it. Every stage is a process of its own, so its
peak memory (``ru_maxrss`` from ``os.wait4``) is its own; disk written is the size of the files
the stage created or rewrote in the work folder (its outputs and its MLflow records).

- ``fetch``, ``preprocess@KP`` (every ``data.keypoints``), ``hard_poses@EXP``, ``summarise``: the
  real stage scripts, whole (summarise on the skip records of a pretrained experiment without its
  folder: it reads three small JSON files at any scale).
- ``train_spatial@EXP`` (MLP-Graph 1 frame and 243 frames; the paper's at ``full``):
  ``bench/scale_worker.py train`` times ``--train-steps`` optimiser steps after
  ``--warmup-steps``, the data path included; one epoch is extrapolated.
- ``evaluate_h36m@EXP`` and ``hard_pose_set``: a probe times ``--eval-samples`` test poses /
  ``--hard-candidates`` hard-pose candidates and extrapolates; when that predicts at most
  ``--max-stage-s`` seconds the real stage then runs whole and its row is measured, else the row
  is the probe's, extrapolated and labelled so (the hard-pose probe leaves a stand-in set of the
  derived set's size for ``hard_poses``).
- ``report``: not timed (it needs every experiment's evaluation records and trained demos).

Rows are written as they are measured (``--out`` JSON and ``--markdown``, atomically), so an
interrupted run leaves a partial table; the table is printed at the end.

    .venv/bin/python bench/scale.py                       # full -> metrics/bench_scale.{json,md}
    .venv/bin/python bench/scale.py --scale small --stages fetch preprocess train --keep
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from mlpgraph.errors import UserInputError
from mlpgraph.outputs import Output, check_outputs
from mlpgraph.paths import FINAL_CHECKPOINT, ArtifactLayout
from scale_runner import EXPERIMENTS, NEEDS, REPO, RUNNERS, STAGES, WORKDIR_MARKER, ScaleBench, StageFailedError
from scale_table import format_markdown

log = logging.getLogger("bench.scale")

DEFAULT_BASE = Path(".bench-scale")


@dataclass
class WorkFolder:
    """The scratch folder; what this run created in it is what :meth:`clean` removes."""

    root: Path
    created_root: bool
    created_base: Path | None
    reused: bool

    def clean(self) -> None:
        """Remove what this run created: the folder (or, given empty, its content), and its parent if made here."""
        if self.reused:
            return
        if self.created_root:
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            for child in self.root.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        if self.created_base is not None and self.created_base.is_dir() and not any(self.created_base.iterdir()):
            self.created_base.rmdir()


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=("tiny", "small", "full"), default="full", help="preset (default full)")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES), help="stages to run (all)")
    parser.add_argument(
        "--workdir", type=Path, help=f"scratch folder: new, empty, or a kept one (default: under {DEFAULT_BASE}/)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (its data can be reused)")
    parser.add_argument("--out", type=Path, default=Path("metrics/bench_scale.json"))
    parser.add_argument("--markdown", type=Path, default=Path("metrics/bench_scale.md"))
    parser.add_argument("--train-steps", type=positive, default=20, help="timed optimiser steps per network")
    parser.add_argument("--warmup-steps", type=int, default=2, help="untimed steps before them")
    parser.add_argument("--eval-samples", type=positive, default=4096, help="test poses the evaluation probe times")
    parser.add_argument("--hard-candidates", type=positive, default=256, help="candidates the hard-pose probe times")
    parser.add_argument(
        "--threads", type=positive,
        help="torch threads of every stage (OMP_NUM_THREADS; default: torch's own, every core); 1 keeps timings "
        "sane on a machine other jobs share",
    )
    parser.add_argument(
        "--compile", choices=("auto", "true", "false"),
        help="train.compile of the work folder's params.yaml (default: the repository's); false skips "
        "torch.compile's warm-up, minutes on a CPU",
    )
    parser.add_argument(
        "--max-stage-s", type=float, default=600.0,
        help="a probed stage predicted to take longer is extrapolated, not run whole (default 600)",
    )
    args = parser.parse_args(argv)
    try:  # refused before any stage runs
        check_arguments(args)
    except UserInputError as exc:
        parser.error(str(exc))
    return args


def check_arguments(args: argparse.Namespace) -> None:
    """Outputs the policy allows, outside the work folder; a work folder this run may use; the stages' inputs."""
    check_outputs([Output(args.out, option="--out"), Output(args.markdown, option="--markdown")])
    if args.warmup_steps < 0:
        raise UserInputError(f"--warmup-steps: must be at least 0, got {args.warmup_steps}")
    reused = args.workdir is not None and (args.workdir / WORKDIR_MARKER).is_file()
    if args.workdir is not None:
        workdir = args.workdir.resolve()
        for option, path in (("--out", args.out), ("--markdown", args.markdown)):
            if path.resolve().is_relative_to(workdir):
                raise UserInputError(f"{option} {path}: is inside --workdir {args.workdir}")
        if reused:
            kept = json.loads((args.workdir / WORKDIR_MARKER).read_text()).get("scale")
            if kept != args.scale:
                raise UserInputError(f"--workdir {args.workdir}: holds scale {kept!r}, not {args.scale!r}")
        elif args.workdir.exists() and (not args.workdir.is_dir() or any(args.workdir.iterdir())):
            raise UserInputError(
                f"--workdir {args.workdir}: exists and is not an empty folder nor one kept by bench/scale.py"
            )
    present = stages_present(args.workdir) if reused else set()
    for stage in args.stages:
        for need in NEEDS.get(stage, ()):
            if need not in args.stages and need not in present:
                raise UserInputError(f"--stages {stage}: needs {need}'s outputs; add {need} or reuse a kept --workdir")


def stages_present(root: Path) -> set[str]:
    """The stages whose outputs a kept work folder holds."""
    layout = ArtifactLayout(root)
    found = {
        "fetch": (layout.raw() / "manifest.json").is_file(),
        "preprocess": any((root / "data" / "processed").glob("*_gt_*.h5")),
        "train": all((layout.models(name) / FINAL_CHECKPOINT).is_file() for name in EXPERIMENTS),
        "hard_pose_set": layout.hard_poses().is_file(),
    }
    return {stage for stage, ok in found.items() if ok}


def work_folder(args: argparse.Namespace) -> WorkFolder:
    """Create (or reuse) the work folder and write its ``params.yaml`` and presets."""
    if args.workdir is not None and (args.workdir / WORKDIR_MARKER).is_file():
        folder = WorkFolder(args.workdir.resolve(), False, None, reused=True)
        write_params(folder.root, args, yaml.safe_load((folder.root / "params.yaml").read_text()))
        return folder
    created_base = None
    if args.workdir is None:
        created_base = None if DEFAULT_BASE.exists() else DEFAULT_BASE
        DEFAULT_BASE.mkdir(exist_ok=True)
        root, created_root = Path(tempfile.mkdtemp(prefix=f"{args.scale}-", dir=DEFAULT_BASE)), True
    else:
        created_root = not args.workdir.exists()
        root = args.workdir
        root.mkdir(parents=True, exist_ok=True)
    folder = WorkFolder(root.resolve(), created_root, created_base, reused=False)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["preset"] = args.scale
    write_params(folder.root, args, params)
    shutil.copytree(REPO / "configs", folder.root / "configs")
    (folder.root / WORKDIR_MARKER).write_text(json.dumps({"scale": args.scale}) + "\n")
    return folder


def write_params(root: Path, args: argparse.Namespace, params: dict) -> None:
    """The work folder's ``params.yaml``: ``params`` with ``--compile`` applied when given."""
    if args.compile is not None:
        params["train"]["compile"] = {"auto": "auto", "true": True, "false": False}[args.compile]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def run_stages(bench: ScaleBench, stages: list[str]) -> int:
    """Run the chosen stages in pipeline order; 0, or 1 when one failed (recorded, the rest not run)."""
    try:
        for stage in STAGES:
            if stage in stages:
                RUNNERS[stage](bench)
    except StageFailedError as exc:
        log.error("%s", exc)
        bench.results["failed"] = str(exc)
        bench.write()
        return 1
    bench.results["complete"] = True
    bench.write()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))  # clean up on a kill too
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    folder = work_folder(args)
    log.info("work folder %s", folder.root)
    try:
        bench = ScaleBench(args, folder.root)
        bench.write()
        status = run_stages(bench, args.stages)
    finally:
        if args.keep:
            log.info("kept the work folder %s", folder.root)
        else:
            folder.clean()
    print(format_markdown(bench.results))
    return status


if __name__ == "__main__":
    sys.exit(main())
