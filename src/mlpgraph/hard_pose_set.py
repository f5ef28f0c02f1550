"""The hard-pose set the ``hard_poses`` stages evaluate on: its file, and how it is built.

``hard_poses.npz`` holds either the user's set (``source: user``; ``poses_2d`` normalised and
``poses_3d`` root-relative metres, single frames) or the derived one (``source: derived``;
``indices`` into the test split of the processed file, their ``hardness_mm`` and ``poses_3d``):
the test frames farthest from any training pose (:func:`mlpgraph.evaluation.derive_hard_poses`).
:func:`evaluate_hard_poses` measures a model on either.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mlpgraph import metrics
from mlpgraph.data.batches import PoseArrays
from mlpgraph.data.formats import read_hard_poses
from mlpgraph.evaluation import derive_hard_poses, evaluate_poses, predict
from mlpgraph.io import sha256_file
from mlpgraph.outputs import atomic_path

USER, DERIVED = "user", "derived"


@dataclass(frozen=True)
class HardPoseSet:
    """A hard-pose set, as the file holds it; ``fingerprint`` is where it came from (not stored)."""

    source: str
    poses_3d: np.ndarray
    poses_2d: np.ndarray | None = None  # the user's set
    indices: np.ndarray | None = None  # the derived set: test-split indices, hardest first
    hardness_mm: np.ndarray | None = None
    fingerprint: str | None = None

    def write(self, path: Path) -> None:
        """Save as ``.npz`` (no pickles), atomically."""
        if self.source == USER:
            arrays = {"source": np.array(USER), "poses_2d": self.poses_2d, "poses_3d": self.poses_3d}
        else:
            arrays = {
                "source": np.array(DERIVED),
                "indices": self.indices,
                "hardness_mm": self.hardness_mm,
                "poses_3d": self.poses_3d,
            }
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    @classmethod
    def read(cls, path: Path) -> HardPoseSet:
        """The set written by :meth:`write`."""
        with np.load(path, allow_pickle=False) as content:
            arrays = {key: content[key] for key in content.files}
        return cls(source=str(arrays.pop("source")), **arrays)


def user_hard_poses(path: Path, layout: str) -> HardPoseSet:
    """The user's hard-pose file (the release's format), checked and in ``layout``."""
    hard = read_hard_poses(path, layout=layout)
    return HardPoseSet(source=USER, poses_2d=hard.poses_2d, poses_3d=hard.poses_3d, fingerprint=sha256_file(path))


def derived_hard_poses(
    processed: Path, train_subjects: list[str], test_subjects: list[str], every: int, fraction: float, device: str
) -> HardPoseSet:
    """Every ``every``-th test frame of ``processed``, the ``fraction`` farthest from any training pose."""
    train_3d = PoseArrays.from_processed(processed, subjects=train_subjects).poses_3d
    test = PoseArrays.from_processed(processed, subjects=test_subjects)
    indices, hardness = derive_hard_poses(train_3d, test.poses_3d, every=every, fraction=fraction, device=device)
    indices = np.asarray(indices, dtype=np.int64)
    return HardPoseSet(
        source=DERIVED,
        indices=indices,
        hardness_mm=np.asarray(hardness, dtype=np.float32),
        poses_3d=test.poses_3d[torch.as_tensor(indices)].numpy(),
        fingerprint=str(test.attrs.get("fingerprint")),
    )


def evaluate_hard_poses(
    model: nn.Module, hard: HardPoseSet, test: PoseArrays | None, pad: int, flip: bool, batch: int, layout: str
) -> dict[str, float | int]:
    """P1 / P2 (mm, the mean over poses) and the number of poses of ``model`` on ``hard``.

    The derived set is predicted in its test sequences (``test``: the test split it indexes, with
    each pose's temporal context); the user's single frames each as a one-frame sequence.
    """
    if hard.source == DERIVED:
        if test is None:
            raise ValueError("evaluate_hard_poses: the derived set needs the test split it indexes")
        indices = torch.as_tensor(hard.indices, device=test.device)
        pred = predict(model, test, pad, flip, batch, indices=indices)
        target = test.poses_3d[indices]
        p1, p2 = metrics.mpjpe(pred * 1000, target * 1000), metrics.pa_mpjpe(pred * 1000, target * 1000)
        return {"P1": p1, "P2": p2, "num_samples": len(indices)}
    result = evaluate_poses(model, hard.poses_2d, hard.poses_3d, flip, layout, pad)
    return {"P1": result["P1"], "P2": result["P2"], "num_samples": result["num_samples"]}
