"""Skeleton layouts: the one place joint names, parents, bones, flips and adjacency come from.

Every other module asks a :class:`SkeletonLayout` for these; no joint index list appears
anywhere else. Layouts convert into each other by joint name (``select_joints``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

import numpy as np

from mlpgraph.errors import UserInputError


@dataclass(frozen=True)
class SkeletonLayout:
    """A named kinematic tree: joints, each joint's parent (-1 for the root) and its body side."""

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.joint_names) != len(self.parents):
            raise ValueError(f"layout {self.name}: {len(self.joint_names)} names, {len(self.parents)} parents")
        roots = [i for i, p in enumerate(self.parents) if p == -1]
        if len(roots) != 1 or any(not -1 <= p < len(self.parents) for p in self.parents):
            raise ValueError(f"layout {self.name}: parents must form one tree with a single root")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def root(self) -> int:
        return self.parents.index(-1)

    def index(self, name: str) -> int:
        """Index of the joint called ``name``."""
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise KeyError(f"layout {self.name} has no joint {name!r}") from None

    @cached_property
    def bones(self) -> np.ndarray:
        """(B, 2) int array of (child, parent) pairs, in joint order."""
        return np.array([(j, p) for j, p in enumerate(self.parents) if p >= 0], dtype=np.int64)

    @cached_property
    def left_joints(self) -> tuple[int, ...]:
        return tuple(i for i, n in enumerate(self.joint_names) if n.startswith("left_"))

    @cached_property
    def right_joints(self) -> tuple[int, ...]:
        """Right-side joints, in the order that pairs them with ``left_joints``."""
        return tuple(self.index("right_" + self.joint_names[i][len("left_") :]) for i in self.left_joints)

    @cached_property
    def flip_permutation(self) -> np.ndarray:
        """Joint permutation that swaps left and right (apply after negating x)."""
        perm = np.arange(self.num_joints)
        perm[list(self.left_joints)] = self.right_joints
        perm[list(self.right_joints)] = self.left_joints
        return perm

    @cached_property
    def symmetric_bone_pairs(self) -> np.ndarray:
        """(P, 2) indices into ``bones`` of (left bone, right bone) pairs, matched by child joint."""
        child_to_bone = {int(c): b for b, (c, _) in enumerate(self.bones)}
        return np.array(
            [
                (child_to_bone[lj], child_to_bone[rj])
                for lj, rj in zip(self.left_joints, self.right_joints, strict=True)
            ],
            dtype=np.int64,
        )

    def adjacency(self, self_loops: bool = False) -> np.ndarray:
        """Symmetric 0/1 (J, J) adjacency of the bones, optionally with the identity added."""
        adj = np.zeros((self.num_joints, self.num_joints), dtype=np.float32)
        child, parent = self.bones.T
        adj[child, parent] = 1.0
        adj[parent, child] = 1.0
        if self_loops:
            adj += np.eye(self.num_joints, dtype=np.float32)
        return adj

    def normalised_adjacency(self, self_loops: bool = False) -> np.ndarray:
        """Symmetric normalisation D^-1/2 A D^-1/2 of ``adjacency(self_loops)``."""
        adj = self.adjacency(self_loops)
        inv_sqrt = 1.0 / np.sqrt(adj.sum(axis=1))
        return (adj * inv_sqrt[:, None] * inv_sqrt[None, :]).astype(np.float32)

    def row_normalised_adjacency(self, self_loops: bool = False) -> np.ndarray:
        """Row normalisation D^-1 A of ``adjacency(self_loops)`` (rows sum to one)."""
        adj = self.adjacency(self_loops)
        return (adj / adj.sum(axis=1, keepdims=True)).astype(np.float32)

    def indices_from(self, source: SkeletonLayout) -> np.ndarray:
        """Indices into ``source``'s joints that give this layout's joints, matched by name."""
        missing = [n for n in self.joint_names if n not in source.joint_names]
        if missing:
            raise UserInputError(f"cannot convert layout {source.name} to {self.name}: {source.name} lacks {missing}")
        return np.array([source.index(n) for n in self.joint_names], dtype=np.int64)


