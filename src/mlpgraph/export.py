"""Export a checkpoint's lifting network to ONNX or TorchScript, checked against PyTorch (``mlpgraph export``).

The exported graph is the library's inference function (:func:`mlpgraph.evaluation.predict` for
one batch): (B, T, J, 2) normalised 2D (:func:`mlpgraph.cameras.normalise_screen` of the pixels)
to (B, J, 3) root-relative metres, the root row subtracted, the flip test averaged in with
``flip_test``. The batch size B is dynamic. MLP-Graph with the release's diagonal aggregation is
exported on its fast inference path (:mod:`mlpgraph.models.joint_major`: eval BatchNorm folded into
one weight per joint), written here without the CPU cache blocking of the joint MLP, whose Python
loop over row blocks would fix the batch size in the graph; the graph baselines as they are.

The file carries what a user needs to feed it (:func:`export_metadata`): the layout, its joint
names, the window length and the meaning of input and output, as ONNX ``metadata_props`` or the
TorchScript extra file :data:`METADATA_FILE`. :func:`export_checkpoint` writes under a temporary
name, runs :func:`verify_export` on it and publishes it only when the exported network matches
PyTorch to :data:`PARITY_TOLERANCE`; otherwise nothing new is left at ``out``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mlpgraph import __version__
from mlpgraph.errors import UserInputError
from mlpgraph.layouts import SkeletonLayout, get_layout, root_relative
from mlpgraph.outputs import atomic_path, check_outputs

log = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript")
PARITY_TOLERANCE = 1e-4
METADATA_FILE = "mlpgraph.json"
INPUT_NAME, OUTPUT_NAME = "keypoints_2d", "poses_3d"
# The batch size of the example input the network is traced with (not 0 or 1, which export specialises).
TRACE_BATCH = 4
# Rows of the input example logged with an MLflow model (more than 1: a batch of 1 would fix the batch size).
EXAMPLE_ROWS = 2
INPUT_MEANING = (
    "float32 (batch, frames, joints, 2): 2D keypoints of a window of `frames` consecutive frames centred on "
    "the target frame, in the layout's joint order, normalised as x_px / width * 2 - [1, height / width]"
)
OUTPUT_MEANING = "float32 (batch, joints, 3): the centre frame's root-relative 3D pose in camera axes, metres"
# Loggers of the exporters, quietened while they run (skipped torchvision ops, empty-attribute notes).
_EXPORTER_LOGGERS = ("torch.onnx", "torch.export", "torch._dynamo", "onnx_ir", "onnxscript")


class ExportParityError(UserInputError):
    """The exported network's output differs from PyTorch's by more than the tolerance: nothing is published."""


class FoldedMLPGraph(nn.Module):
    """MLP-Graph's folded inference arithmetic (:func:`mlpgraph.models.joint_major.forward_folded`) as a module.

    The folded per-joint kernels are buffers; the joint MLP is two plain products over all rows at
    once, so tracing and ``torch.export`` see no Python loop over the batch.
    """

    def __init__(self, model: nn.Module) -> None:
        from mlpgraph.models import joint_major

        super().__init__()
        fused = joint_major.fold(model)
        self.num_joints, self.frames = model.num_joints, model.frames
        self.augmented = joint_major.uses_tokens(model)
        self.embed, self.norm, self.head = model.embed, model.norm, model.head
        self.joint_norms = nn.ModuleList(block.joint_norm for block in model.blocks)
        self.joint_mlps = nn.ModuleList(block.joint_mlp for block in model.blocks)
        for index, kernel in enumerate(fused["kernels"]):
            self.register_buffer(f"kernel{index}", kernel)
        self.slices: list[tuple[int, int]] = list(fused.get("slices", []))
        if not self.augmented:
            for name in ("initial_matrix", "initial_scale", "initial_bias"):
                self.register_buffer(name, fused[name])

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, J, 2) -> (B, J, 3), the centre frame's pose (root row not subtracted)."""
        j = self.num_joints
        tokens = x.permute(2, 0, 1, 3).reshape(-1, 2 * self.frames)
        h = self.embed(tokens)
        c = h.shape[1]
        if self.augmented:
            tokens_1 = torch.cat((tokens, torch.ones_like(tokens[:, :1])), dim=1).reshape(j, -1, 2 * self.frames + 1)
        else:
            initial = (h @ self.initial_matrix).reshape(j, -1, self.initial_matrix.shape[1])
            initial = torch.addcmul(self.initial_bias, initial, self.initial_scale)
        h = h.reshape(j, -1, c)
        for b, (joint_norm, joint_mlp) in enumerate(zip(self.joint_norms, self.joint_mlps, strict=True)):
            h = h + joint_mlp(joint_norm(h).permute(1, 2, 0)).permute(2, 0, 1)
            first, second = getattr(self, f"kernel{2 * b}"), getattr(self, f"kernel{2 * b + 1}")
            if self.augmented:
                y = nn.functional.gelu(torch.bmm(torch.cat((h, tokens_1), dim=2), first))
                y = nn.functional.gelu(torch.bmm(torch.cat((y, tokens_1), dim=2), second))
            else:
                (s1, e1), (s2, e2) = self.slices[2 * b], self.slices[2 * b + 1]
                y = nn.functional.gelu(torch.baddbmm(initial[..., s1:e1], h, first))
                y = nn.functional.gelu(torch.baddbmm(initial[..., s2:e2], y, second))
            h = h + y
        return self.head(self.norm(h)).transpose(0, 1)


