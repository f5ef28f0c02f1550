"""The Spatio-Temporal MLP-Graph lifting network (docs/model.md, "MLP-Graph").

2D keypoints of a T-frame window, (N, T, J, 2) in normalised screen coordinates, go to the
root-relative 3D pose of the centre frame, (N, J, 3). Each joint's trajectory is one token
(frame-major ``[x_0, y_0, x_1, y_1, ...]``), embedded to C channels; L mixer blocks each apply a
joint-mixing MLP and a channel graph block built from two weighted Jacobi graph convolutions
(WJC); a LayerNorm and a per-joint linear head give the 3D.

Defaults follow the release: ``dropout`` 0.2 (its ``--dropout``, the channel graph block) and
``mlp_dropout`` 0.0 (its ``--mlpdropout``, the joint-mixing MLP).

Inference fast path (``MLPGraph.fuse_for_inference``, ``aggregation="diagonal"`` only): with g
the diagonal of A, every WJC and the eval-mode BatchNorm behind it fold into one weight per
joint, evaluated joint-major as one batched matmul (J, N, Cin) x (J, Cin, Cout); see
``MLPGraph._fold``. With ``aggregation="graph"`` A mixes joints, nothing folds per joint, and
the plain path is always used.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as fn

from mlpgraph.layouts import SkeletonLayout, get_layout

AGGREGATIONS = ("diagonal", "graph")
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

    ``fuse_for_inference()`` switches eval-mode forwards to the folded per-joint path (diagonal
    aggregation only; with ``aggregation="graph"`` it is a no-op and the plain path is used).
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
        self._fuse_requested = False
        self._fused: dict[str, Any] | None = None

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
        """(N, T, J, 2) -> (N, J, 3). Uses the folded path in eval mode after ``fuse_for_inference``."""
        self.check_input(x)
        if self._fuse_requested and not self.training and self.aggregation == "diagonal":
            return self._forward_fused(x)
        initial = self.embed(self.tokens(x))
        h = initial
        for block in self.blocks:
            h = block(h, initial)
        return self.head(self.norm(h))

    # ------------------------------------------------------------------ fast path
    @property
    def is_fused(self) -> bool:
        """True when eval-mode forwards take the folded per-joint path."""
        return self._fuse_requested and self.aggregation == "diagonal"

    def fuse_for_inference(self) -> MLPGraph:
        """Fold every WJC + BatchNorm into per-joint weights for eval-mode forwards; returns self.

        The fold is computed once (now if in eval mode, else at the first eval forward) and is
        recomputed automatically when any parameter or buffer changes (optimiser steps,
        ``load_state_dict``, ``.to()``); train mode always uses the plain path and drops the fold.
        Folded weights are constants: parameters get no gradient through the fast path.
        With ``aggregation="graph"`` there is no per-joint fold and this is a no-op.
        """
        self._fuse_requested = True
        if not self.training and self.aggregation == "diagonal":
            self._fused = self._fold()
        return self

    def unfuse(self) -> MLPGraph:
        """Back to the plain path in eval mode; returns self."""
        self._fuse_requested = False
        self._fused = None
        return self

    def train(self, mode: bool = True) -> MLPGraph:
        super().train(mode)
        if mode:
            self._fused = None
        return self

    def _signature(self) -> tuple:
        return tuple((t.data_ptr(), t._version, t.device, t.dtype) for t in (*self.parameters(), *self.buffers()))

    @torch.no_grad()
    def _fold(self) -> dict[str, Any]:
        """Per-joint folded weights (computed in float64, stored in the parameters' dtype).

        With g = diag(A) each WJC is, for joint j with a_j = A_jj and c_j = (1 - alpha) a_j - 1,
            out_j = H_j (W[1] + c_j W[0] diag(M_j)) + alpha M_j * (X_j W_x) + bias,
        and the eval BatchNorm behind it, y = out * s + t with s = gamma / sqrt(var + eps) and
        t = beta - mean * s, scales the columns: K_j = (W[1] + c_j W[0] diag(M_j)) diag(s),
        bias' = bias * s + t. The initial terms depend on X0 only (the first WJC sees X0, the second
        sees X0 W_x1, so its term is X0 (W_x1 W_x2)), and X0 = u E^T + e is affine in the token u:
        - 2T < C ("augmented"): each WJC is one per-joint matmul [H_j | u_j | 1] @ [K_j; G_j; b_j] with
          G_j = E^T W_x diag(alpha M_j s) and b_j = (e W_x) * alpha M_j s + bias';
        - otherwise all blocks' initial terms come from one shared GEMM X0 @ [W_x1 | W_x1 W_x2 | ...],
          scaled per joint by alpha M_j s, and each WJC is baddbmm(initial + bias', H, K).
        """
        dtype = self.embed.weight.dtype
        f64 = torch.float32 if self.embed.weight.device.type == "mps" else torch.float64  # MPS lacks float64
        e_w, e_b = self.embed.weight.to(f64), self.embed.bias.to(f64)
        augmented = self.embed.in_features < self.embed.out_features
        kernels, initial_mats, initial_scale, biases = [], [], [], []
        for block in self.blocks:
            x_map = None
            for wjc, bn in ((block.wjc1, block.bn1), (block.wjc2, block.bn2)):
                w = wjc.weight.to(f64)
                m = wjc.modulation.to(f64)
                a = torch.diagonal(wjc.symmetric_adjacency()).to(f64)
                coef = (1 - wjc.alpha) * a - 1
                s = bn.weight.to(f64) / torch.sqrt(bn.running_var.to(f64) + bn.eps)
                t = bn.bias.to(f64) - bn.running_mean.to(f64) * s
                kernel = (w[1][None] + coef[:, None, None] * w[0][None] * m[:, None, :]) * s
                wx = wjc.initial_weight.to(f64)
                x_map = wx if x_map is None else x_map @ wx
                scale = wjc.alpha * m * s
                bias = wjc.bias.to(f64) * s + t
                if augmented:
                    token_rows = (e_w.T @ x_map)[None] * scale[:, None, :]
                    bias_row = ((e_b @ x_map) * scale + bias)[:, None, :]
                    kernel = torch.cat((kernel, token_rows, bias_row), dim=1)
                kernels.append(kernel.to(dtype).contiguous())
                initial_mats.append(x_map)
                initial_scale.append(scale)
                biases.append(bias)
        mix_in = [
            torch.cat((blk.joint_mlp[0].weight.T, blk.joint_mlp[0].bias[None]), dim=0).contiguous()
            for blk in self.blocks
        ]
        fused: dict[str, Any] = {"signature": self._signature(), "mix_in": mix_in, "kernels": kernels}
        fused["augmented"] = augmented
        if not augmented:
            scale = torch.cat(initial_scale, dim=1)
            offsets = [0]
            for mat in initial_mats:
                offsets.append(offsets[-1] + mat.shape[1])
            fused["initial_matrix"] = torch.cat(initial_mats, dim=1).to(dtype).contiguous()
            fused["initial_scale"] = scale.to(dtype)[:, None, :].contiguous()
            fused["initial_bias"] = torch.cat(biases).expand_as(scale).to(dtype)[:, None, :].contiguous()
            fused["slices"] = [(offsets[i], offsets[i + 1]) for i in range(len(initial_mats))]
        return fused

    def _forward_fused(self, x: Tensor) -> Tensor:
        """Joint-major (J, N, C) evaluation with one batched per-joint matmul per WJC."""
        if self._fused is None or self._fused["signature"] != self._signature():
            self._fused = self._fold()
        fused = self._fused
        n, j = x.shape[0], self.num_joints
        tokens = x.permute(2, 0, 1, 3).reshape(j * n, 2 * self.frames)
        h = torch.addmm(self.embed.bias, tokens, self.embed.weight.T)
        if fused["augmented"]:
            tokens_1 = torch.cat((tokens, tokens.new_ones(j * n, 1)), dim=1).view(j, n, -1)
        else:
            initial = (h @ fused["initial_matrix"]).view(j, n, -1)
            initial = torch.addcmul(fused["initial_bias"], initial, fused["initial_scale"])
        c = h.shape[1]
        h = h.view(j, n, c)
        ones = h.new_ones(1, n * c)
        kernels = fused["kernels"]
        for b, block in enumerate(self.blocks):
            ln, lin_b = block.joint_norm, block.joint_mlp[3]
            # Linear(J -> S) as one bias-free GEMM: a row of ones carries the bias (no broadcast copy).
            rows = torch.cat((fn.layer_norm(h, (c,), ln.weight, ln.bias, ln.eps).view(j, n * c), ones))
            y = fn.gelu(rows.T @ fused["mix_in"][b])
            y = torch.addmm(lin_b.bias[:, None], lin_b.weight, y.T)
            h = h + y.view(j, n, c)
            if fused["augmented"]:
                y = fn.gelu(torch.bmm(torch.cat((h, tokens_1), dim=2), kernels[2 * b]))
                y = fn.gelu(torch.bmm(torch.cat((y, tokens_1), dim=2), kernels[2 * b + 1]))
            else:
                (s1, e1), (s2, e2) = fused["slices"][2 * b], fused["slices"][2 * b + 1]
                y = fn.gelu(torch.baddbmm(initial[..., s1:e1], h, kernels[2 * b]))
                y = fn.gelu(torch.baddbmm(initial[..., s2:e2], y, kernels[2 * b + 1]))
            h = h + y
        out = self.head(fn.layer_norm(h, (c,), self.norm.weight, self.norm.bias, self.norm.eps))
        return out.transpose(0, 1)


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters only (no fixed adjacency buffer, no BatchNorm running statistics)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
