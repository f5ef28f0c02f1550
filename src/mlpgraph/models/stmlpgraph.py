"""The Spatio-Temporal MLP-Graph lifting network (docs/model.md, "MLP-Graph").

2D keypoints of a T-frame window, (N, T, J, 2) in normalised screen coordinates, go to the
root-relative 3D pose of the centre frame, (N, J, 3). Each joint's trajectory is one token
(frame-major ``[x_0, y_0, x_1, y_1, ...]``), embedded to C channels; L mixer blocks each apply a
joint-mixing MLP and a channel graph block built from two weighted Jacobi graph convolutions
(WJC); a LayerNorm and a per-joint linear head give the 3D.

Defaults follow the release: ``dropout`` 0.2 (its ``--dropout``, the channel graph block) and
``mlp_dropout`` 0.0 (its ``--mlpdropout``, the joint-mixing MLP).

The arithmetic is the fast one by default (``aggregation="diagonal"``, the release's): with g the
diagonal of A every WJC is one weight per joint, evaluated joint-major as one batched matmul
(:mod:`mlpgraph.models.joint_major`); training and forwards with autograd rebuild those weights
from the parameters each call, inference without autograd also folds the eval-mode BatchNorm in
and caches them. ``use_arithmetic("release")`` runs the release's ops instead (the plain path,
``forward_release``); ``aggregation="graph"`` always does, since A mixes joints there.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as fn

from mlpgraph.layouts import SkeletonLayout, get_layout
from mlpgraph.models import joint_major

AGGREGATIONS = ("diagonal", "graph")
ARITHMETICS = ("fast", "release")
RELEASE, JOINT_MAJOR, FOLDED = "release", "joint_major", "folded"
# Below this batch size an eval forward of a model whose window is wider than its channels (the
# 243-frame one) reads more per-joint weight bytes than it saves arithmetic: it takes the release's ops.
FOLD_MIN_BATCH = 8
WJC_ALPHA = 0.1
_XAVIER_GAIN = 1.414


class WeightedJacobiConv(nn.Module):
    """Weighted Jacobi graph convolution (WJC), as released.

    With H (N, J, Cin) the features and X (N, J, Cx) the initial features::

        h1 = H W[0]    h2 = H W[1]    x1 = X W_x
        A  = ((Â + Q) + (Â + Q)^T) / 2
        out = h2 - M*h1 + (1 - alpha) g(A, M*h1) + alpha M*x1 + bias,   returns (out, x1)

    ``aggregation="diagonal"``: g multiplies joint j by A_jj (the release's
    ``einsum('njc,jj->njc')``; Â has a zero diagonal, so this is diag(Q) and no message passes
    between joints). ``aggregation="graph"``: g = A @ (M*h1), a real graph convolution.
    Â is the layout's symmetric normalised adjacency without self-loops (a fixed, non-persistent
    buffer); Q (``adjacency_offset``) is learnable and starts at 1e-6.
    """

    def __init__(
        self, in_dim: int, out_dim: int, initial_dim: int, adjacency: Tensor, aggregation: str = "diagonal"
    ) -> None:
        super().__init__()
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        num_joints = adjacency.shape[0]
        self.in_dim, self.out_dim, self.initial_dim = in_dim, out_dim, initial_dim
        self.aggregation = aggregation
        self.alpha = WJC_ALPHA
        self.weight = nn.Parameter(torch.empty(2, in_dim, out_dim))
        self.initial_weight = nn.Parameter(torch.empty(initial_dim, out_dim))
        self.modulation = nn.Parameter(torch.empty(num_joints, out_dim))
        self.adjacency_offset = nn.Parameter(torch.empty(num_joints, num_joints))
        self.bias = nn.Parameter(torch.empty(out_dim))
        self.register_buffer("adjacency", adjacency.detach().clone().float(), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Release initialisation: Xavier-uniform (gain 1.414) on the release's 3D shapes
        (2, Cin, Cout), (1, Cx, Cout), (1, J, Cout); Q = 1e-6; bias uniform(+-1/sqrt(Cout))."""
        with torch.no_grad():
            nn.init.xavier_uniform_(self.weight, gain=_XAVIER_GAIN)
            nn.init.xavier_uniform_(self.initial_weight.unsqueeze(0), gain=_XAVIER_GAIN)
            nn.init.xavier_uniform_(self.modulation.unsqueeze(0), gain=_XAVIER_GAIN)
            self.adjacency_offset.fill_(1e-6)
            bound = 1.0 / math.sqrt(self.out_dim)
            self.bias.uniform_(-bound, bound)

    def symmetric_adjacency(self) -> Tensor:
        """A = ((Â + Q) + (Â + Q)^T) / 2, (J, J)."""
        adj = self.adjacency + self.adjacency_offset
        return (adj + adj.T) / 2

    def forward(self, h: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """(out (N, J, Cout), x1 = X W_x (N, J, Cout)); x1 is the next WJC's initial input."""
        h1 = h @ self.weight[0]
        h2 = h @ self.weight[1]
        x1 = x @ self.initial_weight
        mh1 = self.modulation * h1
        adj = self.symmetric_adjacency()
        if self.aggregation == "diagonal":
            agg = mh1 * torch.diagonal(adj)[:, None]
        else:
            agg = torch.einsum("ij,njc->nic", adj, mh1)
        out = h2 - mh1 + (1 - self.alpha) * agg + self.alpha * self.modulation * x1 + self.bias
        return out, x1

    def extra_repr(self) -> str:
        return f"{self.in_dim} -> {self.out_dim}, initial {self.initial_dim}, aggregation={self.aggregation}"


class MixerBlock(nn.Module):
    """H <- H + JointMLP(LN(H)); H <- H + GraphBlock(H, X0) (docs/model.md, "MLP-Graph", step 2)."""

    def __init__(
        self,
        adjacency: Tensor,
        hid_dim: int,
        spatial_hid_dim: int,
        channel_hid_dim: int,
        dropout: float,
        mlp_dropout: float,
        aggregation: str,
    ) -> None:
        super().__init__()
        num_joints = adjacency.shape[0]
        self.joint_norm = nn.LayerNorm(hid_dim)
        self.joint_mlp = nn.Sequential(
            nn.Linear(num_joints, spatial_hid_dim),
            nn.GELU(),
            nn.Dropout(mlp_dropout),
            nn.Linear(spatial_hid_dim, num_joints),
            nn.Dropout(mlp_dropout),
        )
        self.wjc1 = WeightedJacobiConv(hid_dim, channel_hid_dim, hid_dim, adjacency, aggregation)
        self.bn1 = nn.BatchNorm1d(channel_hid_dim)
        self.wjc2 = WeightedJacobiConv(channel_hid_dim, hid_dim, channel_hid_dim, adjacency, aggregation)
        self.bn2 = nn.BatchNorm1d(hid_dim)
        self.drop1 = nn.Dropout(dropout)
        self.drop2 = nn.Dropout(dropout)

    @staticmethod
    def _batch_norm(bn: nn.BatchNorm1d, h: Tensor) -> Tensor:
        return bn(h.transpose(1, 2)).transpose(1, 2)

    def forward(self, h: Tensor, initial: Tensor) -> Tensor:
        h = h + self.joint_mlp(self.joint_norm(h).transpose(1, 2)).transpose(1, 2)
        y, x1 = self.wjc1(h, initial)
        y = self.drop1(fn.gelu(self._batch_norm(self.bn1, y)))
        y, _ = self.wjc2(y, x1)
        y = self.drop2(fn.gelu(self._batch_norm(self.bn2, y)))
        return h + y


class MLPGraph(nn.Module):
    """Spatio-Temporal MLP-Graph: (N, T, J, 2) normalised 2D -> (N, J, 3) root-relative 3D.

    ``frames`` T = 2*pad + 1; C = ``hid_dim``, S = ``spatial_hid_dim`` (joint-MLP width),
    D = ``channel_hid_dim`` (WJC width), L = ``num_layers``. The release's joint LayerNorm has width
    S and so needs C == S; ours has width C, which equals the release wherever the release runs.
    ``self.config`` holds the constructor arguments: ``MLPGraph(**model.config)`` rebuilds it.

    :meth:`path_for` says which arithmetic a forward takes; the function is the same on every path.
    """

    def __init__(
        self,
        layout: str | SkeletonLayout = "h36m16",
        frames: int = 1,
        hid_dim: int = 128,
        spatial_hid_dim: int = 128,
        channel_hid_dim: int = 256,
        num_layers: int = 3,
        dropout: float = 0.2,
        mlp_dropout: float = 0.0,
        aggregation: str = "diagonal",
    ) -> None:
        super().__init__()
        lay = get_layout(layout)
        if not isinstance(frames, int) or frames < 1 or frames % 2 == 0:
            raise ValueError(f"frames must be a positive odd integer (2*pad + 1), got {frames!r}")
        for name, value in (
            ("hid_dim", hid_dim),
            ("spatial_hid_dim", spatial_hid_dim),
            ("channel_hid_dim", channel_hid_dim),
            ("num_layers", num_layers),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name, p in (("dropout", dropout), ("mlp_dropout", mlp_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p!r}")
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        self.layout = lay
        self.num_joints = lay.num_joints
        self.frames = frames
        self.aggregation = aggregation
        self.config: dict[str, Any] = {
            "layout": lay.name,
            "frames": frames,
            "hid_dim": hid_dim,
            "spatial_hid_dim": spatial_hid_dim,
            "channel_hid_dim": channel_hid_dim,
            "num_layers": num_layers,
            "dropout": float(dropout),
            "mlp_dropout": float(mlp_dropout),
            "aggregation": aggregation,
        }
        adjacency = torch.from_numpy(lay.normalised_adjacency(self_loops=False))
        self.embed = nn.Linear(2 * frames, hid_dim)
        self.blocks = nn.ModuleList(
            MixerBlock(adjacency, hid_dim, spatial_hid_dim, channel_hid_dim, dropout, mlp_dropout, aggregation)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(hid_dim)
        self.head = nn.Linear(hid_dim, 3)
        self.arithmetic = "fast"
        self._folded: tuple[tuple, dict[str, Any]] | None = None

    # ------------------------------------------------------------------ plain path
    def check_input(self, x: Tensor) -> None:
        """Raise ValueError unless ``x`` is (N, T, J, 2) for this model's T and layout."""
        if x.dim() != 4 or x.shape[-1] != 2:
            raise ValueError(
                f"MLPGraph expects 2D keypoints of shape (N, T={self.frames}, J={self.num_joints}, 2), "
                f"got {tuple(x.shape)}"
            )
        if x.shape[2] != self.num_joints:
            raise ValueError(
                f"MLPGraph: input has {x.shape[2]} joints but layout {self.layout.name} has {self.num_joints} "
                f"(input shape {tuple(x.shape)})"
            )
        if x.shape[1] != self.frames:
            raise ValueError(
                f"MLPGraph: input window has {x.shape[1]} frames but the model was built for frames={self.frames} "
                f"(input shape {tuple(x.shape)})"
            )

    def tokens(self, x: Tensor) -> Tensor:
        """(N, T, J, 2) -> (N, J, 2T), each joint's trajectory frame-major [x0, y0, x1, y1, ...]."""
        n = x.shape[0]
        return x.permute(0, 2, 1, 3).reshape(n, self.num_joints, 2 * self.frames)

    def forward(self, x: Tensor) -> Tensor:
        """(N, T, J, 2) -> (N, J, 3), by :attr:`path_for` this call (the same function either way)."""
        self.check_input(x)
        path = self.path_for(x.shape[0])
        if path == FOLDED:
            signature = self._signature()
            if self._folded is None or self._folded[0] != signature:
                self._folded = (signature, joint_major.fold(self))
            return joint_major.forward_folded(self, self._folded[1], x)
        if path == JOINT_MAJOR:
            return joint_major.forward_differentiable(self, x)
        return self.forward_release(x)

    def forward_release(self, x: Tensor) -> Tensor:
        """The release's arithmetic, op for op: two GEMMs per WJC on (N, J, C) features."""
        initial = self.embed(self.tokens(x))
        h = initial
        for block in self.blocks:
            h = block(h, initial)
        return self.head(self.norm(h))

    # ------------------------------------------------------------------ arithmetic
    def use_arithmetic(self, arithmetic: str) -> MLPGraph:
        """``"fast"`` (default: :mod:`mlpgraph.models.joint_major`) or ``"release"`` (the plain path); returns self."""
        if arithmetic not in ARITHMETICS:
            raise ValueError(f"arithmetic must be one of {ARITHMETICS}, got {arithmetic!r}")
        self.arithmetic = arithmetic
        self._folded = None
        return self

    def path_for(self, batch_size: int) -> str:
        """Which arithmetic a forward of ``batch_size`` windows takes now.

        ``"folded"`` in eval mode without autograd (inference: eval BatchNorm folded into one weight
        per joint); ``"joint_major"`` when training or when parameter gradients may be needed;
        ``"release"`` for ``arithmetic="release"``, for ``aggregation="graph"`` (A mixes joints and
        nothing folds per joint) and for inference batches under :data:`FOLD_MIN_BATCH` windows of
        more than 2C values, where reading J per-joint weights costs more than the shared
        products it saves (the 243-frame model at batch 1: 8 ms against 46 ms).
        """
        if self.arithmetic == "release" or self.aggregation != "diagonal":
            return RELEASE
        if self.training or torch.is_grad_enabled():
            return JOINT_MAJOR
        if batch_size < FOLD_MIN_BATCH and not joint_major.uses_tokens(self):
            return RELEASE
        return FOLDED

    def train(self, mode: bool = True) -> MLPGraph:
        super().train(mode)
        if mode:
            self._folded = None
        return self

    def _signature(self) -> tuple:
        return tuple((t.data_ptr(), t._version, t.device, t.dtype) for t in (*self.parameters(), *self.buffers()))


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters only (no fixed adjacency buffer, no BatchNorm running statistics)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
