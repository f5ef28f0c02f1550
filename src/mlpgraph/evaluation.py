"""Evaluation protocols (design/model.md, "Evaluation protocols"): prediction with test-time flip
and optional pose refinement, Human3.6M P1/P2 per action family, MPI-INF-3DHP PCK/AUC per scene,
hard poses (derived deterministically or from the user's file), and inference time.

Predictions are root-relative metres; the metrics (:mod:`mlpgraph.metrics`) are taken in mm.
Every result is a JSON-serialisable dict of plain floats, ints and strings.
"""

from __future__ import annotations

import logging
import math
import platform
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from mlpgraph import metrics
from mlpgraph.data import schema
from mlpgraph.data.batches import PoseArrays, flip_poses
from mlpgraph.data.formats import Test3DHP
from mlpgraph.layouts import SkeletonLayout, get_layout
from mlpgraph.models.refine import PoseRefinement, refinement_input
from mlpgraph.progress import progress

log = logging.getLogger(__name__)

SCENES = ("GS", "noGS", "outdoor")


def model_pad(model: nn.Module) -> int:
    """``pad`` of a model's input window: (frames - 1) / 2 for MLP-Graph, 0 for single-frame models."""
    return (int(getattr(model, "frames", 1)) - 1) // 2


def _root_relative(poses: torch.Tensor, root: int) -> torch.Tensor:
    return poses - poses[:, root : root + 1]


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
    if root_depth not in ("gt", "estimated"):
        raise ValueError(f"root_depth must be 'gt' or 'estimated', got {root_depth!r}")
    if refine is not None and root_depth == "estimated" and bone_lengths is None:
        raise ValueError("predict: root_depth 'estimated' needs the training set's bone_lengths")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = data.device
    layout = get_layout(data.layout)
    root = layout.root
    perm = layout.flip_permutation
    if indices is None:
        order = torch.arange(data.num_samples, device=device)
    else:
        order = torch.as_tensor(indices, dtype=torch.long).to(device)
    out = torch.empty((len(order), data.num_joints, 3), dtype=torch.float32, device=device)
    modules = [m for m in (model, refine) if m is not None]
    modes = [m.training for m in modules]
    for m in modules:
        m.to(device).eval()
    if bone_lengths is not None:
        bone_lengths = torch.as_tensor(bone_lengths, dtype=torch.float32, device=device)
    chunks = order.split(batch_size)
    try:
        with torch.inference_mode():
            start = 0
            for idx in progress(chunks, desc="predict", total=len(chunks), leave=False):
                windows, _ = data.batch(idx, pad)
                pred = model(windows)
                if flip_test:
                    flipped, _ = data.batch(idx, pad, flip=True)
                    pred = (pred + flip_poses(model(flipped), perm)) / 2
                pred = _root_relative(pred, root)
                if refine is not None:
                    lifted = refinement_input(
                        windows[:, pad],
                        pred,
                        data.meta[schema.INTRINSICS][data.sequence[idx]],
                        layout,
                        root_depth=data.meta[schema.ROOT_3D][idx, 2] if root_depth == "gt" else None,
                        bone_lengths=bone_lengths,
                    )
                    pred = _root_relative(refine(pred, lifted), root)
                out[start : start + len(idx)] = pred
                start += len(idx)
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)
    return out


