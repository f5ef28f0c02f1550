"""Pose-error metrics of the evaluation protocols (docs/model.md, "Evaluation protocols").

Pure functions of predicted and target poses (N, J, 3) in MILLIMETRES, numpy arrays or torch
tensors on any device. They compute in float64 on the CPU (the arrays are small next to the
networks' work, and float64 keeps Procrustes and the threshold counts exact enough to compare with
hand-computed values); scalars come back as Python floats, per-sample / per-joint values as numpy
float64 arrays.

- MPJPE (protocol 1): mean Euclidean distance over joints and samples.
- PA-MPJPE (protocol 2): per sample, the optimal similarity transform (scale, proper rotation,
  translation) aligning the prediction to the target, then MPJPE. Batched SVD, no per-sample loop.
- PCK: % of joints with error strictly below a threshold (150 mm for MPI-INF-3DHP).
- AUC: mean PCK over the thresholds 0, 5, ..., 150 mm (31 values), %.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

AUC_THRESHOLDS = np.linspace(0.0, 150.0, 31)
PA_CHUNK = 65536  # samples per batched-SVD chunk in pa_mpjpe_per_sample (bounds temporary memory)


def _as_float64(poses: Any, name: str) -> torch.Tensor:
    """A (N, J, 3) float64 CPU tensor from a numpy array or torch tensor."""
    if isinstance(poses, torch.Tensor):
        tensor = poses.detach().to(device="cpu", dtype=torch.float64)
    else:
        tensor = torch.as_tensor(np.asarray(poses, dtype=np.float64))
    if tensor.dim() != 3 or tensor.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (N, J, 3), got {tuple(tensor.shape)}")
    return tensor


def _pair(pred: Any, target: Any) -> tuple[torch.Tensor, torch.Tensor]:
    p, t = _as_float64(pred, "pred"), _as_float64(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred and target shapes differ: {tuple(p.shape)} vs {tuple(t.shape)}")
    return p, t


def joint_errors(pred: Any, target: Any) -> np.ndarray:
    """(N, J) Euclidean distance of every joint, in the inputs' unit (mm)."""
    p, t = _pair(pred, target)
    return torch.linalg.vector_norm(p - t, dim=-1).numpy()


def mpjpe(pred: Any, target: Any) -> float:
    """MPJPE (protocol 1): mean Euclidean distance over joints and samples (mm)."""
    return float(joint_errors(pred, target).mean())


def procrustes_align(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``pred`` (N, J, 3) aligned to ``target`` by the per-sample optimal similarity transform.

    Minimises sum_j |s R p_j + t - y_j|^2 over scale s, rotation R (det +1, no reflection) and
    translation t (Umeyama / Kabsch): with centred X (pred) and Y (target), H = X^T Y = U S V^T,
    R = U D V^T acting on row vectors (X R), D = diag(1, 1, sign det(U V^T)), s = tr(S D) / |X|^2.
    A degenerate prediction (all joints at one point) maps to the target's centroid.
    """
    mu_p = pred.mean(dim=1, keepdim=True)
    mu_t = target.mean(dim=1, keepdim=True)
    x = pred - mu_p
    y = target - mu_t
    u, s, vh = torch.linalg.svd(x.transpose(1, 2) @ y)
    sign = torch.where(torch.linalg.det(u @ vh) < 0, -1.0, 1.0).to(x.dtype)
    d = torch.ones_like(s)
    d[:, -1] = sign
    rot = (u * d[:, None, :]) @ vh
    scale = (s * d).sum(dim=1) / (x * x).sum(dim=(1, 2)).clamp_min(eps)
    return scale[:, None, None] * (x @ rot) + mu_t


def pa_mpjpe_per_sample(pred: Any, target: Any) -> np.ndarray:
    """(N,) MPJPE of each sample after Procrustes alignment (similarity, no reflection), mm."""
    p, t = _pair(pred, target)
    out = [
        torch.linalg.vector_norm(procrustes_align(pc, tc) - tc, dim=-1).mean(dim=1)
        for pc, tc in zip(p.split(PA_CHUNK), t.split(PA_CHUNK), strict=True)
    ]
    return torch.cat(out).numpy() if out else np.zeros(0)


def pa_mpjpe(pred: Any, target: Any) -> float:
    """PA-MPJPE (protocol 2): per-sample similarity alignment (proper rotation), then MPJPE (mm)."""
    return float(pa_mpjpe_per_sample(pred, target).mean())


def pck(pred: Any, target: Any, threshold: float = 150.0) -> float:
    """% of joints (over all samples) whose error is strictly below ``threshold`` mm."""
    return float((joint_errors(pred, target) < threshold).mean() * 100.0)


def auc(pred: Any, target: Any) -> float:
    """Area under the PCK curve: mean PCK (%) over the thresholds 0, 5, ..., 150 mm (31 values)."""
    errors = np.sort(joint_errors(pred, target).reshape(-1))
    below = np.searchsorted(errors, AUC_THRESHOLDS, side="left")  # count of errors < threshold
    return float(below.mean() / max(len(errors), 1) * 100.0)
