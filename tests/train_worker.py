"""A tiny, deterministic training run, importable by the tests and runnable as a subprocess.

``python tests/train_worker.py CHECKPOINT_DIR RESULT_JSON [--eval-sleep S]`` trains MLP-Graph with
joint refinement on synthetic pinhole data and writes the returned history as JSON; the tests kill
it with SIGKILL mid-run and restart it to prove that resuming gives an uninterrupted run's numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mlpgraph.checkpoints import load_checkpoint
from mlpgraph.data.batches import PoseArrays
from mlpgraph.errors import UserInputError
from mlpgraph.layouts import get_layout, root_relative
from mlpgraph.models import build_model
from mlpgraph.models.refine import lifted_estimate
from mlpgraph.training import Recipe, TrainResult, seed_everything, train

PAD = 1
FOCAL = 1145.0 / 1000.0 * 2.0


def make_data(num_sequences: int = 3, frames: int = 50, seed: int = 0) -> PoseArrays:
    """Smoothly moving 16-joint skeletons about 5 m in front of pinhole cameras, projected to 2D.

    Root-relative 3D (metres), normalised 2D consistent with each sequence's intrinsics and the
    absolute root in ``meta['root_3d']``, so the 3D is largely a learnable function of the 2D.
    """
    rng = np.random.default_rng(seed)
    layout = get_layout("h36m16")
    offsets = rng.normal(0.0, 0.15, size=(layout.num_joints, 3))
    base = np.zeros((layout.num_joints, 3))
    for joint, parent in enumerate(layout.parents):
        if parent >= 0:
            base[joint] = base[parent] + offsets[joint]
    poses_3d, roots, intrinsics, poses_2d = [], [], [], []
    for s in range(num_sequences):
        drift = np.cumsum(rng.normal(0.0, 0.01, size=(frames, layout.num_joints, 3)), axis=0)
        pose = base + drift
        pose = pose - pose[:, :1]
        root = np.array([0.3 * s - 0.3, 0.1, 5.0]) + np.cumsum(rng.normal(0.0, 0.005, size=(frames, 3)), axis=0)
        focal = FOCAL * (1.0 + 0.01 * s)
        centre = np.array([0.02 * (s - 1), -0.01])
        absolute = pose + root[:, None]
        poses_2d.append(focal * absolute[..., :2] / absolute[..., 2:] + centre)
        poses_3d.append(pose)
        roots.append(root)
        intrinsics.append([focal, focal, centre[0], centre[1], 1000.0, 1002.0])
    lengths = np.full(num_sequences, frames)
    sequences = np.stack([np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths], axis=1)
    return PoseArrays.from_numpy(
        np.concatenate(poses_2d).astype(np.float32),
        np.concatenate(poses_3d).astype(np.float32),
        sequences,
        meta={
            "root_3d": np.concatenate(roots).astype(np.float32),
            "intrinsics": np.asarray(intrinsics, dtype=np.float32),
        },
    )


def build_networks(seed: int = 1, refine: bool = True) -> tuple[nn.Module, nn.Module | None]:
    """A tiny MLP-Graph (T = 3) and a narrow refinement, initialised from ``seed``."""
    seed_everything(seed)
    model = build_model(
        "mlpgraph", frames=2 * PAD + 1, hid_dim=16, spatial_hid_dim=16, channel_hid_dim=24, num_layers=1
    )
    return model, build_model("refine", hidden_dim=32) if refine else None


def p1_mm(model: nn.Module, refine: nn.Module | None, data: PoseArrays, pad: int = PAD) -> float:
    """Test MPJPE (mm) of ``refine``'s output when given, else of ``model``'s, on every sample of ``data``."""
    indices = torch.arange(data.num_samples)
    windows, target = data.batch(indices, pad)
    pred = model(windows)
    if refine is not None:
        pred = refine(pred, lifted_estimate(data, indices, windows, pred, pad))
    target = root_relative(target, get_layout(data.layout).root)
    return float((pred - target).norm(dim=-1).mean().item() * 1000.0)


def last_epoch(path: Path) -> int:
    """The epoch a (possibly half-written or absent) checkpoint holds; 0 when none can be read."""
    try:
        return int(load_checkpoint(path)["meta"]["epoch"])
    except (UserInputError, KeyError):
        return 0


def worker_recipe(epochs: int = 4) -> Recipe:
    return Recipe(epochs=epochs, batch_size=32, lr=5e-3, refine=True, device="cpu")


def run(checkpoint_dir: Path, eval_sleep: float = 0.0) -> TrainResult:
    """The run the kill/resume test repeats: 4 epochs, joint refinement, an evaluate on held-out data."""
    train_data, test_data = make_data(seed=0), make_data(num_sequences=2, seed=1)
    model, refine = build_networks()

    def evaluate(model: nn.Module, refine: nn.Module | None) -> dict[str, float]:
        time.sleep(eval_sleep)
        return {"P1": p1_mm(model, refine, test_data)}

    return train(model, train_data, worker_recipe(), checkpoint_dir, PAD, evaluate=evaluate, refine=refine)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checkpoint_dir", type=Path)
    parser.add_argument("result", type=Path)
    parser.add_argument("--eval-sleep", type=float, default=0.0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    result = run(args.checkpoint_dir, args.eval_sleep)
    args.result.write_text(json.dumps({"history": result.history, "best_epoch": result.best_epoch}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
