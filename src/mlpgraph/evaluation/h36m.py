"""The Human3.6M protocols (docs/model.md, "Evaluation protocols"): P1 (MPJPE) and P2 (PA-MPJPE) in mm.

Per action family and averaged over families for a test split (:func:`evaluate_h36m`), and over
independent single frames such as a hard-pose set (:func:`evaluate_poses`). The metrics
(:mod:`mlpgraph.metrics`) are taken in mm of root-relative poses.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from mlpgraph import metrics
from mlpgraph.data import schema
from mlpgraph.data.batches import PoseArrays
from mlpgraph.evaluation.prediction import model_device, model_pad, predict
from mlpgraph.layouts import SkeletonLayout, get_layout, root_relative


def errors_mm(pred: torch.Tensor, target: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint errors (N, J) and per-sample PA-MPJPE (N,), in mm, of metre poses."""
    pred_mm = pred.detach().to("cpu", torch.float64) * 1000.0
    target_mm = target.detach().to("cpu", torch.float64) * 1000.0
    return metrics.joint_errors(pred_mm, target_mm), metrics.pa_mpjpe_per_sample(pred_mm, target_mm)


def evaluate_h36m(pred: torch.Tensor, data: PoseArrays, indices: torch.Tensor | np.ndarray | None = None) -> dict:
    """Human3.6M protocols 1 and 2 (mm) per action family and averaged over families.

    ``pred`` (N, J, 3) root-relative metres for ``indices`` of ``data`` (default: all samples, as
    :func:`~mlpgraph.evaluation.prediction.predict` returns them). Targets are ``data.poses_3d``
    (root-relative). The protocol figure is the mean over families of each family's mean (``P1``,
    ``P2``); the sample-weighted mean is given beside it. Families without samples are left out of
    ``per_family`` and the mean. ``per_joint`` is each joint's error (P1's per-joint term) over all
    samples, by joint name.

    Returns ``{"P1", "P2", "P1_sample_mean", "P2_sample_mean", "num_samples", "num_families",
    "per_family": {family name: {"P1", "P2", "num_samples"}}, "per_joint": {joint name: mm}}``.
    """
    order = torch.arange(data.num_samples) if indices is None else torch.as_tensor(indices, dtype=torch.long)
    if pred.shape[0] != len(order):
        raise ValueError(f"evaluate_h36m: {pred.shape[0]} predictions for {len(order)} samples")
    order_dev = order.to(data.device)
    layout = get_layout(data.layout)
    joint_mm, p2 = errors_mm(pred, root_relative(data.poses_3d[order_dev], layout.root))
    p1 = joint_mm.mean(axis=1)
    family = data.meta[schema.FAMILY][order_dev].cpu().numpy()
    per_family = _per_family(p1, p2, family, list(data.attrs.get("families", [])))
    return {
        "P1": float(np.mean([v["P1"] for v in per_family.values()])) if per_family else math.nan,
        "P2": float(np.mean([v["P2"] for v in per_family.values()])) if per_family else math.nan,
        "P1_sample_mean": float(p1.mean()) if len(p1) else math.nan,
        "P2_sample_mean": float(p2.mean()) if len(p2) else math.nan,
        "num_samples": len(p1),
        "num_families": len(per_family),
        "per_family": per_family,
        "per_joint": dict(zip(layout.joint_names, map(float, joint_mm.mean(axis=0)), strict=True)) if len(p1) else {},
    }


def _per_family(p1: np.ndarray, p2: np.ndarray, family: np.ndarray, names: list[str]) -> dict[str, dict[str, Any]]:
    """Each present family's mean P1 / P2 and sample count, in the order of ``names`` (the file's families)."""
    per_family: dict[str, dict[str, Any]] = {}
    for f in np.unique(family):
        mask = family == f
        name = names[int(f)] if 0 <= int(f) < len(names) else f"family_{int(f)}"
        per_family[name] = {
            "P1": float(p1[mask].mean()),
            "P2": float(p2[mask].mean()),
            "num_samples": int(mask.sum()),
        }
    if names:
        per_family = {n: per_family[n] for n in names if n in per_family} | per_family
    return per_family


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
    :func:`~mlpgraph.evaluation.prediction.model_pad`) sees the frame repeated over its whole
    window (edge padding): the hard-pose sets are single frames without their neighbours.
    ``device`` defaults to the model's.

    Returns ``{"P1", "P2", "num_samples", "flip_test"}``.
    """
    lay = layout if isinstance(layout, SkeletonLayout) else get_layout(layout)
    device = torch.device(device) if device is not None else model_device(model)
    pad = model_pad(model) if pad is None else pad
    n = len(poses_2d)
    sequences = np.stack([np.arange(n), np.ones(n, dtype=np.int64)], axis=1)
    data = PoseArrays.from_numpy(np.asarray(poses_2d), np.asarray(poses_3d), sequences, layout=lay.name, device=device)
    pred = predict(model, data, pad, flip_test=flip_test, batch_size=batch_size)
    joint_mm, p2 = errors_mm(pred, root_relative(data.poses_3d, lay.root))
    p1 = joint_mm.mean(axis=1)
    return {"P1": float(p1.mean()), "P2": float(p2.mean()), "num_samples": n, "flip_test": bool(flip_test)}
