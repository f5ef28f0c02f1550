"""Graph convolution layers of the four graph baselines, and SemGCN's non-local block.

Every layer maps node features X of shape (B, J, Cin) to (B, J, Cout) with a fixed J x J graph
that the caller derives from a :class:`~mlpgraph.layouts.SkeletonLayout`. Formulas follow
docs/baselines.md (sections 1-4 and 6); notation: diag(S) keeps the diagonal of S,
off(S) zeroes it, ⊙ is the element-wise product. Weight tensors of rank > 2 are initialised with
``xavier_uniform_`` on the whole tensor (gain 1.414), as the original code does, so torch's fan
convention for such tensors applies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import nn

from mlpgraph.layouts import SkeletonLayout

MASK_LOGIT = -9e15
"""Logit given to entries outside the mask before the row-softmax (SemGCN's and HGCN's value)."""

XAVIER_GAIN = 1.414


def _as_tensor(matrix: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A float32 CPU copy of a (J, J) matrix, checked to be square.

    The skeleton's structure stays on the CPU even under a ``torch.device("meta")`` context
    (:func:`mlpgraph.checkpoints.build_network` checks shapes on one), where the masks and
    indices derived from it must still be computed.
    """
    out = torch.as_tensor(np.asarray(matrix), dtype=torch.float32, device="cpu").clone()
    if out.ndim != 2 or out.shape[0] != out.shape[1]:
        raise ValueError(f"adjacency must be a square (J, J) matrix, got shape {tuple(out.shape)}")
    return out


def _uniform_bias(size: int, fan: int) -> nn.Parameter:
    """Bias uniform in ±1/sqrt(fan), the originals' initialisation (fan = Cout)."""
    bound = 1.0 / math.sqrt(fan)
    return nn.Parameter(torch.empty(size).uniform_(-bound, bound))


def _xavier_weight(*shape: int) -> nn.Parameter:
    weight = nn.Parameter(torch.empty(*shape))
    nn.init.xavier_uniform_(weight, gain=XAVIER_GAIN)
    return weight


def _decoupled_aggregate(adj: torch.Tensor, h0: torch.Tensor, h1: torch.Tensor) -> torch.Tensor:
    """diag(A)·H0 + off(A)·H1 for A (J, J) and H0, H1 (..., J, C): self term and neighbours apart."""
    eye = torch.eye(adj.shape[-1], dtype=adj.dtype, device=adj.device)
    return torch.diagonal(adj).unsqueeze(-1) * h0 + torch.matmul(adj * (1 - eye), h1)


