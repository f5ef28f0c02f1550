"""The MPI-INF-3DHP protocol (docs/model.md, "Evaluation protocols"): PCK@150 mm and AUC, root-relative.

Overall, and per scene kind and per test sequence when the file labels them (P-STMO's format).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from mlpgraph import metrics
from mlpgraph.data.batches import PoseArrays
from mlpgraph.data.formats import Test3DHP
from mlpgraph.evaluation.prediction import model_device, predict
from mlpgraph.layouts import root_relative

log = logging.getLogger(__name__)

SCENES = ("GS", "noGS", "outdoor")


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

    Returns ``{"PCK", "AUC", "num_samples", "source_format", "flip_test", "per_scene": {"GS" |
    "noGS" | "outdoor": {"PCK", "AUC", "num_samples"}}, "per_sequence": {name: {...}}}``;
    ``per_scene`` and ``per_sequence`` are present only when the file has scene labels (P-STMO's).
    """
    device = torch.device(device) if device is not None else model_device(model)
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
    target_mm = root_relative(torch.as_tensor(test.poses_3d, dtype=torch.float64), layout.root) * 1000.0
    result: dict[str, Any] = {
        **_pck_auc(pred_mm, target_mm),
        "source_format": test.source_format,
        "flip_test": bool(flip_test),
    }
    if test.scene is not None:
        scene = np.asarray(test.scene)
        result["per_scene"] = _pck_auc_by(pred_mm, target_mm, scene, [kind for kind in SCENES if np.any(scene == kind)])
        names = np.asarray(test.sequence)
        result["per_sequence"] = _pck_auc_by(pred_mm, target_mm, names, dict.fromkeys(names.tolist()))
    log.info("3DHP: PCK %.2f %%, AUC %.2f %% over %d poses", result["PCK"], result["AUC"], result["num_samples"])
    return result


def _pck_auc(pred_mm: torch.Tensor, target_mm: torch.Tensor) -> dict[str, Any]:
    return {
        "PCK": metrics.pck(pred_mm, target_mm),
        "AUC": metrics.auc(pred_mm, target_mm),
        "num_samples": int(pred_mm.shape[0]),
    }


def _pck_auc_by(
    pred_mm: torch.Tensor, target_mm: torch.Tensor, labels: np.ndarray, groups: Iterable[Any]
) -> dict[str, dict[str, Any]]:
    """:func:`_pck_auc` of the samples whose label is each of ``groups``, keyed by the label."""
    out = {}
    for group in groups:
        mask = torch.from_numpy(labels == group)
        out[str(group)] = _pck_auc(pred_mm[mask], target_mm[mask])
    return out


def _run_sequences(labels: np.ndarray) -> np.ndarray:
    """(S, 2) (start, length) of the maximal runs of equal consecutive ``labels``."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [len(labels)]]))
    return np.stack([starts, lengths], axis=1).astype(np.int64)
