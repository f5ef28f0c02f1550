"""The synthetic data set is a real motion model: checked by training on it at the tiny scale.

1. A lifting network trained on the gt 2D reaches errors far below the mean-pose baseline.
2. On the detector-like hr 2D, a temporal model beats the single-frame one.

Both are promised in docs/data.md ("Synthetic data").
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mlpgraph.data.batches import PoseArrays
from mlpgraph.data.fetch import fetch
from mlpgraph.data.preprocess import build_hdf5
from mlpgraph.data.synthetic import TEST_SUBJECTS, TRAIN_SUBJECTS
from mlpgraph.evaluation import evaluate_h36m, predict
from mlpgraph.models import build_model
from mlpgraph.training import Recipe, seed_everything, train
from tests.test_fetch import params

pytestmark = pytest.mark.slow
NARROW = {"hid_dim": 32, "spatial_hid_dim": 32, "channel_hid_dim": 64, "num_layers": 2}


@pytest.fixture(scope="module")
def processed(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("learn")
    fetch(params(), root / "raw")
    return {
        kp: build_hdf5(
            root / "raw", root / f"{kp}.h5", keypoints=kp, train_subjects=TRAIN_SUBJECTS, test_subjects=TEST_SUBJECTS
        )
        for kp in ("gt", "hr")
    }


def _fit(path: Path, frames: int, tmp: Path, recipe: Recipe) -> tuple[float, float]:
    """(P1 of the trained model, P1 of the mean training pose) on the test subjects, mm."""
    train_data = PoseArrays.from_processed(path, TRAIN_SUBJECTS)
    test_data = PoseArrays.from_processed(path, TEST_SUBJECTS)
    seed_everything(recipe.seed)
    model = build_model("mlpgraph", frames=frames, **NARROW)
    train(model, train_data, recipe, tmp / f"f{frames}", pad=(frames - 1) // 2)
    p1 = evaluate_h36m(predict(model, test_data, (frames - 1) // 2), test_data)["P1"]
    mean_pose = train_data.poses_3d.mean(0, keepdim=True).expand_as(test_data.poses_3d)
    return p1, evaluate_h36m(mean_pose, test_data)["P1"]


def test_lifting_beats_the_mean_pose_by_far(processed, tmp_path):
    p1, baseline = _fit(processed["gt"], 1, tmp_path, Recipe(epochs=3, batch_size=256, lr=2e-3))
    assert baseline > 150
    assert p1 < 0.5 * baseline, (p1, baseline)


def test_temporal_context_helps_on_detected_keypoints(processed, tmp_path):
    torch.set_num_threads(2)
    recipe = Recipe(lr=5e-3, lr_decay=0.90, large_decay_epoch=4, detected=True, epochs=3, batch_size=256)
    single, _ = _fit(processed["hr"], 1, tmp_path, recipe)
    temporal, _ = _fit(processed["hr"], 9, tmp_path, recipe)
    assert temporal < single, (temporal, single)