class SemGraphConv(nn.Module):
    """SemGCN's semantic graph convolution (Zhao et al. 2019; docs/baselines.md §1).

    Â = row-softmax of L, with L_ij = e_ij on the support of ``adj`` (self-loops included) and
    -9e15 elsewhere, one learnable logit e per nonzero entry (row-major order), all 1 at init.
    out_i = Â_ii·(X W0)_i + Σ_{j≠i} Â_ij·(X W1)_j + b. Only the sparsity pattern of ``adj`` is used.
    """

    def __init__(self, in_features: int, out_features: int, adj: np.ndarray | torch.Tensor) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        mask = _as_tensor(adj) > 0
        rows, cols = mask.nonzero(as_tuple=True)
        self.num_nodes = mask.shape[0]
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        self.W = _xavier_weight(2, in_features, out_features)
        self.e = nn.Parameter(torch.ones(1, rows.numel()))
        self.bias = _uniform_bias(out_features, out_features)

    def affinity(self) -> torch.Tensor:
        """The (J, J) row-stochastic Â = softmax_row(L) the layer currently uses."""
        logits = torch.full((self.num_nodes, self.num_nodes), MASK_LOGIT, dtype=self.e.dtype, device=self.e.device)
        logits = logits.index_put((self.rows, self.cols), self.e.view(-1))
        return torch.softmax(logits, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, J, Cin) -> (B, J, Cout)."""
        h = torch.einsum("bjc,kcd->kbjd", x, self.W)
        return _decoupled_aggregate(self.affinity(), h[0], h[1]) + self.bias

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}, nnz={self.e.numel()}"


def walk_support_masks(adj: np.ndarray | torch.Tensor, orders: int = 4) -> torch.Tensor:
    """HGCN's masks m_k = (A^k > 0), k = 0..orders-1, for A = D^-1 A without self-loops (docs/baselines.md §2).

    m_k is the support of walks of length k: m2 covers distances 0 and 2, m3 distances 1 and 3.
    Returns a bool tensor (orders, J, J).
    """
    a = _as_tensor(adj).double()
    power = torch.eye(a.shape[0], dtype=torch.float64, device="cpu")
    masks = []
    for _ in range(orders):
        masks.append(power > 0)
        power = power @ a
    return torch.stack(masks)


class HGraphConv(nn.Module):
    """High-order graph convolution of HGCN (Zou et al. 2020; docs/baselines.md §2).

    For k = 0..3: Â_k = row-softmax of logits e_k on the walk-support mask m_k (-9e15 elsewhere),
    out_k = Â_k·(X W_k). ``aggregate="concat"`` (hidden layers) returns [out_0|out_1|out_2|out_3] + b
    with b of size 4·Cout; ``aggregate="sum"`` (output layer) returns Σ_k out_k + bias_2 (size Cout).
    ``adj`` is the row-normalised adjacency without self-loops; only the masks of its powers are used.
    """

    orders = 4

    def __init__(
        self,
        in_features: int,
        out_features: int,
        adj: np.ndarray | torch.Tensor,
        aggregate: Literal["concat", "sum"] = "concat",
    ) -> None:
        super().__init__()
        if aggregate not in ("concat", "sum"):
            raise ValueError(f"aggregate must be 'concat' or 'sum', got {aggregate!r}")
        self.in_features, self.out_features, self.aggregate = in_features, out_features, aggregate
        masks = walk_support_masks(adj, self.orders)
        self.num_nodes = masks.shape[-1]
        order, rows, cols = masks.nonzero(as_tuple=True)
        self.register_buffer("masks", masks, persistent=False)
        self.register_buffer("index", torch.stack([order, rows, cols]), persistent=False)
        self.W = _xavier_weight(self.orders, in_features, out_features)
        for k in range(self.orders):
            self.register_parameter(f"e_{k}", nn.Parameter(torch.ones(1, int(masks[k].sum()))))
        if aggregate == "concat":
            self.bias = _uniform_bias(self.orders * out_features, out_features)
        else:
            self.bias_2 = _uniform_bias(out_features, out_features)

    def affinities(self) -> torch.Tensor:
        """The (4, J, J) stack of row-stochastic Â_k."""
        e = torch.cat([getattr(self, f"e_{k}").view(-1) for k in range(self.orders)])
        size = (self.orders, self.num_nodes, self.num_nodes)
        logits = torch.full(size, MASK_LOGIT, dtype=e.dtype, device=e.device)
        logits = logits.index_put(tuple(self.index), e)
        return torch.softmax(logits, dim=-1)

    def output_features(self) -> int:
        """Channels of the output: 4·Cout when concatenating, Cout when summing."""
        return self.orders * self.out_features if self.aggregate == "concat" else self.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, J, Cin) -> (B, J, 4·Cout) (concat) or (B, J, Cout) (sum)."""
        h = torch.einsum("bjc,kcd->bkjd", x, self.W)
        out = torch.einsum("kij,bkjd->bikd", self.affinities(), h)
        if self.aggregate == "concat":
            return out.reshape(*out.shape[:2], -1) + self.bias
        return out.sum(dim=2) + self.bias_2

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.output_features()}, aggregate={self.aggregate}"


class DecouplePreAggGraphConv(nn.Module):
    """Weight-unsharing graph convolution, decoupled pre-aggregation variant (Liu et al. 2020; §3).

    Per-node weights W of shape (2, J, Cin, Cout), indexed by the *sending* node:
    h0_j = x_j W0[j], h1_j = x_j W1[j]; out_i = A_ii·h0_i + Σ_{j≠i} A_ij·h1_j + b, with A fixed
    (row-normalised A+I, no learnable affinity).
    """

    def __init__(self, in_features: int, out_features: int, adj: np.ndarray | torch.Tensor) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        adj_t = _as_tensor(adj)
        self.register_buffer("adj", adj_t, persistent=False)
        self.W = _xavier_weight(2, adj_t.shape[0], in_features, out_features)
        self.bias = _uniform_bias(out_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, J, Cin) -> (B, J, Cout)."""
        h = torch.einsum("bjc,kjcd->kbjd", x, self.W)
        return _decoupled_aggregate(self.adj.to(h.dtype), h[0], h[1]) + self.bias

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}, nodes={self.adj.shape[0]}"


class ModulatedGraphConv(nn.Module):
    """Modulated graph convolution (Zou & Tang 2021, GT code; docs/baselines.md §4).

    Ã = (A + Q + (A + Q)ᵀ)/2 with A the fixed base (row-normalised skeleton, diagonal 1) and Q a
    learnable (J, J) affinity over all pairs (init 1e-6); M (J, Cout) modulates each node's
    transformed features (init 1). out = diag(Ã)·(M ⊙ X W0) + off(Ã)·(M ⊙ X W1) + b; no softmax.
    """

    def __init__(self, in_features: int, out_features: int, adj: np.ndarray | torch.Tensor) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        adj_t = _as_tensor(adj)
        num_nodes = adj_t.shape[0]
        self.register_buffer("adj", adj_t, persistent=False)
        self.W = _xavier_weight(2, in_features, out_features)
        self.M = nn.Parameter(torch.ones(num_nodes, out_features))
        self.Q = nn.Parameter(torch.full((num_nodes, num_nodes), 1e-6))
        self.bias = _uniform_bias(out_features, out_features)

    def affinity(self) -> torch.Tensor:
        """The symmetrised (J, J) Ã = ((A + Q) + (A + Q)ᵀ)/2."""
        a = self.adj.to(self.Q.dtype) + self.Q
        return (a + a.T) / 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, J, Cin) -> (B, J, Cout)."""
        h = torch.einsum("bjc,kcd->kbjd", x, self.W) * self.M
        return _decoupled_aggregate(self.affinity(), h[0], h[1]) + self.bias

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}, nodes={self.adj.shape[0]}"