def _errors_mm(pred: torch.Tensor, target: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint errors (N, J) and per-sample PA-MPJPE (N,), in mm, of metre poses."""
    pred_mm = pred.detach().to("cpu", torch.float64) * 1000.0
    target_mm = target.detach().to("cpu", torch.float64) * 1000.0
    return metrics.joint_errors(pred_mm, target_mm), metrics.pa_mpjpe_per_sample(pred_mm, target_mm)


def evaluate_h36m(pred: torch.Tensor, data: PoseArrays, indices: torch.Tensor | np.ndarray | None = None) -> dict:
    """Human3.6M protocols 1 and 2 (mm) per action family and averaged over families.

    ``pred`` (N, J, 3) root-relative metres for ``indices`` of ``data`` (default: all samples, as
    :func:`predict` returns them). Targets are ``data.poses_3d`` (root-relative). The protocol
    figure is the mean over families of each family's mean (``p1``, ``p2``); the sample-weighted
    mean is given beside it. Families without samples are left out of ``per_family`` and the mean.

    ``per_joint`` is each joint's error (P1's per-joint term) over all samples, by joint name.

    Returns ``{"p1", "p2", "p1_sample_mean", "p2_sample_mean", "num_samples", "num_families",
    "per_family": {family name: {"p1", "p2", "num_samples"}}, "per_joint": {joint name: mm}}``.
    """
    order = torch.arange(data.num_samples) if indices is None else torch.as_tensor(indices, dtype=torch.long)
    if pred.shape[0] != len(order):
        raise ValueError(f"evaluate_h36m: {pred.shape[0]} predictions for {len(order)} samples")
    order_dev = order.to(data.device)
    layout = get_layout(data.layout)
    joint_mm, p2 = _errors_mm(pred, _root_relative(data.poses_3d[order_dev], layout.root))
    p1 = joint_mm.mean(axis=1)
    family = data.meta[schema.FAMILY][order_dev].cpu().numpy()
    names = list(data.attrs.get("families", []))
    per_family: dict[str, dict[str, Any]] = {}
    for f in np.unique(family):
        mask = family == f
        name = names[int(f)] if 0 <= int(f) < len(names) else f"family_{int(f)}"
        per_family[name] = {
            "p1": float(p1[mask].mean()),
            "p2": float(p2[mask].mean()),
            "num_samples": int(mask.sum()),
        }
    if names:
        per_family = {n: per_family[n] for n in names if n in per_family} | per_family
    return {
        "p1": float(np.mean([v["p1"] for v in per_family.values()])) if per_family else math.nan,
        "p2": float(np.mean([v["p2"] for v in per_family.values()])) if per_family else math.nan,
        "p1_sample_mean": float(p1.mean()) if len(p1) else math.nan,
        "p2_sample_mean": float(p2.mean()) if len(p2) else math.nan,
        "num_samples": len(p1),
        "num_families": len(per_family),
        "per_family": per_family,
        "per_joint": dict(zip(layout.joint_names, map(float, joint_mm.mean(axis=0)), strict=True)) if len(p1) else {},
    }


def _run_sequences(labels: np.ndarray) -> np.ndarray:
    """(S, 2) (start, length) of the maximal runs of equal consecutive ``labels``."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [len(labels)]]))
    return np.stack([starts, lengths], axis=1).astype(np.int64)


def _pck_auc(pred_mm: torch.Tensor, target_mm: torch.Tensor) -> dict[str, Any]:
    return {
        "pck": metrics.pck(pred_mm, target_mm),
        "auc": metrics.auc(pred_mm, target_mm),
        "num_samples": int(pred_mm.shape[0]),
    }


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def evaluate_3dhp(
    model: nn.Module,
    test: Test3DHP,
    pad: int,
    flip_test: bool = True,
    batch_size: int = 1024,
    device: str | torch.device | None = None,
) -> dict:
    """MPI-INF-3DHP: PCK@150 mm and AUC, root-relative, overall and per scene kind and sequence.

    For temporal models (``pad`` > 0) the windows are built from contiguous runs of the same
    ``test.sequence`` label (TS1..TS6) and repeat the edge frames at each run's ends. Frames that
    the reader dropped for ``valid == 0`` are simply absent, so a window spans such gaps (the
    frames on either side are treated as consecutive). PoseAug's file has one label ("all") for
    everything, so its windows run across its (unmarked) sequence boundaries. ``device`` defaults
    to the model's.

    Returns ``{"pck", "auc", "num_samples", "source_format", "flip_test", "per_scene": {"GS" |
    "noGS" | "outdoor": {"pck", "auc", "num_samples"}}, "per_sequence": {name: {...}}}``;
    ``per_scene`` and ``per_sequence`` are present only when the file has scene labels (P-STMO's).
    """
    device = torch.device(device) if device is not None else _model_device(model)
    layout = test.layout
    data = PoseArrays.from_numpy(
        test.poses_2d,
        test.poses_3d,
        _run_sequences(test.sequence),
        layout=layout.name,
        device=device,
    )
    pred = predict(model, data, pad, flip_test=flip_test, batch_size=batch_size)
    pred_mm = pred.detach().to("cpu", torch.float64) * 1000.0
    target_mm = _root_relative(torch.as_tensor(test.poses_3d, dtype=torch.float64), layout.root) * 1000.0
    result: dict[str, Any] = {
        **_pck_auc(pred_mm, target_mm),
        "source_format": test.source_format,
        "flip_test": bool(flip_test),
    }
    if test.scene is not None:
        scene = np.asarray(test.scene)
        result["per_scene"] = {
            kind: _pck_auc(pred_mm[torch.from_numpy(scene == kind)], target_mm[torch.from_numpy(scene == kind)])
            for kind in SCENES
            if np.any(scene == kind)
        }
        names = np.asarray(test.sequence)
        result["per_sequence"] = {
            str(name): _pck_auc(pred_mm[torch.from_numpy(names == name)], target_mm[torch.from_numpy(names == name)])
            for name in dict.fromkeys(names.tolist())
        }
    log.info("3DHP: PCK %.2f %%, AUC %.2f %% over %d poses", result["pck"], result["auc"], result["num_samples"])
    return result


