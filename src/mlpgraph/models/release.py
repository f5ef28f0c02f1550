"""Import (and export) the original MLP-Graph release's state dicts (docs/model.md, "MLP-Graph").

The release names its tensors ``to_patch_embedding.*``, ``gconv_layers.mixer_blocks.{i}...``,
``gconv_layers.layer_norm.*``, ``gconv_layers.mlp_head.0.*`` and, for the refinement,
``post_refine.{0,3}.*``; ours are ``embed.*``, ``blocks.{i}...``, ``norm.*``, ``head.*`` and
``net.{0,3}.*``. The release stores W2 as (1, Cx, Cout) and M as (1, J, Cout); ours drop the
leading 1 (``initial_weight``, ``modulation``). A leading ``module.`` (DataParallel) is ignored.
Any unknown or missing tensor, or a shape mismatch, raises ``UserInputError`` naming the first
offending tensor with the expected and found shapes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from mlpgraph.errors import UserInputError
from mlpgraph.models.refine import PoseRefinement
from mlpgraph.models.stmlpgraph import MLPGraph

_BLOCK = r"gconv_layers\.mixer_blocks\.(\d+)\."
_WJC_PARAMS = {"W": "weight", "W2": "initial_weight", "M": "modulation", "adj2_1": "adjacency_offset", "bias": "bias"}
_NORM_PARAMS = r"(weight|bias|running_mean|running_var|num_batches_tracked)"

# (release regex, ours template) and the inverse; templates use \1, \2 for the groups.
_RELEASE_TO_OURS: tuple[tuple[str, str], ...] = (
    (r"to_patch_embedding\.(weight|bias)", r"embed.\1"),
    (_BLOCK + r"spatial_mix\.0\.(weight|bias)", r"blocks.\1.joint_norm.\2"),
    (_BLOCK + r"spatial_mix\.2\.net\.0\.(weight|bias)", r"blocks.\1.joint_mlp.0.\2"),
    (_BLOCK + r"spatial_mix\.2\.net\.3\.(weight|bias)", r"blocks.\1.joint_mlp.3.\2"),
    (_BLOCK + r"gconv\.graphConv\.(W|W2|M|adj2_1|bias)", r"blocks.\1.wjc1.\2"),
    (_BLOCK + r"gconv\.norm1\." + _NORM_PARAMS, r"blocks.\1.bn1.\2"),
    (_BLOCK + r"gconv\.graphConvII\.(W|W2|M|adj2_1|bias)", r"blocks.\1.wjc2.\2"),
    (_BLOCK + r"gconv\.norm2\." + _NORM_PARAMS, r"blocks.\1.bn2.\2"),
    (r"gconv_layers\.layer_norm\.(weight|bias)", r"norm.\1"),
    (r"gconv_layers\.mlp_head\.0\.(weight|bias)", r"head.\1"),
    (r"post_refine\.(0|3)\.(weight|bias)", r"net.\1.\2"),
)
_OURS_TO_RELEASE: tuple[tuple[str, str], ...] = (
    (r"embed\.(weight|bias)", r"to_patch_embedding.\1"),
    (r"blocks\.(\d+)\.joint_norm\.(weight|bias)", r"gconv_layers.mixer_blocks.\1.spatial_mix.0.\2"),
    (r"blocks\.(\d+)\.joint_mlp\.0\.(weight|bias)", r"gconv_layers.mixer_blocks.\1.spatial_mix.2.net.0.\2"),
    (r"blocks\.(\d+)\.joint_mlp\.3\.(weight|bias)", r"gconv_layers.mixer_blocks.\1.spatial_mix.2.net.3.\2"),
    (r"blocks\.(\d+)\.wjc1\.(\w+)", r"gconv_layers.mixer_blocks.\1.gconv.graphConv.\2"),
    (r"blocks\.(\d+)\.bn1\." + _NORM_PARAMS, r"gconv_layers.mixer_blocks.\1.gconv.norm1.\2"),
    (r"blocks\.(\d+)\.wjc2\.(\w+)", r"gconv_layers.mixer_blocks.\1.gconv.graphConvII.\2"),
    (r"blocks\.(\d+)\.bn2\." + _NORM_PARAMS, r"gconv_layers.mixer_blocks.\1.gconv.norm2.\2"),
    (r"norm\.(weight|bias)", r"gconv_layers.layer_norm.\1"),
    (r"head\.(weight|bias)", r"gconv_layers.mlp_head.0.\1"),
    (r"net\.(0|3)\.(weight|bias)", r"post_refine.\1.\2"),
)
_OURS_WJC = {v: k for k, v in _WJC_PARAMS.items()}
# Our parameters that the release stores with an extra leading axis of size 1.
_UNSQUEEZED = ("initial_weight", "modulation")


def release_key_to_ours(key: str) -> str:
    """Our state-dict name for a release name; UserInputError for a name the release never uses."""
    key = key.removeprefix("module.")
    for pattern, template in _RELEASE_TO_OURS:
        match = re.fullmatch(pattern, key)
        if match:
            ours = match.expand(template)
            head, _, last = ours.rpartition(".")
            if ".wjc" in ours:
                ours = f"{head}.{_WJC_PARAMS[last]}"
            return ours
    raise UserInputError(f"release state dict: unknown tensor {key!r}")


def our_key_to_release(key: str) -> str:
    """The release's state-dict name for one of ours; UserInputError for a name it has no counterpart for."""
    for pattern, template in _OURS_TO_RELEASE:
        match = re.fullmatch(pattern, key)
        if match:
            name = match.expand(template)
            if ".wjc" in key:
                head, _, last = name.rpartition(".")
                if last not in _OURS_WJC:
                    break
                name = f"{head}.{_OURS_WJC[last]}"
            return name
    raise UserInputError(f"state dict: tensor {key!r} has no release counterpart")


