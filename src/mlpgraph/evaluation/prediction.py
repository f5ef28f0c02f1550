"""Prediction for evaluation: batched, with test-time flip averaging and optional pose refinement.

Predictions are root-relative metres (N, J, 3), computed on the data's device in eval mode, and
always finite: a NaN or infinity in the networks' output is :class:`NonFinitePrediction`, naming
the first offending sample and whether its 2D input was finite (so the input, or the weights, is
to blame). Callers that know the files add them to the message.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mlpgraph.data.batches import PoseArrays, flip_poses
from mlpgraph.errors import UserInputError
from mlpgraph.layouts import get_layout, root_relative
from mlpgraph.models.refine import ROOT_DEPTHS, PoseRefinement, lifted_estimate
from mlpgraph.progress import progress

# How many offending samples' input windows are inspected (all N windows of a long test set would not fit).
_INSPECTED = 1024


class NonFinitePrediction(UserInputError):  # noqa: N818 (reads as what it reports)
    """The networks' output holds NaN or infinity.

    ``samples``: the offending indices into the data (ascending); ``input_finite``: whether the 2D
    input windows of the first :data:`_INSPECTED` of them were finite (if so, the weights overflow on it).
    """

    def __init__(self, message: str, samples: np.ndarray, input_finite: bool) -> None:
        super().__init__(message)
        self.samples = samples
        self.input_finite = input_finite


def model_pad(model: nn.Module) -> int:
    """``pad`` of a model's input window: (frames - 1) / 2 for MLP-Graph, 0 for single-frame models."""
    return (int(getattr(model, "frames", 1)) - 1) // 2


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s parameters (CPU for a model without any)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@contextmanager
def eval_mode(device: torch.device, *modules: nn.Module | None) -> Iterator[None]:
    """``modules`` (``None`` entries skipped) on ``device`` in eval mode; their previous modes restored on exit."""
    present = [m for m in modules if m is not None]
    modes = [m.training for m in present]
    for m in present:
        m.to(device).eval()
    try:
        yield
    finally:
        for m, mode in zip(present, modes, strict=True):
            m.train(mode)


def predict(
    model: nn.Module,
    data: PoseArrays,
    pad: int,
    flip_test: bool = True,
    batch_size: int = 1024,
    refine: PoseRefinement | None = None,
    root_depth: str = "gt",
    bone_lengths: torch.Tensor | None = None,
    indices: torch.Tensor | np.ndarray | None = None,
) -> torch.Tensor:
    """Root-relative 3D predictions (N, J, 3), metres, for ``indices`` (default: every sample).

    Runs on ``data``'s device (``model`` and ``refine`` are moved there and put in eval mode for
    the call; their previous train/eval mode is restored). Batches are index ranges through
    :meth:`PoseArrays.batch` (windows of ``2 * pad + 1`` frames). With ``flip_test`` the flipped
    window is predicted too, its output flipped back and averaged with the plain one. The root row
    is subtracted (the graph baselines do not zero it). With ``refine``, the averaged pose P is
    refined with X~ = the unflipped centre frame's 2D lifted with P's depths and each sample's
    sequence intrinsics, using the ground-truth root depth ``root_3d[:, 2]`` for ``root_depth ==
    "gt"`` (the release's oracle) or the depth estimated with ``bone_lengths`` for "estimated".
    """
    if root_depth not in ROOT_DEPTHS:
        raise ValueError(f"root_depth must be 'gt' or 'estimated', got {root_depth!r}")
    if refine is not None and root_depth == "estimated" and bone_lengths is None:
        raise ValueError("predict: root_depth 'estimated' needs the training set's bone_lengths")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = data.device
    if indices is None:
        order = torch.arange(data.num_samples, device=device)
    else:
        order = torch.as_tensor(indices, dtype=torch.long).to(device)
    out = torch.empty((len(order), data.num_joints, 3), dtype=torch.float32, device=device)
    if bone_lengths is not None:
        bone_lengths = torch.as_tensor(bone_lengths, dtype=torch.float32, device=device)
    predictor = _BatchPredictor(model, refine, data, pad, flip_test, root_depth, bone_lengths)
    chunks = order.split(batch_size)
    with eval_mode(device, model, refine), torch.inference_mode():
        start = 0
        for idx in progress(chunks, desc="predict", total=len(chunks), leave=False):
            out[start : start + len(idx)] = predictor(idx)
            start += len(idx)
        check_finite_output(out, order, data, pad)
    return out


def check_finite_output(pred: torch.Tensor, order: torch.Tensor, data: PoseArrays, pad: int) -> None:
    """Raise :class:`NonFinitePrediction` unless every pose of ``pred`` (for samples ``order``) is finite."""
    bad = ~torch.isfinite(pred).flatten(1).all(dim=1)
    if not bool(bad.any()):
        return
    samples = torch.sort(order[bad]).values
    first = int(samples[0])
    windows = data.windows(samples[:_INSPECTED], pad)
    input_finite = bool(torch.isfinite(windows).all())
    frame, sequence = first - int(data.seq_start[first]), int(data.sequence[first])
    if input_finite:
        cause = f"their 2D input is finite (up to {float(windows.abs().max()):.3g} in magnitude): the weights overflow"
    else:
        cause = "their 2D input is not finite"
    raise NonFinitePrediction(
        f"the network's output is NaN or infinite for {len(samples)} of {len(order)} samples "
        f"(first: sample {first}, frame {frame} of sequence {sequence}); {cause}",
        samples.cpu().numpy(),
        input_finite,
    )


@dataclass(frozen=True)
class _BatchPredictor:
    """:func:`predict`'s work on one batch of sample indices (the networks already in eval mode)."""

    model: nn.Module
    refine: PoseRefinement | None
    data: PoseArrays
    pad: int
    flip_test: bool
    root_depth: str
    bone_lengths: torch.Tensor | None

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        data, pad = self.data, self.pad
        windows, _ = data.batch(idx, pad)
        pred = self.model(windows)
        if self.flip_test:
            flipped, _ = data.batch(idx, pad, flip=True)
            pred = (pred + flip_poses(self.model(flipped), data.flip_permutation)) / 2
        root = get_layout(data.layout).root
        pred = root_relative(pred, root)
        if self.refine is not None:
            lifted = lifted_estimate(data, idx, windows, pred, pad, self.root_depth, self.bone_lengths)
            pred = root_relative(self.refine(pred, lifted), root)
        return pred