class ExportedLifter(nn.Module):
    """What is exported: the network's inference function, root row subtracted, the flip test optional."""

    def __init__(self, model: nn.Module, layout: SkeletonLayout, flip_test: bool) -> None:
        super().__init__()
        self.network = inference_network(model)
        self.root = layout.root
        self.flip_test = flip_test
        self.register_buffer("flip_permutation", torch.as_tensor(layout.flip_permutation, dtype=torch.long))
        self.register_buffer("flip_sign_2d", torch.tensor([-1.0, 1.0]))
        self.register_buffer("flip_sign_3d", torch.tensor([-1.0, 1.0, 1.0]))

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, J, 2) normalised 2D -> (B, J, 3) root-relative metres."""
        pred = self.network(x)
        if self.flip_test:
            flipped = self.network(x.index_select(2, self.flip_permutation) * self.flip_sign_2d)
            pred = (pred + flipped.index_select(1, self.flip_permutation) * self.flip_sign_3d) / 2
        return pred - pred[:, self.root : self.root + 1]


def inference_network(model: nn.Module) -> nn.Module:
    """The module whose forward is ``model``'s eval-mode inference function, in a traceable form."""
    from mlpgraph.models.stmlpgraph import MLPGraph

    if isinstance(model, MLPGraph):
        if model.arithmetic == "fast" and model.aggregation == "diagonal":
            return FoldedMLPGraph(model)
        return _ReleaseArithmetic(model)
    return model


