"""MLP-Graph's fast arithmetic: joint-major layout with one weight per joint per WJC (docs/model.md, "MLP-Graph").

With g = diag(A) (``aggregation="diagonal"``, the release's) no message passes between joints, so
each weighted Jacobi convolution is, for joint j with a_j = A_jj and c_j = (1 - alpha) a_j - 1,

    out_j = H_j K_j + alpha M_j * (X_j W_x) + bias,      K_j = W[1] + c_j W[0] diag(M_j),

one batched matmul (J, N, Cin) x (J, Cin, Cout) instead of the release's two shared GEMMs plus
the elementwise combination. The initial terms depend on X0 only (the first WJC of a block sees
X0, the second X0 W_x1, so its map is W_x1 W_x2), and X0 = u E^T + e is affine in the token u:
when 2T < C the initial terms are computed from u directly (a rank-2T map), otherwise from X0.

Two uses of the same algebra:
- :func:`forward_differentiable`: K_j and the initial maps are rebuilt from the parameters on every
  call, with autograd, so training (batch-statistics BatchNorm, dropout) and any forward that needs
  parameter gradients get the release's function and gradients in about half the arithmetic;
- :func:`fold` + :func:`forward_folded`: inference without gradients, the eval-mode BatchNorm
  folded into K_j as well, computed once in float64 and cached by the model until a parameter or
  buffer changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.nn import functional as fn

from mlpgraph.models.cpu_dropout import dropout
from mlpgraph.models.joint_mlp import joint_mlp_rows

if TYPE_CHECKING:
    from mlpgraph.models.stmlpgraph import MixerBlock, MLPGraph, WeightedJacobiConv


def joint_kernel(wjc: WeightedJacobiConv, dtype: torch.dtype | None = None) -> Tensor:
    """K_j = W[1] + c_j W[0] diag(M_j), (J, Cin, Cout), in ``dtype`` (default the weights')."""
    w = wjc.weight if dtype is None else wjc.weight.to(dtype)
    m = wjc.modulation if dtype is None else wjc.modulation.to(dtype)
    a = torch.diagonal(wjc.symmetric_adjacency()).to(w.dtype)
    column_scale = ((1 - wjc.alpha) * a - 1)[:, None] * m  # (J, Cout): c_j M_j
    return torch.addcmul(w[1][None], column_scale[:, None, :], w[0][None])


def _initial_maps(model: MLPGraph) -> list[Tensor]:
    """Per WJC, the map from X0 to its initial features: W_x1, W_x1 W_x2, W_x1' ... (one per block pair)."""
    maps = []
    for block in model.blocks:
        first = block.wjc1.initial_weight
        maps += [first, first @ block.wjc2.initial_weight]
    return maps


def uses_tokens(model: MLPGraph) -> bool:
    """True when the initial terms are computed from the 2T-wide token (2T < C), else from X0."""
    return model.embed.in_features < model.embed.out_features


def _joint_tokens(model: MLPGraph, x: Tensor) -> Tensor:
    """(N, T, J, 2) -> (J * N, 2T), joint-major, each row one joint's trajectory [x0, y0, x1, ...]."""
    n, j = x.shape[0], model.num_joints
    return x.permute(2, 0, 1, 3).reshape(j * n, 2 * model.frames)


def forward_differentiable(model: MLPGraph, x: Tensor) -> Tensor:
    """(N, T, J, 2) -> (N, J, 3) with autograd, in the module's mode (train: batch statistics, dropout)."""
    n, j = x.shape[0], model.num_joints
    tokens = _joint_tokens(model, x)
    initial = torch.addmm(model.embed.bias, tokens, model.embed.weight.T)
    maps = _initial_maps(model)
    if uses_tokens(model):  # X0 map = u (E^T map) + e map: a rank-2T product
        initial_terms = [torch.addmm(model.embed.bias @ m, tokens, model.embed.weight.T @ m) for m in maps]
    else:
        initial_terms = [initial @ m for m in maps]
    c = initial.shape[1]
    h = initial.view(j, n, c)
    for b, block in enumerate(model.blocks):
        h = h + _joint_mlp(block, h)
        y = h
        wjcs = ((block.wjc1, block.bn1, block.drop1), (block.wjc2, block.bn2, block.drop2))
        for (wjc, bn, drop), term in zip(wjcs, initial_terms[2 * b : 2 * b + 2], strict=True):
            scale = (wjc.alpha * wjc.modulation)[:, None, :]
            width = bn.num_features  # explicit: -1 is ambiguous for an empty batch (a DDP rank's tail)
            init = torch.addcmul(wjc.bias, term.view(j, n, width), scale)
            y = torch.baddbmm(init, y, joint_kernel(wjc))
            y = dropout(fn.gelu(bn(y.view(j * n, width))), drop.p, drop.training).view(j, n, width)
        h = h + y
    out = model.head(model.norm(h))
    return out.transpose(0, 1)


def _joint_mlp(block: MixerBlock, h: Tensor) -> Tensor:
    """The joint-mixing MLP on joint-major (J, N, C) features: Linear(J -> S), GELU, Linear(S -> J).

    Without dropout (the release's default) in cache-sized row blocks (:mod:`mlpgraph.models.joint_mlp`).
    """
    j, n, c = h.shape
    lin_in, drop_in, lin_out, drop_out = block.joint_mlp[0], block.joint_mlp[2], block.joint_mlp[3], block.joint_mlp[4]
    z = block.joint_norm(h).view(j, n * c)
    if not block.training or drop_in.p == drop_out.p == 0.0:  # dropout is the identity
        rows = joint_mlp_rows(z.T.contiguous(), lin_in.weight, lin_in.bias, lin_out.weight, lin_out.bias)
        return rows.T.view(j, n, c)
    z = dropout(fn.gelu(torch.addmm(lin_in.bias[:, None], lin_in.weight, z)), drop_in.p, drop_in.training)
    z = dropout(torch.addmm(lin_out.bias[:, None], lin_out.weight, z), drop_out.p, drop_out.training)
    return z.view(j, n, c)


@torch.no_grad()
def fold(model: MLPGraph) -> dict[str, Any]:
    """Per-joint folded weights for :func:`forward_folded` (computed in float64, stored in the weights' dtype).

    The eval BatchNorm behind each WJC, y = out * s + t with s = gamma / sqrt(var + eps) and
    t = beta - mean * s, scales K_j's columns and gives bias' = bias * s + t. The initial terms
    alpha M_j s * (X0 map) either join each WJC's matmul as extra rows [H_j | u_j | 1] @ [K_j; G_j; b_j]
    (2T < C, "augmented") or come from one shared GEMM X0 @ [map_1 | map_2 | ...], scaled per joint.
    """
    dtype = model.embed.weight.dtype
    f64 = torch.float32 if model.embed.weight.device.type == "mps" else torch.float64  # MPS lacks float64
    e_w, e_b = model.embed.weight.to(f64), model.embed.bias.to(f64)
    augmented = uses_tokens(model)
    maps = [m.to(f64) for m in _initial_maps(model)]
    kernels, initial_scale, biases = [], [], []
    wjcs = [pair for blk in model.blocks for pair in ((blk.wjc1, blk.bn1), (blk.wjc2, blk.bn2))]
    for (wjc, bn), x_map in zip(wjcs, maps, strict=True):
        s = bn.weight.to(f64) / torch.sqrt(bn.running_var.to(f64) + bn.eps)
        t = bn.bias.to(f64) - bn.running_mean.to(f64) * s
        kernel = joint_kernel(wjc, f64) * s
        scale = wjc.alpha * wjc.modulation.to(f64) * s
        bias = wjc.bias.to(f64) * s + t
        if augmented:
            token_rows = (e_w.T @ x_map)[None] * scale[:, None, :]
            bias_row = ((e_b @ x_map) * scale + bias)[:, None, :]
            kernel = torch.cat((kernel, token_rows, bias_row), dim=1)
        kernels.append(kernel.to(dtype).contiguous())
        initial_scale.append(scale)
        biases.append(bias)
    fused: dict[str, Any] = {"kernels": kernels}
    if not augmented:
        scale = torch.cat(initial_scale, dim=1)
        offsets = [0]
        for mat in maps:
            offsets.append(offsets[-1] + mat.shape[1])
        fused["initial_matrix"] = torch.cat(maps, dim=1).to(dtype).contiguous()
        fused["initial_scale"] = scale.to(dtype)[:, None, :].contiguous()
        fused["initial_bias"] = torch.cat(biases).expand_as(scale).to(dtype)[:, None, :].contiguous()
        fused["slices"] = [(offsets[i], offsets[i + 1]) for i in range(len(maps))]
    return fused


def forward_folded(model: MLPGraph, fused: dict[str, Any], x: Tensor) -> Tensor:
    """(N, T, J, 2) -> (N, J, 3) from :func:`fold`'s weights: eval mode, no parameter gradients."""
    n, j = x.shape[0], model.num_joints
    tokens = _joint_tokens(model, x)
    h = torch.addmm(model.embed.bias, tokens, model.embed.weight.T)
    augmented = uses_tokens(model)
    if augmented:
        tokens_1 = torch.cat((tokens, tokens.new_ones(j * n, 1)), dim=1).view(j, n, tokens.shape[1] + 1)
    else:
        initial = (h @ fused["initial_matrix"]).view(j, n, fused["initial_matrix"].shape[1])
        initial = torch.addcmul(fused["initial_bias"], initial, fused["initial_scale"])
    c = h.shape[1]
    h = h.view(j, n, c)
    kernels = fused["kernels"]
    for b, block in enumerate(model.blocks):
        h = h + _joint_mlp(block, h)
        if augmented:
            y = fn.gelu(torch.bmm(torch.cat((h, tokens_1), dim=2), kernels[2 * b]))
            y = fn.gelu(torch.bmm(torch.cat((y, tokens_1), dim=2), kernels[2 * b + 1]))
        else:
            (s1, e1), (s2, e2) = fused["slices"][2 * b], fused["slices"][2 * b + 1]
            y = fn.gelu(torch.baddbmm(initial[..., s1:e1], h, kernels[2 * b]))
            y = fn.gelu(torch.baddbmm(initial[..., s2:e2], y, kernels[2 * b + 1]))
        h = h + y
    out = model.head(fn.layer_norm(h, (c,), model.norm.weight, model.norm.bias, model.norm.eps))
    return out.transpose(0, 1)
