"""Lifting networks: MLP-Graph (as released), its pose refinement, and the graph baselines.

:func:`build_model` is the one way to make a network by name, at its paper configuration
unless overridden. Every network takes (N, T, J, 2) normalised 2D (the graph baselines need
T == 1) and returns (N, J, 3) root-relative 3D; the refinement module takes (P, X~) instead.
Each stores its constructor arguments in ``config``, which checkpoints record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from mlpgraph.errors import UserInputError
from mlpgraph.layouts import SkeletonLayout, get_layout
from mlpgraph.models.baselines import HighOrderGCN, ModulatedGCN, SemGCN, WeightUnsharingGCN
from mlpgraph.models.refine import PoseRefinement
from mlpgraph.models.release import mlpgraph_from_release, refine_from_release
from mlpgraph.models.stmlpgraph import MLPGraph, count_parameters


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: how to build the network, and its defaults (the paper configuration)."""

    factory: Callable[..., nn.Module]
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class PaperConfig:
    """A configuration of the paper's comparison and the parameter count published for it (16 joints)."""

    model: str
    overrides: dict[str, Any]
    published_parameters: int
    source: str


REGISTRY: dict[str, ModelSpec] = {
    "mlpgraph": ModelSpec(
        MLPGraph,
        {"frames": 1, "hid_dim": 128, "spatial_hid_dim": 128, "channel_hid_dim": 256, "num_layers": 3},
        "Spatio-Temporal MLP-Graph (1-frame GT configuration; frames=243, widths 384/384/768 for the temporal one)",
    ),
    "semgcn": ModelSpec(SemGCN, {"non_local": False}, "SemGCN (Zhao et al., CVPR'19)"),
    "semgcn_nonlocal": ModelSpec(SemGCN, {"non_local": True}, "SemGCN with non-local blocks"),
    "hgcn": ModelSpec(HighOrderGCN, {}, "High-order GCN (Zou et al., BMVC'20)"),
    "wugcn": ModelSpec(
        WeightUnsharingGCN, {}, "Weight-Unsharing GCN (Liu et al., ECCV'20), decoupled pre-aggregation (assumed)"
    ),
    "modgcn": ModelSpec(ModulatedGCN, {}, "Modulated GCN (Zou & Tang, ICCV'21)"),
    "refine": ModelSpec(PoseRefinement, {}, "Pose refinement (Cai et al., ICCV'19) as used by MLP-Graph"),
}

# The configurations of the paper's comparison, by the name benchmarks and reports show.
PAPER_CONFIGS: dict[str, PaperConfig] = {
    "mlpgraph_f1": PaperConfig("mlpgraph", {}, 627_763, "docs/model.md (release, T=1, C=S=128, D=256, L=3)"),
    "mlpgraph_f243": PaperConfig(
        "mlpgraph",
        {"frames": 243, "hid_dim": 384, "spatial_hid_dim": 384, "channel_hid_dim": 768},
        5_604_915,
        "docs/model.md (release, T=243, C=S=384, D=768, L=3)",
    ),
    "semgcn": PaperConfig("semgcn", {}, 270_000, "SemGCN README (0.27M)"),
    "semgcn_nonlocal": PaperConfig("semgcn_nonlocal", {}, 430_000, "SemGCN README (0.43M)"),
    "hgcn": PaperConfig("hgcn", {}, 1_200_000, "HGCN README (1.20M)"),
    "wugcn": PaperConfig("wugcn", {}, 4_220_000, "Modulated GCN abstract (4.22M weight-unsharing GCN)"),
    "modgcn": PaperConfig("modgcn", {}, 290_000, "Modulated GCN README (0.29M)"),
    "refine": PaperConfig("refine", {}, 132_128, "docs/model.md (refinement module, J=16)"),
}


def model_names() -> list[str]:
    """Names :func:`build_model` accepts."""
    return list(REGISTRY)


def build_model(name: str, layout: str | SkeletonLayout = "h36m16", **overrides: Any) -> nn.Module:
    """The network ``name`` at its paper configuration, with ``overrides`` applied."""
    try:
        spec = REGISTRY[name]
    except KeyError:
        raise UserInputError(f"unknown model {name!r}; expected one of {model_names()}") from None
    layout_name = get_layout(layout).name
    kwargs = {**spec.defaults, **overrides}
    try:
        return spec.factory(layout=layout_name, **kwargs)
    except TypeError as exc:
        raise UserInputError(f"model {name!r}: bad configuration {kwargs} ({exc})") from None


__all__ = [
    "PAPER_CONFIGS",
    "REGISTRY",
    "HighOrderGCN",
    "MLPGraph",
    "ModelSpec",
    "ModulatedGCN",
    "PaperConfig",
    "PoseRefinement",
    "SemGCN",
    "WeightUnsharingGCN",
    "build_model",
    "count_parameters",
    "mlpgraph_from_release",
    "model_names",
    "refine_from_release",
]
