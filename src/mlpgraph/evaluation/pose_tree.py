"""A clustering of training poses into nested nodes that bound their distance to any pose (for :mod:`.nearest_pose`).

Three levels: about ``sqrt(M)`` coarse clusters (k-means on a strided sample, then every pose to its
nearest centre), each split by k-means into clusters of about :data:`MID_TARGET` poses, each of those
into leaves of about :data:`LEAF_TARGET` (runs longer than :data:`LEAF_MAX` cut). Every node keeps
its centre ``c`` and per-joint radii ``r_j``: the farthest any member's joint ``j`` lies from
``c_j``, rounded up by :data:`SLACK`. By the triangle inequality per joint, no member ``x`` of a node
is nearer to a pose ``t`` than ``sum_j max(0, |t_j - c_j| - r_j)`` (summed joint distances).
Everything is deterministic (strided initial centres, a fixed number of steps); the clustering only
decides how fast a search is, never what it finds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

EXACT = "donot_use_mm_for_euclid_dist"  # differences, not the matrix-product expansion
SLACK = 1e-5  # relative margin on radii and bounds for float32 rounding (each under 1e-6 relative)
MID_TARGET, LEAF_TARGET = 160, 20  # mean poses per node that the k-means of the lower levels aim at
LEAF_MAX = 32  # leaves longer than this are cut into runs of at most this many poses
COARSE_SIZE = 5000  # about how many poses a coarse cluster holds (at least sqrt(M))
COARSE_SAMPLE = 32  # poses sampled per coarse centre to fit the coarse k-means
COARSE_STEPS, SPLIT_STEPS = 8, 5  # Lloyd iterations
ASSIGN_BLOCK = 16384  # poses per matrix product when assigning poses to centres
GROUP_FLOATS = 2**24  # about how many floats one batch of k-means within groups may hold


@dataclass(frozen=True)
class NodeLevel:
    """One level's nodes: centres (nodes, J, 3), per-joint radii (nodes, J), and children.

    Node ``i``'s children are ``first[i] .. first[i] + count[i] - 1``: nodes of the next level, or
    for the leaves, training poses in leaf order.
    """

    centre: torch.Tensor
    radius: torch.Tensor
    first: torch.Tensor
    count: torch.Tensor


@dataclass(frozen=True)
class PoseTree:
    """The levels of nodes over the training poses, coarse first, and each leaf's members.

    ``members`` (leaves, W, J, 3) holds leaf ``i``'s poses, padded to the largest leaf ``W`` by
    repeating its last pose (a repeat changes no minimum).
    """

    levels: list[NodeLevel]
    members: torch.Tensor

    @property
    def leaves(self) -> NodeLevel:
        return self.levels[-1]


def spread(count: int, picks: int, device: torch.device) -> torch.Tensor:
    """``picks`` indices spread evenly over ``range(count)``, first included (deterministic sampling)."""
    return torch.arange(picks, device=device) * count // picks


def nearest_centres(rows: torch.Tensor, centres: torch.Tensor, count: int = 1) -> torch.Tensor:
    """(N, count) indices of the centres nearest to each row (Euclidean over all coordinates; ties: first)."""
    norms = (centres * centres).sum(dim=1)
    found = []
    for a in range(0, len(rows), ASSIGN_BLOCK):
        dist = torch.addmm(norms, rows[a : a + ASSIGN_BLOCK], centres.T, alpha=-2.0)
        found.append(dist.argmin(dim=1, keepdim=True) if count == 1 else dist.topk(count, largest=False).indices)
    return torch.cat(found)


def grouped_kmeans(points: torch.Tensor, sizes: torch.Tensor, counts: torch.Tensor, steps: int) -> torch.Tensor:
    """(G, N) k-means labels of G groups at once; group ``g``: ``points[g, :sizes[g]]``, ``counts[g]`` centres.

    ``points`` is (G, N, D). Initial centres are members spread over each group; ``steps`` Lloyd
    iterations; padding rows (from ``sizes[g]`` on) are left out of the centres and get labels that
    mean nothing.
    """
    groups, width, dim = points.shape
    most = int(counts.max())
    slot = torch.arange(most, device=points.device)
    used = slot < counts[:, None]
    first = torch.minimum(slot, counts[:, None] - 1) * sizes[:, None] // counts[:, None]
    centres = torch.gather(points, 1, first[..., None].expand(-1, -1, dim))
    member = torch.arange(width, device=points.device) < sizes[:, None]
    offset = torch.arange(groups, device=points.device)[:, None] * most
    for _ in range(steps):
        index = (_grouped_assign(points, centres, used) + offset)[member]
        sums = torch.zeros(groups * most, dim, dtype=points.dtype, device=points.device)
        sums.index_put_((index,), points[member], accumulate=True)
        filled_sizes = torch.bincount(index, minlength=groups * most)
        filled = filled_sizes > 0
        centres = centres.reshape(groups * most, dim)
        centres[filled] = sums[filled] / filled_sizes[filled, None].to(points.dtype)
        centres = centres.view(groups, most, dim)
    return _grouped_assign(points, centres, used)


def _grouped_assign(points: torch.Tensor, centres: torch.Tensor, used: torch.Tensor) -> torch.Tensor:
    """(G, N) the nearest used centre (G, C, D) of each point (G, N, D) of its group."""
    dist = torch.baddbmm((centres * centres).sum(dim=2)[:, None, :], points, centres.transpose(1, 2), alpha=-2.0)
    return dist.masked_fill_(~used[:, None, :], math.inf).argmin(dim=2)


def _coarse_labels(rows: torch.Tensor) -> torch.Tensor:
    """(M,) coarse cluster of each pose, numbered 0.. without gaps."""
    count = math.ceil(len(rows) / max(COARSE_SIZE, math.sqrt(len(rows))))
    sample = rows[spread(len(rows), min(len(rows), COARSE_SAMPLE * count), rows.device)]
    one = torch.tensor([len(sample)], device=rows.device)
    label = grouped_kmeans(sample[None], one, torch.tensor([count], device=rows.device), COARSE_STEPS)[0]
    centres = torch.zeros(count, rows.shape[1], dtype=rows.dtype, device=rows.device)
    centres.index_put_((label,), sample, accumulate=True)
    sizes = torch.bincount(label, minlength=count)
    centres = centres[sizes > 0] / sizes[sizes > 0, None].to(rows.dtype)
    return torch.unique(nearest_centres(rows, centres)[:, 0], return_inverse=True)[1]


def _split_groups(rows: torch.Tensor, parent: torch.Tensor, target: int) -> torch.Tensor:
    """(M,) labels splitting each ``parent`` group by k-means into ``ceil(size / target)`` clusters.

    Numbered 0.. without gaps, a parent's clusters consecutive and in parent order. Groups of similar
    size are clustered together, as many as fit in about :data:`GROUP_FLOATS` floats.
    """
    order = torch.argsort(parent, stable=True)
    sizes = torch.bincount(parent)
    starts = torch.cumsum(sizes, 0) - sizes
    counts = (sizes + target - 1) // target
    by_size = torch.argsort(sizes, stable=True)
    label = torch.empty_like(parent)
    a = 0
    while a < len(by_size):
        width = int(sizes[by_size[min(len(by_size), a + 256) - 1]])
        take = max(1, min(256, GROUP_FLOATS // (width * (rows.shape[1] + width // target + 1))))
        group = by_size[a : a + take]
        width = int(sizes[group].max())
        slot = torch.minimum(torch.arange(width, device=rows.device), sizes[group, None] - 1)
        member = order[starts[group, None] + slot]
        found = grouped_kmeans(rows[member], sizes[group], counts[group], SPLIT_STEPS)
        label[member] = found + group[:, None] * (int(counts.max()) + 1)
        a += len(group)
    return torch.unique(label, return_inverse=True)[1]


def _cut_long_runs(label: torch.Tensor) -> torch.Tensor:
    """Labels renumbered so that no label holds more than :data:`LEAF_MAX` poses; order kept."""
    order = torch.argsort(label, stable=True)
    sizes = torch.bincount(label)
    position = torch.arange(len(label), device=label.device) - (torch.cumsum(sizes, 0) - sizes)[label[order]]
    piece = torch.empty_like(label)
    piece[order] = position // LEAF_MAX
    return torch.unique(label * (int(sizes.max()) // LEAF_MAX + 1) + piece, return_inverse=True)[1]


def _node_level(rows: torch.Tensor, node: torch.Tensor, child: torch.Tensor, num_joints: int) -> NodeLevel:
    """The level of nodes ``node`` (M,) over sorted ``rows``; ``child`` (M,): each row's child, consecutive."""
    count = int(node.max()) + 1
    centre = torch.zeros(count, rows.shape[1], dtype=rows.dtype, device=rows.device)
    centre.index_put_((node,), rows, accumulate=True)
    centre /= torch.bincount(node, minlength=count)[:, None].to(rows.dtype)
    radius = torch.zeros(count, num_joints, dtype=rows.dtype, device=rows.device)
    for a in range(0, len(rows), ASSIGN_BLOCK):
        part = node[a : a + ASSIGN_BLOCK]
        joint = (rows[a : a + ASSIGN_BLOCK] - centre[part]).view(len(part), num_joints, 3).norm(dim=2)
        radius.scatter_reduce_(0, part[:, None].expand(-1, num_joints), joint, "amax")
    first = torch.full_like(child, len(rows))[:count].scatter_reduce_(0, node, child, "amin")
    last = torch.zeros_like(child)[:count].scatter_reduce_(0, node, child, "amax")
    return NodeLevel(centre.view(count, num_joints, 3), radius * (1.0 + SLACK), first, last - first + 1)


def build_pose_tree(train: torch.Tensor) -> PoseTree:
    """The tree of training poses ``train`` (M, J, 3), on their device."""
    num_poses, num_joints = train.shape[0], train.shape[1]
    rows = train.reshape(num_poses, num_joints * 3)
    labels = [_coarse_labels(rows)]
    labels.append(_split_groups(rows, labels[0], MID_TARGET))
    labels.append(_cut_long_runs(_split_groups(rows, labels[1], LEAF_TARGET)))
    order = torch.argsort(labels[-1], stable=True)
    rows, labels = rows[order], [label[order] for label in labels]
    children = [*labels[1:], torch.arange(num_poses, device=train.device)]
    levels = [_node_level(rows, node, child, num_joints) for node, child in zip(labels, children, strict=True)]
    leaves = levels[-1]
    slot = torch.arange(int(leaves.count.max()), device=train.device)
    return PoseTree(levels, train[order[leaves.first[:, None] + torch.minimum(slot, leaves.count[:, None] - 1)]])
