"""Released MLP-Graph checkpoints: infer their configuration and convert them to this project's format.

The release ships plain state dicts (``torch.save(model.state_dict())``) without their
configuration; every size is readable from the tensors' shapes, so :func:`infer_release_config`
recovers it (frames from the token embedding, widths from the first block, depth from the
block count, joints from the modulation matrix). :func:`import_release` loads the files with
``weights_only=True`` (anything but tensors is refused), rebuilds the networks through the
registry, checks them against the given configuration, and writes a project checkpoint that
records the configuration and the SHA-256 of the source files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from torch import Tensor

from mlpgraph.checkpoints import first_non_finite, load_tensors, network_entry, save_checkpoint
from mlpgraph.errors import UserInputError
from mlpgraph.io import sha256_file
from mlpgraph.layouts import layout_for_joint_count
from mlpgraph.models.release import mlpgraph_from_release, refine_from_release

_PREFIX = "module."
_BLOCK_KEY = re.compile(r"gconv_layers\.mixer_blocks\.(\d+)\.")


def _strip_prefix(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    return {(k[len(_PREFIX) :] if k.startswith(_PREFIX) else k): v for k, v in state_dict.items()}


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """A plain state dict (name -> tensor) from ``path``; anything else, or NaN/inf, is refused with one line."""
    content = load_tensors(path)
    if not isinstance(content, Mapping) or not content:
        raise UserInputError(f"{path}: expected a plain state dict (name -> tensor), got {type(content).__name__}")
    for key, value in content.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise UserInputError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor; not a state dict")
    bad = first_non_finite(content)
    if bad is not None:
        raise UserInputError(f"{path}: tensor {bad!r} holds NaN or infinite values; refusing to use these weights")
    return _strip_prefix(content)


def infer_release_config(state_dict: Mapping[str, Tensor], where: str = "state dict") -> dict[str, Any]:
    """Frames, widths, depth and layout of a release MLP-Graph state dict, from its tensor shapes."""
    sd = _strip_prefix(state_dict)
    try:
        embed = sd["to_patch_embedding.weight"]
        spatial = sd["gconv_layers.mixer_blocks.0.spatial_mix.2.net.0.weight"]
        wjc = sd["gconv_layers.mixer_blocks.0.gconv.graphConv.W"]
        modulation = sd["gconv_layers.mixer_blocks.0.gconv.graphConv.M"]
    except KeyError as exc:
        raise UserInputError(f"{where}: not an MLP-Graph release state dict (no {exc.args[0]!r})") from None
    blocks = {int(m.group(1)) for key in sd if (m := _BLOCK_KEY.match(key))}
    if embed.shape[1] % 2:
        raise UserInputError(f"{where}: to_patch_embedding.weight has {embed.shape[1]} inputs, expected 2 x frames")
    return {
        "frames": int(embed.shape[1]) // 2,
        "hid_dim": int(embed.shape[0]),
        "spatial_hid_dim": int(spatial.shape[0]),
        "channel_hid_dim": int(wjc.shape[-1]),
        "num_layers": len(blocks),
        "layout": layout_for_joint_count(int(modulation.shape[-2]), where).name,
    }


@contextmanager
def _named(path: str | os.PathLike[str]) -> Iterator[None]:
    """Prefix a UserInputError raised inside with ``path`` (the file the state dict came from)."""
    try:
        yield
    except UserInputError as exc:
        raise UserInputError(f"{path}: {exc}") from None


def import_release(
    weights: str | os.PathLike[str],
    out: str | os.PathLike[str],
    refine_weights: str | os.PathLike[str] | None = None,
    aggregation: str = "diagonal",
    expected: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Convert release ``.pth`` file(s) into a project checkpoint at ``out``; return the model config.

    ``expected`` (e.g. from the command line) is checked against the inferred configuration, so
    a mismatch is reported by name instead of being silently accepted.
    """
    state = read_state_dict(weights)
    config = infer_release_config(state, str(weights))
    for key, value in (expected or {}).items():
        if value is not None and config.get(key) != value:
            raise UserInputError(f"{weights}: {key} is {config.get(key)} in the weights, {value} was asked for")
    with _named(weights):
        model = mlpgraph_from_release(state, aggregation=aggregation, **config)
    networks = {"model": network_entry("mlpgraph", model)}
    sources = {Path(weights).name: sha256_file(weights)}
    if refine_weights is not None:
        refine_state = read_state_dict(refine_weights)
        with _named(refine_weights):
            refine = refine_from_release(refine_state, layout=config["layout"])
        networks["refine"] = network_entry("refine", refine)
        sources[Path(refine_weights).name] = sha256_file(refine_weights)
    save_checkpoint(out, networks, meta={"source": "MLP-Graph release", "source_files": sources})
    return dict(model.config)