class _ReleaseArithmetic(nn.Module):
    """MLP-Graph on the release's ops (``aggregation="graph"``: nothing folds per joint)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model.forward_release(x)


def export_metadata(model: nn.Module, layout: SkeletonLayout, flip_test: bool) -> dict[str, str]:
    """What the exported file expects and returns, as string key-values (ONNX ``metadata_props``)."""
    return {
        "mlpgraph.version": __version__,
        "mlpgraph.network": type(model).__name__,
        "mlpgraph.config": json.dumps(dict(model.config), sort_keys=True),
        "mlpgraph.layout": layout.name,
        "mlpgraph.joint_names": json.dumps(list(layout.joint_names)),
        "mlpgraph.root_joint": layout.joint_names[layout.root],
        "mlpgraph.frames": str(int(getattr(model, "frames", 1))),
        "mlpgraph.flip_test": json.dumps(bool(flip_test)),
        "mlpgraph.input": f"{INPUT_NAME}: {INPUT_MEANING}",
        "mlpgraph.output": f"{OUTPUT_NAME}: {OUTPUT_MEANING}",
    }


def loggable_lifting_model(
    model: nn.Module, input_example: np.ndarray | None = None
) -> tuple[ExportedLifter, np.ndarray, dict[str, str]]:
    """(module, input example, metadata) of a lifting network for :meth:`mlpgraph.tracking.StageRun.log_model`.

    The module is an :class:`ExportedLifter` (no flip test) over a CPU copy of ``model`` in eval
    mode. The example is :data:`EXAMPLE_ROWS` rows of ``input_example``, (n, T, J, 2) normalised
    2D windows (rows repeated if fewer; default: a seeded uniform one).
    """
    network = copy.deepcopy(model).cpu().eval()
    layout = get_layout(str(network.config["layout"]))
    shape = (EXAMPLE_ROWS, int(getattr(network, "frames", 1)), layout.num_joints, 2)
    if input_example is None:
        input_example = np.random.default_rng(0).uniform(-0.5, 0.5, shape)
    example = np.asarray(input_example, dtype=np.float32)
    if example.ndim == len(shape) and len(example):
        example = np.ascontiguousarray(example[np.arange(EXAMPLE_ROWS) % len(example)])
    if example.shape != shape:
        raise ValueError(f"input example of shape {example.shape}; the network takes {shape}")
    return ExportedLifter(network, layout, flip_test=False).eval(), example, export_metadata(network, layout, False)


def reference_prediction(model: nn.Module, layout: SkeletonLayout, x: Tensor, flip_test: bool) -> np.ndarray:
    """What :func:`mlpgraph.evaluation.predict` computes for the windows ``x``: the PyTorch side of the parity check."""
    from mlpgraph.data.batches import flip_poses

    with torch.inference_mode():
        pred = model(x)
        if flip_test:
            perm = layout.flip_permutation
            pred = (pred + flip_poses(model(flip_poses(x, perm)), perm)) / 2
        return root_relative(pred, layout.root).numpy()


def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    fmt: str,
    flip_test: bool = False,
    tolerance: float = PARITY_TOLERANCE,
) -> Path:
    """Export ``checkpoint``'s lifting network to ``out`` as ``fmt`` (``onnx`` or ``torchscript``); returns ``out``.

    The file is written under a temporary name and checked with :func:`verify_export` (batch
    sizes 1 and 7); it replaces ``out`` only when the largest difference from PyTorch is at most
    ``tolerance`` (metres), else :class:`ExportParityError` and whatever was at ``out`` stays.
    A network that cannot be traced is a one-line :class:`UserInputError` naming it and why.
    """
    fmt = check_format(fmt, out)
    out = check_outputs([Path(out)], inputs=[checkpoint])[0].path
    from mlpgraph.checkpoints import lifting_network

    model, layout = lifting_network(checkpoint)
    lifter = ExportedLifter(model, layout, flip_test).eval()
    metadata = export_metadata(model, layout, flip_test)
    example = torch.zeros((TRACE_BATCH, int(getattr(model, "frames", 1)), layout.num_joints, 2))
    with atomic_path(out) as tmp:
        try:
            with torch.no_grad(), _quiet_exporters():
                _WRITERS[fmt](lifter, metadata, tmp, example)
        except Exception as exc:  # any tracing or conversion failure: say which network, and why
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserInputError(
                f"{checkpoint}: its {type(model).__name__} network cannot be exported to {fmt} ({reason})"
            ) from None
        difference = _max_difference(model, layout, _load_exported(tmp, fmt)[0], flip_test, (1, 7))
        if not difference <= tolerance:
            raise ExportParityError(
                f"{checkpoint}: the {fmt} export differs from the PyTorch network by up to {difference:.3g} "
                f"(tolerance {tolerance:g}); {out} not written"
            )
    log.info("export: %s -> %s (%s, max difference from PyTorch %.2g)", checkpoint, out, fmt, difference)
    return out


def verify_export(
    checkpoint: str | os.PathLike[str],
    exported_path: str | os.PathLike[str],
    fmt: str,
    batch_sizes: Sequence[int] = (1, 7),
) -> float:
    """The largest absolute difference (metres) between an exported file and ``checkpoint``'s PyTorch network.

    Both get the same random normalised 2D windows at each of ``batch_sizes``; the flip test is
    applied to the PyTorch side as the file's metadata says it was exported. The file's layout,
    window and network config must be the checkpoint's. A TorchScript file runs code when
    loaded: verify only files you trust (those ``mlpgraph export`` wrote).
    """
    fmt = check_format(fmt, exported_path)
    from mlpgraph.checkpoints import lifting_network

    model, layout = lifting_network(checkpoint)
    run, metadata = _load_exported(Path(exported_path), fmt)
    expected = export_metadata(model, layout, False)
    for key in ("mlpgraph.layout", "mlpgraph.frames", "mlpgraph.config"):
        if metadata.get(key) != expected[key]:
            raise UserInputError(
                f"{exported_path}: metadata {key} is {metadata.get(key)!r}, but {checkpoint} has {expected[key]!r}"
            )
    return _max_difference(model, layout, run, json.loads(metadata["mlpgraph.flip_test"]), batch_sizes)


def check_format(fmt: str, out: str | os.PathLike[str]) -> str:
    """``fmt`` if it is one of :data:`FORMATS` (and its extra is installed), else a one-line error."""
    if fmt not in FORMATS:
        raise UserInputError(
            f"--format {fmt!r}: unknown export format for {out} (expected one of {', '.join(FORMATS)})"
        )
    if fmt == "onnx":
        from mlpgraph.extras import require_extra

        require_extra("export", "export --format onnx")
    return fmt


def _max_difference(
    model: nn.Module, layout: SkeletonLayout, run: Any, flip_test: bool, batch_sizes: Sequence[int]
) -> float:
    """Max |exported - PyTorch| over random normalised windows (uniform in [-1, 1]) at each batch size."""
    generator = torch.Generator().manual_seed(0)
    frames = int(getattr(model, "frames", 1))
    worst = 0.0
    for batch in batch_sizes:
        x = torch.rand((batch, frames, layout.num_joints, 2), generator=generator) * 2 - 1
        expected = reference_prediction(model, layout, x, flip_test)
        got = np.asarray(run(x.numpy()))
        if got.shape != expected.shape:
            return math.inf
        difference = float(np.abs(got - expected).max())
        worst = max(worst, difference if math.isfinite(difference) else math.inf)
    return worst


def _write_onnx(lifter: ExportedLifter, metadata: dict[str, str], path: Path, example: Tensor) -> None:
    """ONNX through ``torch.export`` (dynamic batch dimension), the metadata as ``metadata_props``."""
    import onnx

    program = torch.onnx.export(
        lifter,
        (example,),
        dynamo=True,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
        verbose=False,
    )
    proto = program.model_proto
    proto.doc_string = (
        f"mlpgraph lifting network. Input {metadata['mlpgraph.input']}. Output {metadata['mlpgraph.output']}."
    )
    onnx.helper.set_model_props(proto, metadata)
    onnx.save_model(proto, str(path))


def _write_torchscript(lifter: ExportedLifter, metadata: dict[str, str], path: Path, example: Tensor) -> None:
    """A traced TorchScript module (any batch size), the metadata as the extra file :data:`METADATA_FILE`."""
    traced = torch.jit.trace(lifter, (example,), check_trace=False)
    torch.jit.save(traced, str(path), _extra_files={METADATA_FILE: json.dumps(metadata, indent=1)})


_WRITERS = {"onnx": _write_onnx, "torchscript": _write_torchscript}


def _load_exported(path: Path, fmt: str) -> tuple[Callable[[np.ndarray], np.ndarray], dict[str, str]]:
    """(run: float32 windows -> poses, metadata) of an exported file."""
    try:
        with _quiet_exporters():
            if fmt == "onnx":
                run, metadata = _load_onnx(path)
            else:
                run, metadata = _load_torchscript(path)
    except Exception as exc:  # a truncated or foreign file: protobuf, onnxruntime and TorchScript errors alike
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserInputError(f"{path}: not a readable {fmt} file ({reason})") from None
    if "mlpgraph.flip_test" not in metadata:
        raise UserInputError(f"{path}: holds no mlpgraph metadata (not written by mlpgraph export)")
    return run, metadata


def _load_onnx(path: Path) -> tuple[Callable[[np.ndarray], np.ndarray], dict[str, str]]:
    import onnx
    import onnxruntime

    metadata = {prop.key: prop.value for prop in onnx.load(str(path), load_external_data=False).metadata_props}
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: session.run([OUTPUT_NAME], {INPUT_NAME: x})[0], metadata


def _load_torchscript(path: Path) -> tuple[Callable[[np.ndarray], np.ndarray], dict[str, str]]:
    extra = {METADATA_FILE: ""}
    module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    metadata = json.loads(extra[METADATA_FILE]) if extra[METADATA_FILE] else {}

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()

    return run, metadata


@contextlib.contextmanager
def _quiet_exporters() -> Iterator[None]:
    """The exporters' warnings (deprecations, tracer notes, skipped torchvision ops) off for the block."""
    loggers = [logging.getLogger(name) for name in _EXPORTER_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
