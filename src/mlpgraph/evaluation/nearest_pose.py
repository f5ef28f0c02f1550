"""Each test pose's distance to its nearest training pose (mean per-joint distance, mm): exact, by bound and refine.

Every distance reported comes from one float32 arithmetic, :func:`pose_distances`, so the searches
here equal :func:`nearest_distances_brute_force` bit for bit. They bound before they measure, with
the training poses clustered in a :class:`~mlpgraph.evaluation.pose_tree.PoseTree` (coarse
clusters, mid clusters, leaves; each node's per-joint radii give a lower bound for all its members):

1. An upper bound per test pose: the exact distances to the members of a few leaves reached by
   descending from its nearest coarse clusters through the children with the nearest centres.
2. The refinement: per test pose, the coarse clusters in increasing order of their lower bound. A
   cluster whose bound is not below the pose's best distance so far ends the pose's search; in one
   below it, the mid clusters and then the leaves whose bounds are below the best are opened, and
   the members of the leaves reached are measured exactly.

:func:`hardest_poses` refines only what the top ``keep`` needs: test poses in decreasing order of
their upper bound, and once ``keep`` exact distances are known, the ``keep``-th largest of them is a
floor: a pose whose upper bound falls below it cannot be among the hardest and is dropped.
Poses are (N, J, 3) float32 mm, on any device; the work is vectorised over blocks of test poses.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from dataclasses import dataclass, field

import torch

from mlpgraph.evaluation.pose_tree import EXACT, SLACK, NodeLevel, PoseTree, build_pose_tree, nearest_centres
from mlpgraph.progress import progress

log = logging.getLogger(__name__)

NEAR = (2, 3, 3)  # the upper bound's descent: nodes kept per test pose on each level, coarse first
BOUND_BLOCK, REFINE_BLOCK = 8192, 4096  # test poses per block of the two steps
TAIL_BLOCK = 1024  # :func:`hardest_poses` once ``keep`` are known: small blocks, so that the floor rises soon
MEASURE_FLOATS = 2**22  # about how many floats one batch of exact distances gathers


@dataclass
class SearchWork:
    """What a search did: exact pair distances and node bounds computed, test poses refined, seconds per step."""

    exact_pairs: int = 0
    bounds: int = 0
    refined: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def timed(self, step: str, began: float) -> None:
        """Add the time since ``began`` (``time.perf_counter()``) to ``step``."""
        self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - began


def pose_distances(test: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    """(n, m) mean per-joint distances of poses ``test`` (n, J, 3) and ``train`` (m, J, 3).

    Per joint ``torch.cdist`` on differences (a pair's value depends on that pair only, in any
    batch), then the joints summed in order and divided by J: a pair gets the same float32 value
    in any block, here or in the searches.
    """
    per_joint = torch.cdist(test.transpose(0, 1), train.transpose(0, 1), compute_mode=EXACT)
    return _joint_mean(per_joint.permute(1, 0, 2))


def _joint_mean(per_joint: torch.Tensor) -> torch.Tensor:
    """(P, ...) the mean over axis 1 of (P, J, ...), summed in order (``Tensor.mean``'s order depends on the shape)."""
    total = per_joint[:, 0].clone()
    for joint in range(1, per_joint.shape[1]):
        total += per_joint[:, joint]
    return total / per_joint.shape[1]


def nearest_distances_brute_force(
    test: torch.Tensor, train: torch.Tensor, chunk: int = 8192, memory_mb: int = 256
) -> torch.Tensor:
    """The reference: every test pose (N, J, 3) against every training pose (M, J, 3), mm.

    Blocks of (test chunk, ``chunk`` training poses) distances, the test chunk sized so that one
    block stays within about ``memory_mb``.
    """
    num_test, num_joints, num_train = test.shape[0], test.shape[1], train.shape[0]
    chunk = min(chunk, num_train)
    test_chunk = max(1, min(num_test, memory_mb * 2**20 // (2 * 4 * num_joints * chunk)))
    nearest = torch.empty(num_test, dtype=torch.float32, device=test.device)
    with torch.inference_mode():
        for a in range(0, num_test, test_chunk):
            block = test[a : a + test_chunk]
            best = torch.full((len(block),), math.inf, device=test.device)
            for b in range(0, num_train, chunk):
                best = torch.minimum(best, pose_distances(block, train[b : b + chunk]).amin(dim=1))
            nearest[a : a + len(block)] = best
    return nearest


def _pair_joint_distances(queries: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(P, J, W) joint distances of poses ``queries`` (P, J, 3) to ``points`` (P, J, W, 3)."""
    pairs, num_joints, width = points.shape[0], points.shape[1], points.shape[2]
    dist = torch.cdist(
        queries.reshape(pairs * num_joints, 1, 3), points.reshape(pairs * num_joints, width, 3), compute_mode=EXACT
    )
    return dist.view(pairs, num_joints, width)


def _bounds(joint: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Lower bounds on mean joint distances from joint distances to node centres and radii (..., J)."""
    gap = (joint * (1.0 - SLACK) - radius).clamp_min_(0.0)
    return gap.sum(dim=-1) * ((1.0 - SLACK) / joint.shape[-1])


def _children(level: NodeLevel, pairs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat (test, child) pairs: every child of each (test, node of ``level``) pair's node."""
    tests, node = pairs
    counts = level.count[node]
    ends = torch.cumsum(counts, 0)
    offset = torch.arange(int(counts.sum()), device=counts.device) - torch.repeat_interleave(ends - counts, counts)
    return torch.repeat_interleave(tests, counts), torch.repeat_interleave(level.first[node], counts) + offset


def _centre_distances(test: torch.Tensor, pairs: tuple[torch.Tensor, torch.Tensor], level: NodeLevel) -> torch.Tensor:
    """(P, J) joint distances from each pair's test pose to its node's centre (a node of ``level``)."""
    pair_test, node = pairs
    return _pair_joint_distances(test[pair_test], level.centre[node, :, None])[..., 0]


def _measure(
    tree: PoseTree, test: torch.Tensor, pairs: tuple[torch.Tensor, torch.Tensor], best: torch.Tensor, work: SearchWork
) -> None:
    """Lower ``best`` (per test pose) to the exact distances to the members of each (test, leaf) pair's leaf."""
    pair_test, leaf = pairs
    step = max(1, MEASURE_FLOATS // tree.members[0].numel())
    for a in range(0, len(leaf), step):
        members = tree.members[leaf[a : a + step]].transpose(1, 2)  # (P, J, W, 3)
        per_joint = _pair_joint_distances(test[pair_test[a : a + step]], members)
        best.scatter_reduce_(0, pair_test[a : a + step], _joint_mean(per_joint).amin(dim=1), "amin")
    work.exact_pairs += len(leaf) * tree.members.shape[1]


def _upper_bounds(tree: PoseTree, test: torch.Tensor, work: SearchWork) -> torch.Tensor:
    """(B,) exact distances from test poses (B, J, 3) to the nearest member of a few leaves near each.

    A descent: each pose's ``NEAR[0]`` nearest coarse clusters (by one matrix product over all
    coordinates), then on each level the ``NEAR[level]`` children of those with the nearest centres
    (summed joint distances), and the members of the leaves reached.
    """
    num_test = len(test)
    coarse = tree.levels[0].centre
    node = nearest_centres(test.reshape(num_test, -1), coarse.reshape(len(coarse), -1), min(NEAR[0], len(coarse)))
    pairs = (torch.arange(num_test, device=test.device).repeat_interleave(node.shape[1]), node.reshape(-1))
    for parent, level, keep in zip(tree.levels[:-1], tree.levels[1:], NEAR[1:], strict=True):
        pair_test, node = pairs = _children(parent, pairs)
        order = torch.argsort(_centre_distances(test, pairs, level).sum(dim=1), stable=True)
        order = order[torch.argsort(pair_test[order], stable=True)]  # by test pose, nearest centre first
        sizes = torch.bincount(pair_test, minlength=num_test)
        rank = torch.arange(len(order), device=test.device) - (torch.cumsum(sizes, 0) - sizes)[pair_test[order]]
        pairs = (pair_test[order[rank < keep]], node[order[rank < keep]])
        work.bounds += len(node)
    best = torch.full((num_test,), math.inf, device=test.device)
    _measure(tree, test, pairs, best, work)
    return best


def _coarse_bounds(coarse: NodeLevel, test: torch.Tensor) -> torch.Tensor:
    """(B, K) lower bounds from each test pose (B, J, 3) to the members of each coarse cluster."""
    centres = coarse.centre.transpose(0, 1)
    bounds = []
    for a in range(0, len(test), BOUND_BLOCK // 4):
        joint = torch.cdist(test[a : a + BOUND_BLOCK // 4].transpose(0, 1), centres, compute_mode=EXACT)
        bounds.append(_bounds(joint.permute(1, 2, 0), coarse.radius))
    return torch.cat(bounds)


def _refine(tree: PoseTree, test: torch.Tensor, best: torch.Tensor, floor: float, work: SearchWork) -> None:
    """Lower ``best`` (B,) to the exact nearest distances of test poses (B, J, 3) unless it drops below ``floor``.

    A pose whose best drops below ``floor`` stops there, with that upper bound.
    """
    bounds, order = _coarse_bounds(tree.levels[0], test).sort(dim=1)
    active = torch.arange(len(test), device=test.device)
    work.bounds += bounds.numel()
    work.refined += len(test)
    for rank in range(bounds.shape[1]):
        active = active[(bounds[active, rank] < best[active]) & (best[active] >= floor)]
        if len(active) == 0:
            break
        pairs = (active, order[active, rank])
        for parent, level in zip(tree.levels[:-1], tree.levels[1:], strict=True):
            pair_test, node = pairs = _children(parent, pairs)
            near = _bounds(_centre_distances(test, pairs, level), level.radius[node]) < best[pair_test]
            pairs = (pair_test[near], node[near])
            work.bounds += len(node)
        _measure(tree, test, pairs, best, work)


def _tree_and_upper_bounds(test: torch.Tensor, train: torch.Tensor, work: SearchWork) -> tuple[PoseTree, torch.Tensor]:
    """The tree of ``train`` and every test pose's upper bound."""
    began = time.perf_counter()
    tree = build_pose_tree(train)
    work.timed("cluster", began)
    began = time.perf_counter()
    upper = torch.cat([_upper_bounds(tree, test[a : a + BOUND_BLOCK], work) for a in range(0, len(test), BOUND_BLOCK)])
    work.timed("upper_bounds", began)
    return tree, upper


def _log_work(num_test: int, num_train: int, work: SearchWork) -> None:
    log.info(
        "nearest poses: %d test x %d training poses: %d exact pair distances (%.3g%% of brute force), "
        "%d node bounds, %d test poses refined; seconds %s",
        num_test, num_train, work.exact_pairs, 100.0 * work.exact_pairs / max(1, num_test * num_train),
        work.bounds, work.refined, {step: round(seconds, 2) for step, seconds in work.seconds.items()},
    )  # fmt: skip


def nearest_distances(test: torch.Tensor, train: torch.Tensor, work: SearchWork | None = None) -> torch.Tensor:
    """Each test pose's (N, J, 3) smallest distance to any training pose (M, J, 3), mm.

    Equal, bit for bit, to :func:`nearest_distances_brute_force`; ``work`` (if given) receives the counts.
    """
    work = SearchWork() if work is None else work
    with torch.inference_mode():
        tree, best = _tree_and_upper_bounds(test, train, work)
        began = time.perf_counter()
        starts = range(0, len(test), REFINE_BLOCK)
        for a in progress(starts, desc="nearest poses", total=len(starts), leave=False):
            _refine(tree, test[a : a + REFINE_BLOCK], best[a : a + REFINE_BLOCK], -math.inf, work)
        work.timed("refine", began)
    _log_work(len(test), len(train), work)
    return best


def hardest_poses(
    test: torch.Tensor, train: torch.Tensor, keep: int, work: SearchWork | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``keep`` test poses (N, J, 3) farthest from any training pose (M, J, 3): (indices, distances in mm).

    Hardest first, ties to the lower index: equal, bit for bit, to a stable sort of
    :func:`nearest_distances_brute_force` by decreasing distance, cut at ``keep``.
    """
    if keep < 1:
        raise ValueError(f"hardest_poses: keep must be at least 1, got {keep}")
    work = SearchWork() if work is None else work
    with torch.inference_mode():
        tree, upper = _tree_and_upper_bounds(test, train, work)
        began = time.perf_counter()
        candidates = torch.argsort(-upper, stable=True)
        floor, found, distances = -math.inf, [], []
        first = min(keep, len(test))  # the top ``keep`` upper bounds are all refined; then the floor
        edges = [*range(0, first, REFINE_BLOCK), *range(first, len(test), TAIL_BLOCK), len(test)]
        for a, b in progress(itertools.pairwise(edges), desc="hard poses", total=len(edges) - 1, leave=False):
            block = candidates[a:b]
            block = block[upper[block] >= floor]
            if len(block) == 0:
                break
            best = upper[block]
            _refine(tree, test[block], best, floor, work)
            exact = best >= floor
            found.append(block[exact])
            distances.append(best[exact])
            known = torch.cat(distances)
            if len(known) >= keep:
                floor = float(known.topk(keep).values[-1])
        found, known = torch.cat(found), torch.cat(distances)
        by_index = torch.argsort(found)
        hardest = by_index[torch.argsort(-known[by_index], stable=True)[:keep]]
        work.timed("refine", began)
    _log_work(len(test), len(train), work)
    return found[hardest], known[hardest]
