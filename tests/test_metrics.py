"""Pose metrics against hand-computed cases, Procrustes invariances and the no-reflection rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from scipy.spatial.transform import Rotation

from mlpgraph import metrics


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    return Rotation.random(random_state=rng).as_matrix()


def test_mpjpe_hand_case():
    # Two joints, each offset by (3, 4, 0) mm: |(3, 4, 0)| = sqrt(9 + 16) = 5 -> MPJPE 5.
    target = np.array([[[0.0, 0.0, 0.0], [100.0, 0.0, 0.0]]])
    pred = target + np.array([3.0, 4.0, 0.0])
    assert metrics.mpjpe(pred, target) == pytest.approx(5.0)
    # Second sample: joint errors 0 and |(0, 6, 8)| = 10 -> sample mean 5; overall (5+5+0+10)/4 = 5.
    target2 = np.concatenate([target, target])
    pred2 = np.concatenate([pred, target + np.array([[[0, 0, 0], [0, 6, 8]]])])
    assert metrics.mpjpe(pred2, target2) == pytest.approx(5.0)
    np.testing.assert_allclose(metrics.joint_errors(pred2, target2), [[5.0, 5.0], [0.0, 10.0]])
    np.testing.assert_allclose(metrics.joint_errors(pred2, target2).mean(axis=1), [5.0, 5.0])
    # per joint: joint 0 errors 5 and 0 -> 2.5; joint 1 errors 5 and 10 -> 7.5
    np.testing.assert_allclose(metrics.joint_errors(pred2, target2).mean(axis=0), [2.5, 7.5])
    # torch input gives the same Python float
    value = metrics.mpjpe(torch.tensor(pred2, dtype=torch.float32), torch.tensor(target2))
    assert isinstance(value, float) and value == pytest.approx(5.0)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.mpjpe(np.zeros((2, 3, 3)), np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match=r"\(N, J, 3\)"):
        metrics.mpjpe(np.zeros((3, 3)), np.zeros((3, 3)))


def test_pa_mpjpe_of_similar_copy_is_zero():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(5, 16, 3)) * 200.0
    rots = np.stack([random_rotation(rng) for _ in range(5)])
    scales = rng.uniform(0.5, 2.0, size=5)
    shifts = rng.normal(size=(5, 1, 3)) * 500.0
    pred = scales[:, None, None] * np.einsum("nij,nkj->nki", rots, target) + shifts
    assert metrics.mpjpe(pred, target) > 10.0
    assert metrics.pa_mpjpe(pred, target) == pytest.approx(0.0, abs=1e-8)


def test_pa_mpjpe_invariant_to_similarity_of_pred():
    rng = np.random.default_rng(1)
    target = rng.normal(size=(8, 16, 3)) * 200.0
    pred = target + rng.normal(size=target.shape) * 30.0
    base = metrics.pa_mpjpe_per_sample(pred, target)
    rot = random_rotation(rng)
    moved = 1.7 * pred @ rot.T + np.array([10.0, -300.0, 4000.0])
    np.testing.assert_allclose(metrics.pa_mpjpe_per_sample(moved, target), base, atol=1e-8)
    assert np.all(base <= metrics.joint_errors(pred, target).mean(axis=1) + 1e-9)


def test_pa_mpjpe_reflection_is_not_undone():
    # A non-planar pose (mm), centred, principal axes along x, y, z: X^T X = diag(8, 2, 4) * 100.
    #   (20, 0, 10), (-20, 0, 10), (0, 10, -10), (0, -10, -10)
    # Target = mirror image (x negated); pred is also translated (translation is free).
    # H = X^T Y = diag(-8, 2, 4) * 100 has det < 0; the best proper rotation flips the axis of
    # least spread too (y, 2): R = diag(-1, -1, 1), tr(S D) = (8 + 4 - 2) * 100 = 1000,
    # s = 1000 / |X|^2 = 1000 / 1400 = 5/7. Aligned s X R vs target X diag(-1, 1, 1), per axis
    # residual x: 2/7 x, y: 12/7 y, z: 2/7 z:
    #   (20, 0, 10): (40/7, 0, 20/7) -> sqrt(1600 + 400) / 7 = sqrt(2000) / 7 (twice)
    #   (0, 10, -10): (0, 120/7, 20/7) -> sqrt(14400 + 400) / 7 = sqrt(14800) / 7 (twice)
    # PA-MPJPE = (sqrt(2000) + sqrt(14800)) / 14 = 11.884... mm; squared residual 96/14 * 100.
    pose = np.array([[20.0, 0.0, 10.0], [-20.0, 0.0, 10.0], [0.0, 10.0, -10.0], [0.0, -10.0, -10.0]])
    target = pose * np.array([-1.0, 1.0, 1.0])
    pred = pose + np.array([5.0, -7.0, 300.0])
    expected = (math.sqrt(2000.0) + math.sqrt(14800.0)) / 14.0
    value = metrics.pa_mpjpe(pred[None], target[None])
    assert value == pytest.approx(expected, rel=1e-10)
    aligned = metrics.procrustes_align(torch.tensor(pred[None]), torch.tensor(target[None]))[0].numpy()
    assert ((aligned - target) ** 2).sum() == pytest.approx(9600.0 / 14.0, rel=1e-10)

    # Brute force over proper rotations (scale >= 0 and translation in closed form for each R; a
    # negative scale times a rotation would be a reflection in 3D):
    # the best least-squares residual and the MPJPE at that optimum agree with Procrustes.
    x = pred - pred.mean(0)
    y = target - target.mean(0)

    def residual(rotvec: np.ndarray) -> float:
        xr = x @ Rotation.from_rotvec(rotvec).as_matrix().T
        s = max((xr * y).sum() / (xr * xr).sum(), 0.0)
        return float(((s * xr - y) ** 2).sum())

    rng = np.random.default_rng(2)
    best = min(
        (minimize(residual, Rotation.random(random_state=rng).as_rotvec(), method="BFGS") for _ in range(20)),
        key=lambda r: r.fun,
    )
    assert best.fun == pytest.approx(9600.0 / 14.0, rel=1e-6)
    xr = x @ Rotation.from_rotvec(best.x).as_matrix().T
    s = (xr * y).sum() / (xr * xr).sum()
    brute = np.linalg.norm(s * xr - y, axis=-1).mean()
    assert value == pytest.approx(brute, rel=1e-5)


def test_pa_mpjpe_batched_equals_per_sample_loop():
    rng = np.random.default_rng(3)
    target = rng.normal(size=(50, 17, 3)) * 150.0
    pred = rng.normal(size=(50, 17, 3)) * 150.0  # includes samples whose best fit is a reflection
    batched = metrics.pa_mpjpe_per_sample(pred, target)
    looped = np.array([metrics.pa_mpjpe(pred[i : i + 1], target[i : i + 1]) for i in range(50)])
    np.testing.assert_allclose(batched, looped, rtol=1e-12)
    assert metrics.pa_mpjpe(pred, target) == pytest.approx(looped.mean())
    # float32 torch input agrees with float64 numpy
    as_torch = metrics.pa_mpjpe(torch.tensor(pred, dtype=torch.float32), torch.tensor(target, dtype=torch.float32))
    assert as_torch == pytest.approx(looped.mean(), rel=1e-5)


def test_pa_mpjpe_chunks(monkeypatch: pytest.MonkeyPatch):
    rng = np.random.default_rng(4)
    target = rng.normal(size=(23, 16, 3))
    pred = rng.normal(size=(23, 16, 3))
    whole = metrics.pa_mpjpe_per_sample(pred, target)
    monkeypatch.setattr(metrics, "PA_CHUNK", 5)
    np.testing.assert_allclose(metrics.pa_mpjpe_per_sample(pred, target), whole, rtol=1e-12)


def test_pa_mpjpe_degenerate_prediction():
    # All predicted joints at one point: scale 0, aligned pose = target centroid.
    target = np.array([[[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]]])
    pred = np.zeros_like(target)
    # centroid (1, 0, 0): both joints 1 mm away
    assert metrics.pa_mpjpe(pred, target) == pytest.approx(1.0)


def test_pck_and_auc_hand_case():
    # Three joints with errors exactly 0, 100 = |(60, 80, 0)| and 200 = |(120, 160, 0)| mm.
    target = np.zeros((1, 3, 3))
    pred = np.array([[[0.0, 0.0, 0.0], [60.0, 80.0, 0.0], [120.0, 160.0, 0.0]]])
    # PCK@150: 0 and 100 are below 150 -> 2/3 = 66.67 %
    assert metrics.pck(pred, target) == pytest.approx(200.0 / 3.0)
    # strictly below: a threshold of 100 counts only the 0 error
    assert metrics.pck(pred, target, threshold=100.0) == pytest.approx(100.0 / 3.0)
    # AUC over t = 0, 5, ..., 150 (31 values): error 0 is below t for the 30 values t >= 5,
    # error 100 for the 10 values t = 105..150, error 200 never: (30 + 10 + 0) / (3 * 31) = 40/93
    assert metrics.auc(pred, target) == pytest.approx(4000.0 / 93.0)


def test_auc_uniform_errors():
    # Errors 2.5, 7.5, ..., 147.5 mm (30 joints, one per 5 mm bin): at threshold 5k exactly k
    # errors are below, so AUC = mean_k (k / 30) for k = 0..30 = 15 / 30 = 50 %.
    errors = np.arange(30) * 5.0 + 2.5
    pred = np.zeros((1, 30, 3))
    pred[0, :, 2] = errors
    assert metrics.auc(pred, np.zeros_like(pred)) == pytest.approx(50.0)
    assert metrics.pck(pred, np.zeros_like(pred)) == pytest.approx(100.0)
