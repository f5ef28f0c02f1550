"""The nearest-training-pose search behind the derived hard-pose set: bit-identical to brute force.

Random poses of several shapes (one training pose, duplicates, ties, a test set equal to the training
set, clustered and far-away poses) and poses of the synthetic Human3.6M (tiny and small scale, in
camera coordinates like the processed file's) go through :func:`nearest_distances`,
:func:`hardest_poses` and :func:`derive_hard_poses`, and must equal the brute force exactly; the
clustering's invariants and bounds are checked on their own.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mlpgraph.cameras import load_cameras
from mlpgraph.data.synthetic import TEST_SUBJECTS, TRAIN_SUBJECTS, generate_positions_3d
from mlpgraph.evaluation import derive_hard_poses, nearest_pose
from mlpgraph.evaluation import pose_tree as tree_module
from mlpgraph.evaluation.nearest_pose import (
    hardest_poses,
    nearest_distances,
    nearest_distances_brute_force,
    pose_distances,
)
from mlpgraph.evaluation.pose_tree import EXACT, LEAF_MAX, build_pose_tree
from mlpgraph.layouts import H36M16, H36M32, root_relative, select_joints


def as_mm(poses: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(N, J, 3) mm as the search takes them: float32."""
    return torch.as_tensor(poses, dtype=torch.float32).contiguous()


def clustered_poses(rng: np.random.Generator, count: int, joints: int, centres: int, spread: float) -> np.ndarray:
    """(count, joints, 3) mm poses around ``centres`` random poses, root joint at the origin."""
    base = rng.normal(size=(centres, joints, 3)) * 300.0
    poses = base[rng.integers(0, centres, count)] + rng.normal(size=(count, joints, 3)) * spread
    return poses - poses[:, :1]


def stable_top(distances: torch.Tensor, keep: int) -> torch.Tensor:
    return torch.argsort(-distances, stable=True)[:keep]


def assert_search_exact(test: np.ndarray, train: np.ndarray, keeps: tuple[int, ...] = (1,)) -> torch.Tensor:
    """Both searches equal the brute force bit for bit; returns the brute-force distances."""
    test_t, train_t = as_mm(test), as_mm(train)
    reference = nearest_distances_brute_force(test_t, train_t)
    assert torch.equal(nearest_distances(test_t, train_t), reference)
    for keep in keeps:
        found, distances = hardest_poses(test_t, train_t, keep)
        order = stable_top(reference, keep)
        assert torch.equal(found, order), keep
        assert torch.equal(distances, reference[order]), keep
    return reference


