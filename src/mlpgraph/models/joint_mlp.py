"""MLP-Graph's joint-mixing MLP, Linear(J -> S), GELU, Linear(S -> J), computed in cache-sized row blocks.

For every (sample, channel) pair the MLP widens J joint values to S hidden ones and back, so its
hidden tensor has N * C * S values: 38 M floats (150 MB) per block for the 243-frame model at batch
256, 24 times the graph convolutions' features. Written out, read back by the GELU and by the second
product, and again in the backward pass, it makes the MLP bound by memory traffic. Here the rows
(one per sample and channel, J values each) go through both products and the GELU a block of
:func:`rows_per_block` rows at a time, so the hidden block stays in the CPU's cache; the backward
pass recomputes each block's hidden values from the J inputs (one more product with K = J)
instead of storing them. Same function and gradients as the plain layers (dropout 0 only: the
release's default ``mlp_dropout``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as fn

# Target size of one block's hidden values (floats): about half an L2 cache of a recent CPU.
HIDDEN_BLOCK_FLOATS = 1 << 17


def rows_per_block(hidden: int) -> int:
    """Rows per block so that a block's hidden values (rows x ``hidden``) stay near :data:`HIDDEN_BLOCK_FLOATS`."""
    return max(64, HIDDEN_BLOCK_FLOATS // hidden)


def joint_mlp_rows(x: Tensor, w_in: Tensor, b_in: Tensor, w_out: Tensor, b_out: Tensor) -> Tensor:
    """(R, J) rows -> (R, J): ``gelu(x @ w_in.T + b_in) @ w_out.T + b_out``, block by block, with autograd.

    Under autocast every operand is cast to the autocast dtype first (as ``nn.Linear`` would be).
    """
    device_type = x.device.type
    if torch.is_autocast_enabled(device_type):
        dtype = torch.get_autocast_dtype(device_type)
        x, w_in, b_in, w_out, b_out = (t.to(dtype) for t in (x, w_in, b_in, w_out, b_out))
    with torch.autocast(device_type, enabled=False):
        if torch.is_grad_enabled() and any(t.requires_grad for t in (x, w_in, b_in, w_out, b_out)):
            return _BlockedJointMLP.apply(x, w_in, b_in, w_out, b_out)
        return _forward_blocks(x, w_in, b_in, w_out, b_out)


def _forward_blocks(x: Tensor, w_in: Tensor, b_in: Tensor, w_out: Tensor, b_out: Tensor) -> Tensor:
    out = torch.empty(x.shape[0], w_out.shape[0], dtype=x.dtype, device=x.device)
    if x.device.type != "cpu":  # caches are not the limit on a GPU: one product each
        return torch.addmm(b_out, fn.gelu(torch.addmm(b_in, x, w_in.T)), w_out.T, out=out)
    step = rows_per_block(w_in.shape[0])
    for start in range(0, x.shape[0], step):
        rows = slice(start, start + step)
        torch.addmm(b_out, fn.gelu(torch.addmm(b_in, x[rows], w_in.T)), w_out.T, out=out[rows])
    return out


class _BlockedJointMLP(torch.autograd.Function):
    """The blocked MLP with a blocked backward that recomputes each block's hidden values."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, w_in: Tensor, b_in: Tensor, w_out: Tensor, b_out: Tensor) -> Tensor:
        ctx.save_for_backward(x, w_in, b_in, w_out)
        return _forward_blocks(x, w_in, b_in, w_out, b_out)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, ...]:
        x, w_in, b_in, w_out = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        grad_x = torch.empty_like(x)
        grad_w_in, grad_b_in, grad_w_out = torch.zeros_like(w_in), torch.zeros_like(b_in), torch.zeros_like(w_out)
        step = rows_per_block(w_in.shape[0]) if x.device.type == "cpu" else x.shape[0]
        for start in range(0, x.shape[0], step):
            rows = slice(start, start + step)
            pre = torch.addmm(b_in, x[rows], w_in.T)
            grad_w_out.addmm_(grad_out[rows].T, fn.gelu(pre))
            grad_pre = torch.ops.aten.gelu_backward(grad_out[rows] @ w_out, pre)
            grad_w_in.addmm_(grad_pre.T, x[rows])
            grad_b_in.add_(grad_pre.sum(dim=0))
            torch.mm(grad_pre, w_in, out=grad_x[rows])
        return grad_x, grad_w_in, grad_b_in, grad_w_out, grad_out.sum(dim=0)