def group_index(layout: SkeletonLayout, groups: Sequence[Sequence[str]]) -> torch.Tensor:
    """(G, S) joint indices of ``groups`` (joint names), shorter groups padded with their first joint.

    Every joint of ``layout`` must be in exactly one group. Padding by repetition leaves a max-pool
    over the group unchanged, so groups of unequal size pool correctly.
    """
    indices = [[layout.index(name) for name in group] for group in groups]
    flat = sorted(i for group in indices for i in group)
    if flat != list(range(layout.num_joints)) or any(not g for g in indices):
        raise ValueError(f"joint groups must partition the {layout.num_joints} joints of {layout.name} exactly once")
    size = max(len(g) for g in indices)
    return torch.tensor([g + [g[0]] * (size - len(g)) for g in indices], dtype=torch.long, device="cpu")


class GraphNonLocal(nn.Module):
    """SemGCN's non-local block over joints with max-pooled joint groups (docs/baselines.md §1).

    Concatenation-form 1-D non-local block with C/2 inter-channels: θ, φ, g are per-joint linear
    maps (1x1 convolutions); φ and g are max-pooled over each joint group (SemGCN: 8 pairs, pool 2).
    f_ik = ReLU(w_θᵀθ(x_i) + w_φᵀφ̄_k) (= ReLU(wᵀ[θ_i; φ̄_k]), no bias), y_i = Σ_k f_ik ḡ_k / G,
    out = x + BN(W_z y). The BN's weight and bias start at 0, so the block starts as an identity.
    Permuting joints into group order and back, as SemGCN does, changes nothing except which
    joints are pooled together, so the groups are gathered directly.
    """

    def __init__(self, channels: int, groups: torch.Tensor) -> None:
        super().__init__()
        self.channels, self.inter_channels = channels, channels // 2
        if self.inter_channels == 0:
            raise ValueError(f"GraphNonLocal needs at least 2 channels, got {channels}")
        self.register_buffer("groups", torch.as_tensor(groups, dtype=torch.long), persistent=False)
        self.theta = nn.Linear(channels, self.inter_channels)
        self.phi = nn.Linear(channels, self.inter_channels)
        self.g = nn.Linear(channels, self.inter_channels)
        self.concat_project = nn.Linear(2 * self.inter_channels, 1, bias=False)
        self.W_z = nn.Linear(self.inter_channels, channels)
        self.bn = nn.BatchNorm1d(channels)
        for layer in (self.theta, self.phi, self.g, self.W_z):
            nn.init.kaiming_normal_(layer.weight)
            nn.init.zeros_(layer.bias)
        nn.init.kaiming_normal_(self.concat_project.weight)
        nn.init.zeros_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)

    def _pool(self, h: torch.Tensor) -> torch.Tensor:
        """(B, J, C) -> (B, G, C): max over each joint group."""
        return h[:, self.groups].amax(dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, J, C) -> (B, J, C)."""
        theta = self.theta(x)
        phi = self._pool(self.phi(x))
        g = self._pool(self.g(x))
        w_theta, w_phi = self.concat_project.weight.view(2, self.inter_channels)
        f = torch.relu((theta @ w_theta).unsqueeze(2) + (phi @ w_phi).unsqueeze(1))
        y = torch.matmul(f / f.shape[-1], g)
        z = self.bn(self.W_z(y).transpose(1, 2)).transpose(1, 2)
        return x + z
