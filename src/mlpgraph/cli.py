"""The ``mlpgraph`` command: the tools a user runs on their own files (argument parsing only).

``predict`` lifts the user's 2D keypoints with a checkpoint, ``render`` animates a processed
sequence, ``import-release`` converts the MLP-Graph release's weights. The pipeline's stages are
the scripts in ``stages/`` (see ``dvc.yaml``), not subcommands. A user mistake is one line on
stderr and exit status 2 (:mod:`mlpgraph.entry`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from mlpgraph.entry import run_command
from mlpgraph.extras import require_extra
from mlpgraph.outputs import Output, check_outputs
from mlpgraph.user_keypoints.formats import KEYPOINT_FORMATS

log = logging.getLogger("mlpgraph")


def _cmd_import_release(args: argparse.Namespace) -> None:
    from mlpgraph.pretrained import import_release

    check_outputs([Output(args.out, option="--out")], inputs=[args.weights, args.refine])
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
    from mlpgraph.errors import UserInputError
    from mlpgraph.lifting import VideoOptions, predict_file

    if (args.video is None) != (args.mp4 is None):
        raise UserInputError("--video and --mp4 go together: the MP4 is drawn over the source video's frames")
    if args.gif:
        require_extra("viz", "--gif")
    if args.video:
        require_extra("video", "--video/--mp4")
    outputs = [Output(args.out, option="--out")]
    outputs += [Output(args.gif, option="--gif")] if args.gif else []
    outputs += [Output(args.mp4, option="--mp4")] if args.mp4 else []
    check_outputs(outputs, inputs=[args.checkpoint, args.input, *([args.video] if args.video else [])])
    video = VideoOptions(args.video, args.mp4, args.view, args.first_frame) if args.video else None
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
        batch_size=args.batch_size,
        device=args.device,
        gif=Path(args.gif) if args.gif else None,
        input_fps=args.input_fps,
        video=video,
        fmt=args.format,
        **tuning,
    )
    written = [args.out, *(path for path in (args.gif, args.mp4) if path)]
    log.info("predict: wrote %s", " and ".join(map(str, written)))


def _cmd_export(args: argparse.Namespace) -> None:
    from mlpgraph.export import export_checkpoint

    path = export_checkpoint(args.checkpoint, args.out, args.format, flip_test=args.flip_test)
    log.info("export: wrote %s (%s, checked against PyTorch to %g m)", path, args.format, args.tolerance)


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
    require_extra("pipeline", "mlpgraph render")
    from mlpgraph.devices import resolve_device
    from mlpgraph.viz import render_sequence

    device = str(resolve_device(args.device, "--device"))
    outputs = [Output(args.out, option="--out")]
    outputs += [Output(Path(args.out).with_suffix(".mp4"), option="--mp4")] if args.mp4 else []
    check_outputs(outputs, inputs=[args.checkpoint, args.processed])
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
        device=device,
    )
    log.info("render: wrote %s%s", result["gif"], f" and {result['mp4']}" if result["mp4"] else "")


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="Lift your own 2D keypoints (.npz in the model's layout, or COCO-17 JSON) to root-relative 3D.",
        description="Lift your own 2D keypoints to root-relative 3D with a checkpoint: an .npz with keypoints "
        "(T, J, 2) pixels in the model's layout, width and height, or COCO-17 keypoint JSON as 2D detectors "
        "write it. Low-confidence joints and missing frames are interpolated in time (see mlpgraph.lifting).",
    )
    p.set_defaults(handler=_cmd_predict)
    p.add_argument("--checkpoint", required=True, help="model checkpoint (e.g. models/EXP/spatial/final.pt)")
    p.add_argument(
        "--input",
        required=True,
        help="keypoints: .npz in the model's layout, COCO-17 results JSON, MMPose/RTMPose predictions JSON, "
        "AlphaPose results JSON, or an OpenPose --write_json folder (BODY_25)",
    )
    p.add_argument(
        "--format",
        choices=KEYPOINT_FORMATS,
        default="auto",
        help="the --input's format (default: auto, told from the content)",
    )
    p.add_argument("--out", required=True, help=".npz to write (poses_3d, keypoints_2d, frames, ...)")
    p.add_argument("--width", type=float, help="image width in pixels, when the file gives none")
    p.add_argument("--height", type=float, help="image height in pixels, when the file gives none")
    p.add_argument("--min-score", type=float, help="joints scored lower are interpolated (default: 0.3)")
    p.add_argument(
        "--track-id",
        type=int,
        help="person to lift: the file's track id, or (files without track ids) the number of a track linked over "
        "time, numbered by first appearance (default: the file's track seen in the most frames, else the linked "
        "track with the largest summed score)",
    )
    p.add_argument("--max-gap", type=int, help="most consecutive frames that may be filled (default: 25)")
    p.add_argument("--no-flip", action="store_true", help="no flip test (default: average with the flipped input)")
    p.add_argument(
        "--input-fps",
        type=float,
        help="frame rate of the keypoints (default: the --video's, else 50, the models'); temporal models see them "
        "resampled to 50 fps, and one pose is written per input frame",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when present, else CPU), cpu, cuda, cuda:N or mps")
    p.add_argument("--batch-size", type=int, default=1024, help="poses lifted per batch (default: 1024)")
    p.add_argument("--gif", help="also write an animated GIF of the 2D input and the 3D prediction")
    p.add_argument("--video", help="the source video of the keypoints (its size and rate are the defaults)")
    p.add_argument("--mp4", help="with --video: write an MP4 of its frames with the 2D skeleton beside the 3D")
    p.add_argument("--view", default="rotate", help="--mp4's 3D panel: rotate (default, turning slowly) or fixed")
    p.add_argument(
        "--first-frame", type=int, default=0, help="the keypoint file's frame number of the video's first frame (0)"
    )


def _add_export(sub: argparse._SubParsersAction) -> None:
    from mlpgraph.export import FORMATS, PARITY_TOLERANCE

    p = sub.add_parser(
        "export",
        help="Export a checkpoint's lifting network to ONNX or TorchScript (checked against PyTorch).",
        description="Export a checkpoint's lifting network to ONNX (the export extra) or TorchScript, with a "
        "dynamic batch size: input keypoints_2d (B, T, J, 2) normalised as preprocessing does, output poses_3d "
        "(B, J, 3) root-relative metres; the layout, frames and joint names are stored in the file. The file "
        "replaces --out only when its outputs match PyTorch's to the tolerance.",
    )
    p.set_defaults(handler=_cmd_export, tolerance=PARITY_TOLERANCE)
    p.add_argument("--checkpoint", required=True, help="model checkpoint (e.g. models/EXP/spatial/final.pt)")
    p.add_argument("--format", required=True, choices=FORMATS, help="onnx or torchscript")
    p.add_argument("--out", required=True, help="file to write (e.g. model.onnx, model.pt)")
    p.add_argument("--flip-test", action="store_true", help="export the flip-test average (as predict does)")


def _add_import_release(sub: argparse._SubParsersAction) -> None:
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


def _add_render(sub: argparse._SubParsersAction) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="mlpgraph", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_predict(sub)
    _add_import_release(sub)
    _add_export(sub)
    _add_render(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mlpgraph`` console script."""
    parser = build_parser()
    command = next((word for word in (argv if argv is not None else sys.argv[1:]) if not word.startswith("-")), "")
    return run_command(f"mlpgraph {command}".strip(), parser, lambda args: args.handler(args), argv)


if __name__ == "__main__":
    raise SystemExit(main())