def derive_hard_poses(
    train_poses_3d: np.ndarray | torch.Tensor,
    test_poses_3d: np.ndarray | torch.Tensor,
    every: int = 5,
    fraction: float = 0.05,
    chunk: int = 8192,
    root: int = 0,
    device: str | torch.device = "cpu",
    memory_mb: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """The hardest test poses: (indices into the test set, hardness in mm), hardest first.

    Candidates are every ``every``-th test frame (0, every, 2 * every, ...). A candidate's hardness
    is the distance to its nearest training pose, measured as the mean per-joint Euclidean distance
    of the root-relative poses (``root``: the layout's root joint) in mm; exact, over every
    training pose. The top ``ceil(fraction * candidates)`` are kept; the order is a stable sort by
    decreasing hardness, so ties go to the lower index and the result is deterministic.

    Computed in blocks of (test chunk, ``chunk`` training poses, J) distances
    (``torch.cdist`` per joint, differences not the matrix-product expansion, so near neighbours
    lose no precision) in float32 on ``device``; the test chunk is sized so that one block stays
    within about ``memory_mb``. Poses are (M, J, 3) / (N, J, 3) metres.
    """
    if every < 1 or not 0.0 < fraction <= 1.0 or chunk < 1:
        raise ValueError(
            f"derive_hard_poses: need every >= 1, 0 < fraction <= 1, chunk >= 1 (got {every}, {fraction}, {chunk})"
        )
    device = torch.device(device)

    def prepare(poses: np.ndarray | torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(poses).to(device=device, dtype=torch.float32)
        if t.dim() != 3 or t.shape[-1] != 3:
            raise ValueError(f"derive_hard_poses: poses must have shape (N, J, 3), got {tuple(t.shape)}")
        return (_root_relative(t, root) * 1000.0).transpose(0, 1).contiguous()  # (J, N, 3) mm

    candidates = torch.arange(0, len(test_poses_3d), every)
    test = prepare(torch.as_tensor(test_poses_3d)[candidates])
    train = prepare(train_poses_3d)
    if train.shape[0] != test.shape[0]:
        raise ValueError(f"derive_hard_poses: train poses have {train.shape[0]} joints, test {test.shape[0]}")
    if train.shape[1] == 0 or test.shape[1] == 0:
        raise ValueError("derive_hard_poses: empty training or test poses")
    num_joints, num_test, num_train = test.shape[0], test.shape[1], train.shape[1]
    chunk = min(chunk, num_train)
    test_chunk = max(1, min(num_test, memory_mb * 2**20 // (2 * 4 * num_joints * chunk)))
    nearest = torch.empty(num_test, dtype=torch.float32, device=device)
    starts = range(0, num_test, test_chunk)
    log.info("hard poses: %d candidates x %d training poses, blocks of %d x %d", num_test, num_train, test_chunk, chunk)
    with torch.inference_mode():
        for a in progress(starts, desc="hard poses", total=len(starts), leave=False):
            block = test[:, a : a + test_chunk]
            best = torch.full((block.shape[1],), math.inf, device=device)
            for b in range(0, num_train, chunk):
                dist = torch.cdist(block, train[:, b : b + chunk], compute_mode="donot_use_mm_for_euclid_dist")
                best = torch.minimum(best, dist.mean(dim=0).amin(dim=1))
            nearest[a : a + block.shape[1]] = best
    hardness = nearest.cpu().double().numpy()
    keep = math.ceil(fraction * num_test)
    order = np.argsort(-hardness, kind="stable")[:keep]
    return candidates.numpy()[order], hardness[order]


def evaluate_poses(
    model: nn.Module,
    poses_2d: np.ndarray,
    poses_3d: np.ndarray,
    flip_test: bool = True,
    layout: str | SkeletonLayout = "h36m16",
    pad: int | None = None,
    batch_size: int = 1024,
    device: str | torch.device | None = None,
) -> dict:
    """P1 / P2 (mm) of independent single frames, e.g. a hard-pose set (user file or derived).

    ``poses_2d`` (N, J, 2) normalised, ``poses_3d`` (N, J, 3) metres (made root-relative here).
    Every pose is its own one-frame sequence, so a temporal model (``pad`` > 0, default
    :func:`model_pad`) sees the frame repeated over its whole window (edge padding): the hard-pose
    sets are single frames without their neighbours. ``device`` defaults to the model's.

    Returns ``{"p1", "p2", "num_samples", "flip_test"}``.
    """
    lay = layout if isinstance(layout, SkeletonLayout) else get_layout(layout)
    device = torch.device(device) if device is not None else _model_device(model)
    pad = model_pad(model) if pad is None else pad
    n = len(poses_2d)
    sequences = np.stack([np.arange(n), np.ones(n, dtype=np.int64)], axis=1)
    data = PoseArrays.from_numpy(np.asarray(poses_2d), np.asarray(poses_3d), sequences, layout=lay.name, device=device)
    pred = predict(model, data, pad, flip_test=flip_test, batch_size=batch_size)
    joint_mm, p2 = _errors_mm(pred, _root_relative(data.poses_3d, lay.root))
    p1 = joint_mm.mean(axis=1)
    return {"p1": float(p1.mean()), "p2": float(p2.mean()), "num_samples": n, "flip_test": bool(flip_test)}


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or device.type


def inference_time(
    model: nn.Module,
    example_shape: Sequence[int],
    device: str | torch.device,
    batch_sizes: Sequence[int] = (1, 256),
    warmup: int = 5,
    min_runs: int = 20,
    min_seconds: float = 0.0,
) -> dict:
    """Median seconds per forward pass and poses per second, per batch size, on ``device``.

    ``example_shape`` is one sample's input shape, e.g. (T, J, 2). For each batch size: ``warmup``
    untimed passes, then at least ``min_runs`` timed passes (and at least ``min_seconds`` of them)
    on random input, in eval mode under ``torch.inference_mode``, each bracketed by a device
    synchronisation on CUDA / MPS so the time covers the kernels, not just their launch.

    Returns ``{"device", "device_name", "torch_threads", "batch": {str(batch size): {"median_s",
    "poses_per_s", "runs"}}}``.
    """
    device = torch.device(device)
    mode = model.training
    model.to(device).eval()
    result: dict[str, Any] = {
        "device": str(device),
        "device_name": _device_name(device),
        "torch_threads": torch.get_num_threads(),
        "batch": {},
    }
    try:
        with torch.inference_mode():
            for size in batch_sizes:
                x = torch.randn((size, *example_shape), device=device)
                for _ in range(warmup):
                    model(x)
                _synchronise(device)
                times: list[float] = []
                while len(times) < min_runs or sum(times) < min_seconds:
                    _synchronise(device)
                    start = time.perf_counter()
                    model(x)
                    _synchronise(device)
                    times.append(time.perf_counter() - start)
                median = statistics.median(times)
                result["batch"][str(size)] = {
                    "median_s": median,
                    "poses_per_s": size / median if median > 0 else math.inf,
                    "runs": len(times),
                }
                log.info("inference batch %d on %s: median %.3g s, %.0f poses/s", size, device, median, size / median)
    finally:
        model.train(mode)
    return result
