"""The four graph baselines on SemGCN's residual skeleton (docs/baselines.md §1-4).

All four share one structure: input graph conv (2 -> hidden) + BN + ReLU, ``num_blocks``
residual blocks x + GC(GC(x)) (each GC followed by BN + ReLU, no activation after the sum), and a
bare output graph conv (hidden -> 3). BatchNorm1d normalises channels with statistics over batch x
joints. Every adjacency and joint grouping is derived from the :class:`SkeletonLayout` by name.

Common interface: ``forward`` takes (N, T, J, 2) with T == 1 and returns root-relative (N, J, 3);
``model.config`` holds exactly the constructor arguments (layout by name), so
``type(model)(**model.config)`` rebuilds it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from mlpgraph.errors import UserInputError
from mlpgraph.layouts import SkeletonLayout, get_layout
from mlpgraph.models.graph_layers import (
    DecouplePreAggGraphConv,
    GraphNonLocal,
    HGraphConv,
    ModulatedGraphConv,
    SemGraphConv,
    group_index,
)

IN_CHANNELS = 2
OUT_CHANNELS = 3

# SemGCN's non-local pooling groups for h36m16 (its [[2,3],[5,6],[1,4],[0,7],[8,9],[14,15],[11,12],[10,13]]).
SEMGCN_PAIRS_16: tuple[tuple[str, ...], ...] = (
    ("right_knee", "right_ankle"),
    ("left_knee", "left_ankle"),
    ("right_hip", "left_hip"),
    ("pelvis", "spine"),
    ("thorax", "head"),
    ("right_elbow", "right_wrist"),
    ("left_elbow", "left_wrist"),
    ("left_shoulder", "right_shoulder"),
)
# h36m17 adds neck between thorax and head: it joins that group, which becomes a triple
# (max-pooled like the pairs), so there are still 8 pooled groups.
SEMGCN_GROUPS_17: tuple[tuple[str, ...], ...] = tuple(
    ("thorax", "neck", "head") if pair == ("thorax", "head") else pair for pair in SEMGCN_PAIRS_16
)

ConvFactory = Callable[[int, int, bool], nn.Module]
"""make(in_channels, out_channels, is_output) -> graph conv layer."""


def _config(layout: SkeletonLayout, hid_dim: int, num_blocks: int, dropout: float, **extra: Any) -> dict[str, Any]:
    """A baseline's ``config``: its constructor arguments, the layout by name."""
    return {"layout": layout.name, "hid_dim": hid_dim, "num_blocks": num_blocks, **extra, "dropout": dropout}


def semgcn_groups(layout: SkeletonLayout) -> tuple[tuple[str, ...], ...]:
    """Joint groups (names) SemGCN's non-local block max-pools over, for ``layout``.

    16 joints: SemGCN's 8 pairs. 17 joints (with neck): the same pairs with (thorax, head)
    extended to (thorax, neck, head). Other joint sets are refused.
    """
    names = set(layout.joint_names)
    for groups in (SEMGCN_PAIRS_16, SEMGCN_GROUPS_17):
        if names == {n for group in groups for n in group}:
            return groups
    raise UserInputError(
        f"SemGCN non_local: no joint pairing defined for layout {layout.name!r} "
        "(defined for the 16-joint h36m layout and the 17-joint one with neck)"
    )


class _GraphConvBlock(nn.Module):
    """Graph conv -> BatchNorm1d over channels (stats over batch x joints) -> ReLU (-> dropout)."""

    def __init__(self, conv: nn.Module, channels: int, dropout: float) -> None:
        super().__init__()
        self.gconv = conv
        self.bn = nn.BatchNorm1d(channels)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.gconv(x).transpose(1, 2)).transpose(1, 2)
        x = torch.relu(x)
        return self.dropout(x) if self.dropout is not None else x


class _ResidualBlock(nn.Module):
    """x + B2(B1(x)), no activation after the sum (SemGCN's _ResGraphConv)."""

    def __init__(self, first: nn.Module, second: nn.Module) -> None:
        super().__init__()
        self.gconv1, self.gconv2 = first, second

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gconv2(self.gconv1(x))


