"""Skeleton layouts against the tables of docs/data.md ("Skeleton layouts")."""

import numpy as np
import pytest

from mlpgraph.errors import UserInputError
from mlpgraph.layouts import (
    H36M16,
    H36M17,
    H36M32,
    MPI3DHP17,
    get_layout,
    layout_for_joint_count,
    select_joints,
)


def test_h36m17_matches_data_md_table():
    assert H36M17.parents == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
    assert H36M17.left_joints == (4, 5, 6, 11, 12, 13)
    assert H36M17.right_joints == (1, 2, 3, 14, 15, 16)
    assert len(H36M17.bones) == 16


def test_h36m16_is_h36m17_without_neck():
    assert H36M16.parents == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 8, 10, 11, 8, 13, 14)
    assert H36M16.left_joints == (4, 5, 6, 10, 11, 12)
    assert H36M16.right_joints == (1, 2, 3, 13, 14, 15)
    assert len(H36M16.bones) == 15
    assert H36M16.indices_from(H36M17).tolist() == [
        0,
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        10,
        11,
        12,
        13,
        14,
        15,
        16,
    ]


def test_raw_32_reduction_removes_the_community_list():
    kept = set(H36M17.indices_from(H36M32).tolist())
    removed = sorted(set(range(32)) - kept)
    assert removed == [4, 5, 9, 10, 11, 16, 20, 21, 22, 23, 24, 28, 29, 30, 31]


def test_3dhp_mapping_matches_model_md():
    assert H36M17.indices_from(MPI3DHP17).tolist() == [14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4]
    assert H36M16.indices_from(MPI3DHP17).tolist() == [14, 8, 9, 10, 11, 12, 13, 15, 1, 0, 5, 6, 7, 2, 3, 4]
    assert MPI3DHP17.root == 14


@pytest.mark.parametrize("layout", [H36M16, H36M17])
def test_adjacency_and_flip(layout):
    adj = layout.adjacency()
    assert np.array_equal(adj, adj.T)
    assert np.all(np.diag(adj) == 0)
    assert adj.sum() == 2 * len(layout.bones)
    norm = layout.normalised_adjacency()
    degree = adj.sum(1)
    child, parent = layout.bones[0]
    assert norm[child, parent] == pytest.approx(1 / np.sqrt(degree[child] * degree[parent]))
    assert np.allclose(layout.row_normalised_adjacency(self_loops=True).sum(1), 1)
    perm = layout.flip_permutation
    assert np.array_equal(perm[perm], np.arange(layout.num_joints))
    for left, right in zip(layout.left_joints, layout.right_joints, strict=True):
        assert perm[left] == right and perm[right] == left
        assert layout.joint_names[left].replace("left", "right") == layout.joint_names[right]


def test_symmetric_bone_pairs_pair_left_with_right():
    for left_bone, right_bone in H36M16.symmetric_bone_pairs:
        left_child = H36M16.joint_names[H36M16.bones[left_bone][0]]
        right_child = H36M16.joint_names[H36M16.bones[right_bone][0]]
        assert left_child.startswith("left_") and right_child == left_child.replace("left_", "right_")
    assert len(H36M16.symmetric_bone_pairs) == 6


def test_lookup_and_conversion_errors():
    assert get_layout("h36m16") is H36M16
    assert layout_for_joint_count(32) is H36M32
    with pytest.raises(UserInputError, match="unknown skeleton layout"):
        get_layout("coco")
    with pytest.raises(UserInputError, match="18 joints"):
        layout_for_joint_count(18, "file.npz")
    with pytest.raises(UserInputError, match="lacks"):
        select_joints(np.zeros((2, 16, 2)), H36M16, H36M17)
    poses = np.arange(17 * 3, dtype=np.float32).reshape(1, 17, 3)
    assert select_joints(poses, H36M17, H36M16).shape == (1, 16, 3)
    assert np.array_equal(select_joints(poses, H36M17, H36M16)[0, 9], poses[0, 10])