def test_pose_distances_do_not_depend_on_the_block():
    rng = np.random.default_rng(0)
    test = as_mm(rng.normal(size=(37, 16, 3)) * 300)
    train = as_mm(rng.normal(size=(53, 16, 3)) * 300)
    whole = pose_distances(test, train)
    assert whole.dtype == torch.float32 and whole.shape == (37, 53)
    for rows, cols in [(slice(0, 1), slice(0, 1)), (slice(3, 10), slice(5, 6)), (slice(30, 37), slice(1, 53))]:
        assert torch.equal(pose_distances(test[rows], train[cols]), whole[rows, cols])
    for chunk, memory_mb in [(1, 0), (7, 0), (53, 256), (8192, 1)]:
        assert torch.equal(nearest_distances_brute_force(test, train, chunk, memory_mb), whole.amin(dim=1))
    expected = (test[:, None] - train[None]).double().norm(dim=-1).mean(dim=-1)
    torch.testing.assert_close(whole.double(), expected, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize(
    ("num_test", "num_train", "joints"),
    [(5, 1, 16), (3, 2, 16), (200, 300, 17), (50, 1000, 3), (1, 40, 16)],
)
def test_random_poses_match_brute_force(num_test, num_train, joints):
    rng = np.random.default_rng(num_test * 1000 + num_train)
    test = rng.normal(size=(num_test, joints, 3)) * 300.0
    train = rng.normal(size=(num_train, joints, 3)) * 300.0
    assert_search_exact(test, train, keeps=(1, math.ceil(num_test / 3), num_test))


def test_clustered_and_far_poses_match_brute_force():
    rng = np.random.default_rng(1)
    train = clustered_poses(rng, 6000, 16, 40, 25.0)
    near = clustered_poses(rng, 300, 16, 40, 30.0)
    far = rng.normal(size=(30, 16, 3)) * 600.0
    test = np.concatenate([near, far])[rng.permutation(330)]
    assert_search_exact(test, train, keeps=(1, 17, 100, 330))


def test_small_blocks_change_nothing(monkeypatch):
    rng = np.random.default_rng(5)
    train = clustered_poses(rng, 3000, 16, 20, 25.0)
    test = np.concatenate([clustered_poses(rng, 400, 16, 20, 35.0), np.repeat(train[:3], 4, axis=0)])
    monkeypatch.setattr(nearest_pose, "BOUND_BLOCK", 40)  # coarse bounds in blocks of 10
    monkeypatch.setattr(nearest_pose, "REFINE_BLOCK", 64)
    monkeypatch.setattr(nearest_pose, "TAIL_BLOCK", 16)
    monkeypatch.setattr(nearest_pose, "MEASURE_FLOATS", 1)  # one leaf per batch of exact distances
    assert_search_exact(test, train, keeps=(1, 15, 150, 412))


def test_duplicates_ties_and_test_equal_to_train():
    rng = np.random.default_rng(2)
    train = np.repeat(clustered_poses(rng, 60, 16, 5, 20.0), 40, axis=0)  # k-means clusters far over LEAF_MAX
    reference = assert_search_exact(train, train, keeps=(1, 50, 2400))
    assert torch.all(reference == 0)
    found, _ = hardest_poses(as_mm(train), as_mm(train), 7)
    np.testing.assert_array_equal(found.numpy(), np.arange(7))  # all tied: lowest indices first
    test = np.repeat(clustered_poses(rng, 12, 16, 5, 60.0), 3, axis=0)  # every hardness three times
    reference = assert_search_exact(test, train, keeps=(1, 2, 3, 4, 20, 36))
    assert len(torch.unique(reference)) <= 12


def test_tree_covers_every_pose_once_and_bounds_its_members():
    rng = np.random.default_rng(3)
    poses = np.concatenate([clustered_poses(rng, 3000, 16, 30, 20.0), np.zeros((100, 16, 3))])
    tree = build_pose_tree(as_mm(poses))
    leaves = tree.leaves
    assert len(tree.levels) == 3 and int(leaves.count.min()) >= 1 and tree.members.shape[1] <= LEAF_MAX
    # each level's children are consecutive runs covering the next level (the poses, for the leaves)
    sizes = [len(level.count) for level in tree.levels[1:]] + [len(poses)]
    node_of = [torch.arange(len(poses))]
    for level, below in zip(reversed(tree.levels), reversed(sizes), strict=True):
        assert torch.equal(level.first, torch.cumsum(level.count, 0) - level.count)
        assert int(level.count.sum()) == below and int(level.count.min()) >= 1
        node_of.insert(0, torch.repeat_interleave(torch.arange(len(level.count)), level.count)[node_of[0]])
    # the leaves' members are a permutation of the training poses, padded by repeating the last
    members = tree.members  # (leaves, W, J, 3)
    slot = torch.arange(len(poses)) - leaves.first[node_of[2]]
    in_order = members[node_of[2], slot]
    by_value = [np.lexsort(r.reshape(len(poses), -1).T[::-1]) for r in (poses.astype(np.float32), in_order.numpy())]
    np.testing.assert_array_equal(poses.astype(np.float32)[by_value[0]], in_order.numpy()[by_value[1]])
    padded = torch.minimum(torch.arange(members.shape[1]), leaves.count[:, None] - 1)
    assert torch.equal(members, members[torch.arange(len(members))[:, None], padded])
    # every member's joints lie within the radii of its leaf, its mid and its coarse cluster
    for level, node in zip(tree.levels, node_of, strict=False):
        joint = (in_order - level.centre[node]).double().norm(dim=2)  # (M, J)
        assert torch.all(joint <= level.radius[node].double())
    # the search's lower bound for a leaf never exceeds its distance to any member (one-pose leaves included)
    test = as_mm(np.concatenate([clustered_poses(rng, 50, 16, 30, 60.0), poses[::300]]))
    joint = torch.cdist(test.transpose(0, 1), leaves.centre.transpose(0, 1), compute_mode=EXACT).permute(1, 2, 0)
    bound = nearest_pose._bounds(joint, leaves.radius)  # (tests, leaves)
    exact = pose_distances(test, in_order)  # (tests, M)
    index = node_of[2].expand(len(test), -1)
    assert torch.all(bound <= torch.full_like(bound, math.inf).scatter_reduce(1, index, exact, "amin"))
    assert int((leaves.count == 1).sum()) > 0


def test_kmeans_groups_are_independent_and_deterministic():
    rng = np.random.default_rng(4)
    points = torch.tensor(rng.normal(size=(3, 40, 6)), dtype=torch.float32)
    sizes, counts = torch.tensor([40, 25, 3]), torch.tensor([4, 2, 3])
    labels = tree_module.grouped_kmeans(points, sizes, counts, steps=5)
    for g in range(3):
        alone = tree_module.grouped_kmeans(points[g : g + 1, : sizes[g]], sizes[g : g + 1], counts[g : g + 1], 5)
        assert torch.equal(alone[0], labels[g, : sizes[g]])
        assert int(labels[g, : sizes[g]].max()) < counts[g]
    assert torch.equal(tree_module.grouped_kmeans(points, sizes, counts, steps=5), labels)
    assert set(labels[2, :3].tolist()) == {0, 1, 2}  # as many centres as points: each its own


def camera_poses(scale: str, seed: int, subjects: tuple[str, ...], frame_step: int, cameras: int) -> np.ndarray:
    """Root-relative camera-frame h36m16 poses in metres of the synthetic Human3.6M, like the processed file's."""
    positions = generate_positions_3d(scale, seed)
    rig = load_cameras()
    parts = []
    for subject in subjects:
        for world in positions[subject].values():
            world = select_joints(world[::frame_step], H36M32, H36M16).astype(np.float64)
            for camera in rig.cameras(subject)[:cameras]:
                parts.append(root_relative(camera.world_to_camera(world), H36M16.root).astype(np.float32))
    return np.concatenate(parts)


@pytest.fixture(scope="module")
def synthetic_tiny() -> tuple[np.ndarray, np.ndarray]:
    return camera_poses("tiny", 0, TRAIN_SUBJECTS, 5, 2), camera_poses("tiny", 0, TEST_SUBJECTS, 2, 2)


@pytest.fixture(scope="module")
def synthetic_small() -> tuple[np.ndarray, np.ndarray]:
    return camera_poses("small", 3, TRAIN_SUBJECTS, 5, 3), camera_poses("small", 3, TEST_SUBJECTS, 1, 3)


@pytest.mark.parametrize(("every", "fraction"), [(5, 0.05), (9, 0.2), (23, 1.0), (40, 0.001)])
def test_derive_hard_poses_on_synthetic_tiny_matches_brute_force(synthetic_tiny, every, fraction):
    train, test = synthetic_tiny  # 6 000 training poses, 4 800 test poses
    fast = derive_hard_poses(train, test, every=every, fraction=fraction)
    reference = derive_hard_poses(train, test, every=every, fraction=fraction, brute_force=True)
    np.testing.assert_array_equal(fast[0], reference[0])
    np.testing.assert_array_equal(fast[1], reference[1])
    assert len(fast[0]) == math.ceil(fraction * len(range(0, len(test), every)))
    assert np.all(np.diff(fast[1]) <= 0) and np.all(fast[0] % every == 0)


def test_nearest_distances_on_synthetic_small_match_brute_force(synthetic_small):
    train, test = synthetic_small  # 9 900 training poses, every 17th of 17 280 test poses
    test_mm, train_mm = as_mm(test[::17] * 1000.0), as_mm(train * 1000.0)
    reference = nearest_distances_brute_force(test_mm, train_mm)
    assert torch.equal(nearest_distances(test_mm, train_mm), reference)
    assert 5.0 < float(reference.median()) < 200.0  # mm: the data are realistic, not degenerate
    found, distances = hardest_poses(test_mm, train_mm, 52)
    assert torch.equal(found, stable_top(reference, 52)) and torch.equal(distances, reference[found])


def test_derive_hard_poses_refuses_non_finite_poses():
    poses = np.zeros((4, 16, 3))
    poses[2, 5, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        derive_hard_poses(np.zeros((3, 16, 3)), poses, every=1)