_H36M17_NAMES = (
    "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "spine", "thorax", "neck", "head", "left_shoulder", "left_elbow", "left_wrist",
    "right_shoulder", "right_elbow", "right_wrist",
)  # fmt: skip

H36M17 = SkeletonLayout(
    name="h36m17",
    joint_names=_H36M17_NAMES,
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
)

H36M16 = SkeletonLayout(
    name="h36m16",
    joint_names=tuple(n for n in _H36M17_NAMES if n != "neck"),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 8, 10, 11, 8, 13, 14),
)

# The raw Human3.6M motion-capture skeleton (32 joints, as in the community's data_3d_h36m.npz).
# Joints that h36m17 drops carry "raw_" names; h36m17 is this layout's subset by name, which is
# exactly the community's removal of raw joints [4, 5, 9, 10, 11, 16, 20, 21, 22, 23, 24, 28..31]
# (shoulders then hang off the thorax).
H36M32 = SkeletonLayout(
    name="h36m32",
    joint_names=(
        "pelvis", "right_hip", "right_knee", "right_ankle", "raw_right_toe", "raw_right_toe_end",
        "left_hip", "left_knee", "left_ankle", "raw_left_toe", "raw_left_toe_end",
        "raw_spine_base", "spine", "thorax", "neck", "head",
        "raw_left_clavicle", "left_shoulder", "left_elbow", "left_wrist", "raw_left_hand",
        "raw_left_hand_end", "raw_left_thumb", "raw_left_thumb_end",
        "raw_right_clavicle", "right_shoulder", "right_elbow", "right_wrist", "raw_right_hand",
        "raw_right_hand_end", "raw_right_thumb", "raw_right_thumb_end",
    ),
    parents=(-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14, 12, 16, 17, 18, 19, 20, 19, 22,
             12, 24, 25, 26, 27, 28, 27, 30),
)  # fmt: skip

# MPI-INF-3DHP's 17-joint test order (P-STMO's data_test_3dhp.npz): joint names follow h36m17's,
# so h36m17/h36m16 are name-based subsets of it. 3DHP's "neck" (1) is h36m17's thorax and its
# "head" (16) is h36m17's neck/nose; 3DHP's head top (0) is h36m17's head.
MPI3DHP17 = SkeletonLayout(
    name="mpi3dhp17",
    joint_names=(
        "head", "thorax", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
        "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
        "left_knee", "left_ankle", "pelvis", "spine", "neck",
    ),
    parents=(16, 15, 1, 2, 3, 1, 5, 6, 14, 8, 9, 14, 11, 12, -1, 14, 1),
)  # fmt: skip

LAYOUTS: dict[str, SkeletonLayout] = {lay.name: lay for lay in (H36M16, H36M17, H36M32, MPI3DHP17)}
MODEL_LAYOUTS = ("h36m16", "h36m17")


def get_layout(name: str | SkeletonLayout) -> SkeletonLayout:
    """The layout called ``name`` (``h36m16``, ``h36m17``, the raw ``h36m32`` or ``mpi3dhp17``).

    A :class:`SkeletonLayout` is returned as it is, so callers may take either.
    """
    if isinstance(name, SkeletonLayout):
        return name
    try:
        return LAYOUTS[name]
    except KeyError:
        raise UserInputError(f"unknown skeleton layout {name!r}; expected one of {sorted(LAYOUTS)}") from None


def layout_for_joint_count(num_joints: int, where: str = "input") -> SkeletonLayout:
    """The Human3.6M layout with ``num_joints`` joints (16, 17 or 32)."""
    for lay in (H36M16, H36M17, H36M32):
        if lay.num_joints == num_joints:
            return lay
    raise UserInputError(f"{where}: {num_joints} joints matches no known layout (expected 16, 17 or 32)")


def select_joints(array: np.ndarray, source: SkeletonLayout, target: SkeletonLayout) -> np.ndarray:
    """Reorder/subset the joint axis (-2) of ``array`` from ``source`` to ``target``, by name."""
    if source is target:
        return array
    return array[..., target.indices_from(source), :]


PosesT = TypeVar("PosesT")


def root_relative(poses: PosesT, root: int) -> PosesT:
    """``poses`` (N, J, C) minus their joint ``root``, a numpy array or a torch tensor alike."""
    return poses - poses[:, root : root + 1]