class _ResidualGraphNet(nn.Module):
    """The shared skeleton; subclasses supply the graph conv and the hidden width."""

    def __init__(
        self,
        layout: SkeletonLayout,
        make_conv: ConvFactory,
        conv_out: int,
        width: int,
        num_blocks: int,
        dropout: float,
        groups: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if num_blocks < 0 or not 0.0 <= dropout < 1.0:
            raise UserInputError(f"num_blocks must be >= 0 and dropout in [0, 1); got {num_blocks}, {dropout}")
        self.layout = layout

        def block(cin: int) -> _GraphConvBlock:
            return _GraphConvBlock(make_conv(cin, conv_out, False), width, dropout)

        layers: list[nn.Module] = [block(IN_CHANNELS)]
        if groups is not None:
            layers.append(GraphNonLocal(width, groups))
        for _ in range(num_blocks):
            layers.append(_ResidualBlock(block(width), block(width)))
            if groups is not None:
                layers.append(GraphNonLocal(width, groups))
        self.layers = nn.Sequential(*layers)
        self.output = make_conv(width, OUT_CHANNELS, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, J, 2) -> (N, J, 3)."""
        j = self.layout.num_joints
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != j or x.shape[3] != IN_CHANNELS:
            raise ValueError(
                f"{type(self).__name__} expects input of shape (N, 1, {j}, {IN_CHANNELS}) "
                f"(single frame, layout {self.layout.name}); got {tuple(x.shape)}"
            )
        return self.output(self.layers(x[:, 0]))


class SemGCN(_ResidualGraphNet):
    """SemGCN (Zhao et al. CVPR'19; docs/baselines.md §1): SemGraphConv on the mask of A+I.

    With ``non_local=True`` a GraphNonLocal block follows the input layer and every residual
    block (the table's 40.78 variant), pooling over :func:`semgcn_groups`.
    """

    def __init__(
        self,
        layout: str | SkeletonLayout = "h36m16",
        hid_dim: int = 128,
        num_blocks: int = 4,
        non_local: bool = False,
        dropout: float = 0.0,
    ) -> None:
        lay = get_layout(layout)
        adj = lay.adjacency(self_loops=True)
        groups = group_index(lay, semgcn_groups(lay)) if non_local else None

        def make(cin: int, cout: int, is_output: bool) -> nn.Module:
            return SemGraphConv(cin, cout, adj)

        super().__init__(lay, make, hid_dim, hid_dim, num_blocks, dropout, groups)
        self.config: dict[str, Any] = _config(lay, hid_dim, num_blocks, dropout, non_local=non_local)


class HighOrderGCN(_ResidualGraphNet):
    """High-order GCN (Zou et al. BMVC'20; docs/baselines.md §2): HGraphConv over walk orders 0..3.

    Hidden layers concatenate the four orders, so every hidden tensor is 4·hid_dim wide (384 at
    the default hid_dim 96); the output layer sums them.
    """

    def __init__(
        self,
        layout: str | SkeletonLayout = "h36m16",
        hid_dim: int = 96,
        num_blocks: int = 4,
        dropout: float = 0.0,
    ) -> None:
        lay = get_layout(layout)
        adj = lay.row_normalised_adjacency(self_loops=False)

        def make(cin: int, cout: int, is_output: bool) -> nn.Module:
            return HGraphConv(cin, cout, adj, aggregate="sum" if is_output else "concat")

        super().__init__(lay, make, hid_dim, HGraphConv.orders * hid_dim, num_blocks, dropout)
        self.config: dict[str, Any] = _config(lay, hid_dim, num_blocks, dropout)


class WeightUnsharingGCN(_ResidualGraphNet):
    """Weight-unsharing GCN (Liu et al. ECCV'20; docs/baselines.md §3), as Any-GCN's ``dc_preagg``.

    Assumption: which of Liu et al.'s variants gives the cited 37.83 mm is not stated anywhere
    read; the decoupled per-node (pre-aggregation) variant is chosen because at hid 128, 4 blocks
    and 16 joints it has 4.218M parameters, matching the 4.22M that Modulated-GCN quotes for the
    weight-unsharing baseline. The fixed graph is row-normalised A+I.
    """

    def __init__(
        self,
        layout: str | SkeletonLayout = "h36m16",
        hid_dim: int = 128,
        num_blocks: int = 4,
        dropout: float = 0.0,
    ) -> None:
        lay = get_layout(layout)
        adj = lay.row_normalised_adjacency(self_loops=True)

        def make(cin: int, cout: int, is_output: bool) -> nn.Module:
            return DecouplePreAggGraphConv(cin, cout, adj)

        super().__init__(lay, make, hid_dim, hid_dim, num_blocks, dropout)
        self.config: dict[str, Any] = _config(lay, hid_dim, num_blocks, dropout)


def modulated_base_adjacency(layout: SkeletonLayout) -> np.ndarray:
    """Modulated-GCN's fixed A: D^-1 A without self-loops, then the diagonal set to 1 (docs/baselines.md §6)."""
    adj = layout.row_normalised_adjacency(self_loops=False).copy()
    np.fill_diagonal(adj, 1.0)
    return adj


class ModulatedGCN(_ResidualGraphNet):
    """Modulated GCN (Zou & Tang ICCV'21, GT code; docs/baselines.md §4): ModulatedGraphConv, M init 1."""

    def __init__(
        self,
        layout: str | SkeletonLayout = "h36m16",
        hid_dim: int = 128,
        num_blocks: int = 4,
        dropout: float = 0.0,
    ) -> None:
        lay = get_layout(layout)
        adj = modulated_base_adjacency(lay)

        def make(cin: int, cout: int, is_output: bool) -> nn.Module:
            return ModulatedGraphConv(cin, cout, adj)

        super().__init__(lay, make, hid_dim, hid_dim, num_blocks, dropout)
        self.config: dict[str, Any] = _config(lay, hid_dim, num_blocks, dropout)
