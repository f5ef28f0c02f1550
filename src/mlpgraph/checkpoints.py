"""The project's checkpoint format: tensors and plain values only, loadable with ``weights_only=True``.

A checkpoint records what is needed to rebuild and trust a model: the registry name and the
constructor config of each network (the lifting model and, optionally, the refinement module),
their state dicts, the fingerprint of the data they were trained on, and free-form plain
metadata (epoch, metrics, provenance). Loading a state dict into a model of another
configuration names the first offending tensor and both shapes.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mlpgraph import __version__
from mlpgraph.errors import UserInputError
from mlpgraph.outputs import atomic_path

CHECKPOINT_VERSION = 1


def network_entry(name: str, model: nn.Module) -> dict[str, Any]:
    """``{"name", "config", "state_dict"}`` of a registry model (its ``config`` rebuilds it)."""
    config = getattr(model, "config", None)
    if not isinstance(config, dict):
        raise TypeError(f"{type(model).__name__} has no config dict; only registry models can be saved")
    state = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
    return {"name": name, "config": dict(config), "state_dict": state}


def save_checkpoint(
    path: str | os.PathLike[str],
    networks: Mapping[str, dict[str, Any]],
    data_fingerprint: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``networks`` (role -> :func:`network_entry`, e.g. ``{"model": ..., "refine": ...}``) atomically."""
    content = {
        "format_version": CHECKPOINT_VERSION,
        "mlpgraph_version": __version__,
        "networks": dict(networks),
        "data_fingerprint": data_fingerprint,
        "meta": dict(meta or {}),
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(content, tmp)
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``), checking its version."""
    content = load_tensors(path)
    if not isinstance(content, dict) or "networks" not in content:
        raise UserInputError(f"{path}: not an mlpgraph checkpoint (no 'networks' entry)")
    version = content.get("format_version")
    if version != CHECKPOINT_VERSION:
        raise UserInputError(f"{path}: checkpoint format_version {version}, this mlpgraph reads {CHECKPOINT_VERSION}")
    return content


def load_tensors(path: str | os.PathLike[str]) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU, with one-line errors for unreadable or unsafe files."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserInputError(f"{path}: refused to load (only tensors and plain values are allowed): {first}") from None
    except Exception as exc:  # any failure to decode an untrusted file is the file's fault, not a bug
        raise UserInputError(f"{path}: not a readable PyTorch file ({type(exc).__name__}: {exc})") from None


def load_state_dict_checked(model: nn.Module, state_dict: Mapping[str, torch.Tensor], where: str) -> None:
    """``model.load_state_dict(state_dict)`` that names the first missing, unexpected or mis-shaped tensor."""
    expected = model.state_dict()
    for key, value in expected.items():
        if key not in state_dict:
            raise UserInputError(f"{where}: tensor {key!r} is missing (the model expects shape {tuple(value.shape)})")
        found = state_dict[key]
        if not isinstance(found, torch.Tensor):
            raise UserInputError(f"{where}: entry {key!r} is a {type(found).__name__}, not a tensor")
        if tuple(found.shape) != tuple(value.shape):
            raise UserInputError(
                f"{where}: tensor {key!r} has shape {tuple(found.shape)} in the checkpoint, "
                f"the model expects {tuple(value.shape)}"
            )
    unexpected = [key for key in state_dict if key not in expected]
    if unexpected:
        raise UserInputError(f"{where}: unexpected tensor {unexpected[0]!r} (the model has no such entry)")
    model.load_state_dict(state_dict)


def build_network(entry: Mapping[str, Any], where: str) -> nn.Module:
    """Rebuild one network of a checkpoint from its registry name and config, and load its weights."""
    from mlpgraph.models import build_model

    try:
        name, config, state = entry["name"], dict(entry["config"]), entry["state_dict"]
    except (KeyError, TypeError):
        raise UserInputError(f"{where}: malformed network entry (needs name, config, state_dict)") from None
    layout = config.pop("layout", "h36m16")
    model = build_model(name, layout=layout, **config)
    load_state_dict_checked(model, state, where)
    return model


def networks_from_checkpoint(path: str | os.PathLike[str]) -> dict[str, nn.Module]:
    """Every network of a checkpoint, rebuilt and in eval mode (role -> module)."""
    content = load_checkpoint(path)
    networks = {}
    for role, entry in content["networks"].items():
        networks[role] = build_network(entry, f"{path} [{role}]").eval()
    return networks
