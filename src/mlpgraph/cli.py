"""The ``mlpgraph`` command: one subcommand per pipeline stage (and tools around them).

Each subcommand parses its arguments, reads ``params.yaml`` (merged with its preset) and calls
the library. A :class:`~mlpgraph.errors.UserInputError` becomes one line on stderr and exit
status 2, without a traceback; anything else is a bug and keeps its traceback.

The training stages also run under ``torchrun --nproc-per-node N`` (see :mod:`mlpgraph.stage_runs`);
then ranks > 0 log warnings and errors only, tagged with their rank, so the output reads as one run's.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from mlpgraph.errors import UserInputError
from mlpgraph.params import get, load_params

log = logging.getLogger("mlpgraph")

EXIT_USER_ERROR = 2


def _cmd_fetch(args: argparse.Namespace) -> None:
    from mlpgraph.data.fetch import fetch
    from mlpgraph.tracking import StageRun

    params = load_params(args.params)
    with StageRun("fetch", params={"preset": get(params, "preset", None), "data": get(params, "data")}) as run:
        manifest = fetch(params, Path(args.out), base_dir=Path(args.params).resolve().parent)
        run.set_tags({"data_fingerprint": manifest["fingerprint"]})
        run.log_metrics({"files": len(manifest["files"])})
        run.log_artifact(Path(args.out) / "manifest.json")
    log.info(
        "fetch: %d files in %s (fingerprint %s)",
        len(manifest["files"]),
        args.out,
        manifest["fingerprint"][:12],
    )


def _cmd_preprocess(args: argparse.Namespace) -> None:
    import h5py

    from mlpgraph.data import schema
    from mlpgraph.data.preprocess import build_hdf5
    from mlpgraph.tracking import StageRun

    params = load_params(args.params)
    with StageRun("preprocess", params={"data": get(params, "data")}, item=args.keypoints) as run:
        build_hdf5(
            Path(args.raw),
            Path(args.out),
            keypoints=args.keypoints,
            layout=get(params, "data.layout"),
            train_subjects=tuple(get(params, "data.train_subjects")),
            test_subjects=tuple(get(params, "data.test_subjects")),
            dataset=get(params, "data.name"),
            params=get(params, "data"),
        )
        with h5py.File(args.out, "r") as handle:
            run.set_tags({"data_fingerprint": handle.attrs["fingerprint"]})
            run.log_metrics({"samples": handle[schema.POSES_3D].shape[0]})
    log.info("preprocess: wrote %s", args.out)


def _cmd_import_release(args: argparse.Namespace) -> None:
    from mlpgraph.pretrained import import_release

    expected = {
        "frames": args.frames,
        "hid_dim": args.hid_dim,
        "spatial_hid_dim": args.spatial_hid_dim,
        "channel_hid_dim": args.channel_hid_dim,
        "num_layers": args.num_layers,
        "layout": args.layout,
    }
    config = import_release(
        args.weights, args.out, refine_weights=args.refine, aggregation=args.aggregation, expected=expected
    )
    log.info("import-release: wrote %s (%s)", args.out, ", ".join(f"{k}={v}" for k, v in config.items()))


def _cmd_predict(args: argparse.Namespace) -> None:
    from mlpgraph.lifting import predict_file

    # Options left unset take the library's defaults (mlpgraph.lifting.DEFAULT_*): one source.
    tuning = {name: value for name in ("min_score", "max_gap") if (value := getattr(args, name)) is not None}
    predict_file(
        Path(args.checkpoint),
        Path(args.input),
        Path(args.out),
        width=args.width,
        height=args.height,
        track_id=args.track_id,
        flip_test=not args.no_flip,
        gif=Path(args.gif) if args.gif else None,
        **tuning,
    )
    log.info("predict: wrote %s%s", args.out, f" and {args.gif}" if args.gif else "")


def _cmd_report(args: argparse.Namespace) -> None:
    from mlpgraph.report import build_report
    from mlpgraph.tracking import StageRun
    from mlpgraph.viz import render_demos

    params = load_params(args.params)
    described = {"experiments": sorted(get(params, "experiments")), "refinement": sorted(get(params, "refinement", {}))}
    with StageRun("report", params=described) as run:
        demos = render_demos(params, Path(args.params).resolve().parent, Path(args.demo)) if args.demo else []
        summary = build_report(params, Path(args.metrics), Path(args.out), Path(args.plots), demos)
        run.set_tags({"data_fingerprint": "+".join(summary["fingerprints"])})
        run.log_artifact(args.out)
    log.info("report: wrote %s and %d plots", summary["markdown"], len(summary["plots"]))


def _frame_range(text: str) -> tuple[int | None, int | None]:
    """``START:END`` (either may be left out) for ``mlpgraph render --frames``."""
    start, sep, end = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return (int(start) if start.strip() else None, int(end) if end.strip() else None)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:END (frame numbers), got {text!r}") from None


def _cmd_render(args: argparse.Namespace) -> None:
    from mlpgraph.viz import render_sequence

    frames = None if args.frames is None else slice(*args.frames)
    result = render_sequence(
        Path(args.checkpoint),
        Path(args.processed),
        args.subject,
        args.action,
        args.camera,
        frames,
        Path(args.out),
        view=args.view,
        fps=args.fps,
        mp4=args.mp4,
        device=args.device,
    )
    log.info("render: wrote %s%s", result["gif"], f" and {result['mp4']}" if result["mp4"] else "")


def _run_stage(function_name: str, *path_args: str) -> Callable[[argparse.Namespace], None]:
    """A handler calling ``mlpgraph.stage_runs.<function_name>(params, [experiment,] *paths)``."""

    def handler(args: argparse.Namespace) -> None:
        from mlpgraph import stage_runs

        params = load_params(args.params)
        experiment = (args.experiment,) if getattr(args, "experiment", None) else ()
        paths = [Path(getattr(args, name)) for name in path_args]
        getattr(stage_runs, function_name)(params, *experiment, *paths)
        log.info("%s: done", args.command)

    return handler


# Stage subcommands after preprocessing: name -> (stage_runs function, help, [(option, default)]).
_EXPERIMENT_STAGES: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    "train-spatial": (
        "run_train_spatial",
        "Train an experiment's lifting network with the released recipe.",
        [
            ("out", "models/EXP/spatial"),
            ("metrics", "metrics/train/EXP.json"),
            ("curve", "metrics/train/EXP_curve.json"),
        ],
    ),
    "train-refine": (
        "run_train_refine",
        "Train an experiment's pose refinement (jointly with the lifting network, or on the frozen one).",
        [
            ("spatial", "models/EXP/spatial"),
            ("out", "models/EXP/refine"),
            ("metrics", "metrics/train/EXP_refine.json"),
            ("curve", "metrics/train/EXP_refine_curve.json"),
        ],
    ),
    "evaluate-h36m": (
        "run_evaluate_h36m",
        "Human3.6M protocol: P1/P2 per action on the test subjects, with flip averaging.",
        [("models", "models/EXP/spatial"), ("out", "metrics/h36m/EXP.json")],
    ),
    "evaluate-refine": (
        "run_evaluate_refine",
        "P1/P2 with and without refinement, with ground-truth and estimated root depth.",
        [("models", "models/EXP/refine"), ("out", "metrics/h36m/EXP_refine.json")],
    ),
    "evaluate-3dhp": (
        "run_evaluate_3dhp",
        "MPI-INF-3DHP protocol: PCK@150 mm and AUC, overall and per scene.",
        [("models", "models/EXP/spatial"), ("raw", "data/raw"), ("out", "metrics/3dhp/EXP.json")],
    ),
    "hard-poses": (
        "run_hard_poses",
        "P1/P2 on the hard-pose set.",
        [("models", "models/EXP/spatial"), ("hard", "data/processed/hard_poses.npz"), ("out", "metrics/hard/EXP.json")],
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="mlpgraph", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], None], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
        p.set_defaults(handler=handler)
        return p

    p = add("fetch", _cmd_fetch, "Write the raw data set (synthetic or the user's files) into a folder.")
    p.add_argument("--out", default="data/raw", help="raw data folder (default: data/raw)")

    p = add(
        "preprocess",
        _cmd_preprocess,
        "Turn the raw data set into one HDF5 file per keypoint source.",
    )
    p.add_argument("--raw", default="data/raw", help="raw data folder (default: data/raw)")
    p.add_argument("--keypoints", required=True, help="2D source: gt, hr, cpn_ft_h36m_dbb, ...")
    p.add_argument("--out", required=True, help="output HDF5 path")

    for name, (function_name, help_text, options) in _EXPERIMENT_STAGES.items():
        p = add(name, _run_stage(function_name, *(option for option, _ in options)), help_text)
        p.add_argument("--experiment", required=True, help="experiment name in params.yaml's 'experiments'")
        for option, default in options:
            p.add_argument(f"--{option}", required=True, help=f"path (the pipeline uses {default})")

    p = add("hard-pose-set", _run_stage("run_hard_pose_set", "raw", "processed", "out"), "Build the hard-pose set.")
    p.add_argument("--raw", default="data/raw", help="raw data folder (a user hard-pose file is taken from there)")
    p.add_argument("--processed", required=True, help="processed HDF5 whose train/test 3D define the derived set")
    p.add_argument("--out", default="data/processed/hard_poses.npz", help="output .npz")

    p = add("report", _cmd_report, "Write the results report (Markdown) and its plots from the metrics files.")
    p.add_argument("--metrics", default="metrics", help="metrics folder to read (default: metrics)")
    p.add_argument("--out", default="metrics/results.md", help="report to write (default: metrics/results.md)")
    p.add_argument("--plots", default="metrics/plots", help="folder for the PNG plots (default: metrics/plots)")
    p.add_argument("--demo", help="folder for one demo GIF per temporal experiment (the pipeline: metrics/demo)")

    p = sub.add_parser(
        "predict",
        help="Lift your own 2D keypoints (.npz in the model's layout, or COCO-17 JSON) to root-relative 3D.",
        description="Lift your own 2D keypoints to root-relative 3D with a checkpoint: an .npz with keypoints "
        "(T, J, 2) pixels in the model's layout, width and height, or COCO-17 keypoint JSON as 2D detectors "
        "write it. Low-confidence joints and missing frames are interpolated in time (see mlpgraph.lifting).",
    )
    p.set_defaults(handler=_cmd_predict)
    p.add_argument("--checkpoint", required=True, help="model checkpoint (e.g. models/EXP/spatial/final.pt)")
    p.add_argument("--input", required=True, help="keypoints: .npz or COCO-17 keypoint JSON")
    p.add_argument("--out", required=True, help=".npz to write (poses_3d, keypoints_2d, frames, ...)")
    p.add_argument("--width", type=float, help="image width in pixels, when the file gives none")
    p.add_argument("--height", type=float, help="image height in pixels, when the file gives none")
    p.add_argument("--min-score", type=float, help="joints scored lower are interpolated (default: 0.3)")
    p.add_argument("--track-id", type=int, help="COCO track to lift (default: the track seen in the most frames)")
    p.add_argument("--max-gap", type=int, help="most consecutive frames that may be filled (default: 25)")
    p.add_argument("--no-flip", action="store_true", help="no flip test (default: average with the flipped input)")
    p.add_argument("--gif", help="also write an animated GIF of the 2D input and the 3D prediction")

    p = sub.add_parser(
        "import-release",
        help="Convert the MLP-Graph release's .pth state dicts into this project's checkpoint format.",
        description="Convert the MLP-Graph release's .pth state dicts into this project's checkpoint format. "
        "Sizes are read from the weights; any size given here is checked against them.",
    )
    p.set_defaults(handler=_cmd_import_release)
    p.add_argument("--weights", required=True, help="the release's MLP-Graph .pth (a plain state dict)")
    p.add_argument("--refine", help="the release's post_refine .pth, if any")
    p.add_argument("--out", required=True, help="checkpoint to write (e.g. models/pretrained/gt_f1.pt)")
    p.add_argument("--aggregation", choices=["diagonal", "graph"], default="diagonal")
    for flag, kind in (
        ("--frames", int),
        ("--hid-dim", int),
        ("--spatial-hid-dim", int),
        ("--channel-hid-dim", int),
        ("--num-layers", int),
        ("--layout", str),
    ):
        p.add_argument(flag, type=kind, help="expected value (checked against the weights)")

    p = sub.add_parser(
        "render",
        help="Animate one sequence: 2D input beside the predicted and ground-truth 3D skeleton (GIF, optional MP4).",
        description="Animate one sequence: 2D input beside the predicted and ground-truth 3D skeleton (GIF, "
        "optional MP4). By default the first 100 frames, every 2nd one, played at 25 fps (real time for 50 fps data).",
    )
    p.set_defaults(handler=_cmd_render)
    p.add_argument("--checkpoint", required=True, help="model checkpoint (e.g. models/EXP/spatial/final.pt)")
    p.add_argument("--processed", required=True, help="processed HDF5 holding the sequence")
    p.add_argument("--subject", required=True, help="subject, e.g. S9")
    p.add_argument("--action", required=True, help="action as in the file, e.g. 'Walking 1'")
    p.add_argument("--camera", type=int, default=0, help="camera index (default: 0)")
    p.add_argument("--frames", type=_frame_range, metavar="START:END", help="frame range (default: 0:100)")
    p.add_argument("--view", choices=["rotate", "fixed"], default="rotate", help="3D view (default: rotate)")
    p.add_argument("--fps", type=float, help="playback fps; every round(50 / fps)-th frame is drawn (default: 25)")
    p.add_argument("--mp4", action="store_true", help="also write an MP4 beside the GIF when ffmpeg is available")
    p.add_argument("--device", default="cpu", help="torch device for the prediction (default: cpu)")
    p.add_argument("--out", default="demo.gif", help="GIF to write (default: demo.gif)")
    return parser


def _launch_rank() -> int:
    """This process's rank when ``torchrun`` started several (``RANK``), else 0; read without importing torch."""
    try:
        return int(os.environ.get("RANK") or 0) if int(os.environ.get("WORLD_SIZE") or 1) > 1 else 0
    except ValueError:
        return 0  # mlpgraph.distributed reports malformed variables as a user error


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mlpgraph`` console script and of the ``stages/*.py`` scripts."""
    args = build_parser().parse_args(argv)
    rank = _launch_rank()
    tag = f" [rank {rank}]" if rank else ""
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO if rank == 0 else logging.WARNING,
        format=f"%(asctime)s %(levelname)s{tag} %(name)s: %(message)s",
    )
    try:
        args.handler(args)
    except UserInputError as exc:
        print(f"mlpgraph {args.command}{tag}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