def _is_unsqueezed(our_key: str) -> bool:
    return our_key.rpartition(".")[2] in _UNSQUEEZED and ".wjc" in our_key


def state_dict_to_release(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Our state dict (MLPGraph or PoseRefinement) under the release's names and shapes."""
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        out[our_key_to_release(key)] = value.unsqueeze(0) if _is_unsqueezed(key) else value
    return out


def _shape(shape: tuple[int, ...] | torch.Size) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def load_release_state_dict(module: nn.Module, state_dict: Mapping[str, Tensor], what: str) -> None:
    """Copy a release-format ``state_dict`` into ``module`` (an MLPGraph or PoseRefinement), strictly.

    Raises UserInputError (one line) at the first unknown tensor, shape mismatch or missing tensor;
    ``num_batches_tracked`` may be absent (older PyTorch did not save it).
    """
    module.load_state_dict(convert_release_state_dict(module.state_dict(), state_dict, what), strict=False)


def convert_release_state_dict(
    expected: Mapping[str, Tensor], state_dict: Mapping[str, Tensor], what: str
) -> dict[str, Tensor]:
    """A release-format ``state_dict`` under our names and shapes, checked against ``expected`` (ours).

    ``expected`` may be a model's state dict on the ``meta`` device: only its names and shapes are
    used. Raises UserInputError (one line) at the first unknown tensor, shape mismatch or missing
    tensor; ``num_batches_tracked`` may be absent.
    """
    converted: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if not isinstance(value, Tensor):
            raise UserInputError(f"{what}: entry {key!r} is a {type(value).__name__}, not a tensor")
        try:
            ours = release_key_to_ours(key)
        except UserInputError:
            ours = None
        if ours is None or ours not in expected:
            raise UserInputError(f"{what}: unexpected tensor {key!r} with shape {_shape(value.shape)}, expected none")
        want = expected[ours].shape
        want_release = (1, *want) if _is_unsqueezed(ours) else tuple(want)
        if tuple(value.shape) != tuple(want_release):
            raise UserInputError(
                f"{what}: tensor {key!r} has shape {_shape(value.shape)}, expected {_shape(want_release)}"
            )
        converted[ours] = value.reshape(want)
    for ours, tensor in expected.items():
        if ours not in converted and not ours.endswith("num_batches_tracked"):
            want_release = (1, *tensor.shape) if _is_unsqueezed(ours) else tuple(tensor.shape)
            raise UserInputError(
                f"{what}: missing tensor {our_key_to_release(ours)!r}, "
                f"expected shape {_shape(want_release)}, found none"
            )
    return converted


def _checked_release(
    factory: type[nn.Module], config: Mapping[str, Any], state_dict: Mapping[str, Tensor], what: str
) -> nn.Module:
    """``factory(**config)`` holding the release ``state_dict``, in eval mode.

    The tensors' names and shapes are checked against a model built on the ``meta`` device first,
    so sizes read from one tensor that the others do not share are refused without allocating.
    """
    try:
        with torch.device("meta"):
            shapes = factory(**config).state_dict()
    except (TypeError, ValueError) as exc:
        raise UserInputError(f"{what}: no valid network has this configuration ({exc})") from None
    converted = convert_release_state_dict(shapes, state_dict, what)
    model = factory(**config)
    model.load_state_dict(converted, strict=False)
    return model.eval()


def mlpgraph_from_release(
    state_dict: Mapping[str, Tensor],
    frames: int,
    hid_dim: int,
    spatial_hid_dim: int,
    channel_hid_dim: int,
    num_layers: int,
    layout: str = "h36m16",
    aggregation: str = "diagonal",
) -> MLPGraph:
    """An MLPGraph in eval mode holding a released checkpoint's weights.

    Takes (N, T, J, 2) and returns (N, J, 3), where the release takes (N, 2, T, J, 1) and returns
    (N, 3, 1, J, 1). The release needs hid_dim == spatial_hid_dim.
    """
    config = {
        "layout": layout,
        "frames": frames,
        "hid_dim": hid_dim,
        "spatial_hid_dim": spatial_hid_dim,
        "channel_hid_dim": channel_hid_dim,
        "num_layers": num_layers,
        "aggregation": aggregation,
    }
    what = "release MLP-Graph state dict (" + ", ".join(f"{k}={v}" for k, v in config.items()) + ")"
    return _checked_release(MLPGraph, config, state_dict, what)


def refine_from_release(state_dict: Mapping[str, Tensor], layout: str = "h36m16") -> PoseRefinement:
    """A PoseRefinement in eval mode holding the release's ``post_refine`` weights: (P, X~) -> (N, J, 3)."""
    what = f"release post_refine state dict (layout {layout})"
    return _checked_release(PoseRefinement, {"layout": layout}, state_dict, what)
