"""The project's checkpoint format: tensors and plain values only, loadable with ``weights_only=True``.

A checkpoint records what is needed to rebuild and trust a model: the registry name and the
constructor config of each network (the lifting model and, optionally, the refinement module),
their state dicts, the fingerprint of the data they were trained on, and free-form plain
metadata (epoch, metrics, provenance). Loading a state dict into a model of another
configuration names the first offending tensor and both shapes.

A checkpoint is an untrusted file. :func:`load_checkpoint` checks its structure and types (one
line naming the file and the key) and that every tensor is finite; :func:`build_network` checks a
network's config (plain values, sizes at most :data:`MAX_CONFIG_SIZE`, layer counts no more than
the state dict's tensors) and then the state dict's shapes against a model built on the ``meta``
device, so a config claiming huge widths is refused before anything is allocated. Writers refuse
non-finite tensors (:class:`NonFiniteTensorError`).
"""

from __future__ import annotations

import io
import math
import os
import pickle
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mlpgraph import __version__
from mlpgraph.errors import UserInputError
from mlpgraph.layouts import SkeletonLayout, get_layout
from mlpgraph.outputs import atomic_path

CHECKPOINT_VERSION = 1
# The largest integer a network's config may hold (a width, a window, a count): generous beside the
# paper's sizes (243 frames, widths up to 1024), small enough that a shape check on the meta device is quick.
MAX_CONFIG_SIZE = 1 << 16
# Config keys that count repeated layers: each layer holds at least one tensor of the state dict.
COUNT_KEYS = ("num_layers", "num_blocks")
_PLAIN = (bool, int, float, str, type(None))


class NonFiniteTensorError(ValueError):
    """A writer was handed a NaN or infinite tensor: a bug (or a divergence) upstream, never saved."""


def named_tensors(value: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor in nested dicts, lists and tuples, with its dotted path (``networks.model.state_dict.x``)."""
    if isinstance(value, torch.Tensor):
        yield prefix, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from named_tensors(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from named_tensors(item, f"{prefix}.{index}" if prefix else str(index))


def first_non_finite(value: Any, prefix: str = "") -> str | None:
    """The path of the first floating-point tensor in ``value`` holding a NaN or infinity, else None."""
    for name, tensor in named_tensors(value, prefix):
        if (tensor.is_floating_point() or tensor.is_complex()) and not bool(torch.isfinite(tensor).all()):
            return name
    return None


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
    """Write ``networks`` (role -> :func:`network_entry`, e.g. ``{"model": ..., "refine": ...}``) atomically.

    Raises :class:`NonFiniteTensorError` (nothing written) when any tensor holds a NaN or infinity.
    """
    content = {
        "format_version": CHECKPOINT_VERSION,
        "mlpgraph_version": __version__,
        "networks": dict(networks),
        "data_fingerprint": data_fingerprint,
        "meta": dict(meta or {}),
    }
    path = Path(path)
    bad = first_non_finite(content)
    if bad is not None:
        raise NonFiniteTensorError(f"{path}: refusing to write a checkpoint whose tensor {bad} is not finite")
    with atomic_path(path) as tmp:
        torch.save(content, tmp)
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``); see :func:`check_checkpoint`."""
    content = load_tensors(path)
    check_checkpoint(content, path)
    return content


def check_checkpoint(content: Any, path: str | os.PathLike[str]) -> None:
    """Refuse (one line naming ``path`` and the key) a checkpoint of the wrong structure or with non-finite tensors.

    Expected: ``format_version`` (this mlpgraph's), ``networks`` (role -> ``{"name": str, "config":
    {str: plain value}, "state_dict": {str: tensor}}``, at least one), ``data_fingerprint`` (str
    or None) and ``meta`` (a mapping).
    """
    if not isinstance(content, dict) or "networks" not in content:
        raise UserInputError(f"{path}: not an mlpgraph checkpoint (no 'networks' entry)")
    version = content.get("format_version")
    if type(version) is not int or version != CHECKPOINT_VERSION:  # a tensor here would compare element-wise
        shown = version if type(version) is int or version is None else _a(version)
        raise UserInputError(f"{path}: checkpoint format_version {shown}, this mlpgraph reads {CHECKPOINT_VERSION}")
    networks = _mapping(content["networks"], f"{path}: networks")
    if not networks:
        raise UserInputError(f"{path}: networks is empty; expected at least the lifting network under 'model'")
    for role, entry in networks.items():
        _check_entry(entry, f"{path}: networks.{role}")
    fingerprint = content.get("data_fingerprint")
    if fingerprint is not None and not isinstance(fingerprint, str):
        raise UserInputError(f"{path}: data_fingerprint is {_a(fingerprint)}, expected a string or null")
    _mapping(content.get("meta"), f"{path}: meta")
    bad = first_non_finite(networks, "networks") or first_non_finite(content["meta"], "meta")
    if bad is not None:
        raise UserInputError(f"{path}: tensor {bad} holds NaN or infinite values; refusing to use these weights")


def _a(value: Any) -> str:
    """``a list``, ``an int``: the type of ``value`` for a message."""
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    """``value`` when it is a mapping with string keys; else a one-line error naming ``where``."""
    if not isinstance(value, Mapping):
        raise UserInputError(f"{where} is {_a(value)}, expected a mapping")
    for key in value:
        if not isinstance(key, str):
            raise UserInputError(f"{where}: key {key!r} is {_a(key)}, expected a string")
    return value


def _check_entry(entry: Any, where: str) -> None:
    """One network entry: ``name`` a string, ``config`` plain values, ``state_dict`` tensors only."""
    entry = _mapping(entry, where)
    for key in ("name", "config", "state_dict"):
        if key not in entry:
            raise UserInputError(f"{where}: no {key!r} entry (a network needs name, config and state_dict)")
    if not isinstance(entry["name"], str):
        raise UserInputError(f"{where}.name is {_a(entry['name'])}, expected a string")
    for key, value in _mapping(entry["config"], f"{where}.config").items():
        if not isinstance(value, _PLAIN):
            raise UserInputError(f"{where}.config.{key} is {_a(value)}, expected a number, string or bool")
    for key, value in _mapping(entry["state_dict"], f"{where}.state_dict").items():
        if not isinstance(value, torch.Tensor):
            raise UserInputError(f"{where}.state_dict: entry {key!r} is {_a(value)}, not a tensor")


# What torch's weights_only unpickler refused, inside its multi-paragraph advice.
_REFUSED = re.compile(r"(Unsupported global: GLOBAL \S+|Unsupported operand \S+|unsupported GLOBAL \S+|"
                      r"Unsupported class \S+)")  # fmt: skip


def _unpickling_reason(exc: Exception) -> str:
    """The one informative phrase of a refused ``weights_only`` load (its first line when none is found)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    found = _REFUSED.search(text)
    if found:
        return found.group(1)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def load_tensors(path: str | os.PathLike[str]) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU, with one-line errors for unreadable or unsafe files."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: file not found")
    try:
        # A legacy (non-zip) file is a bare pickle whose length fields a reader trusts: read from
        # memory, a declared 4 GB string costs only the file's bytes.
        with open(path, "rb") as handle:
            zipped = handle.read(4) == b"PK\x03\x04"
        source = path if zipped else io.BytesIO(path.read_bytes())
        return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UserInputError(
            f"{path}: refused to load (only tensors and plain values are allowed): {_unpickling_reason(exc)}"
        ) from None
    except Exception as exc:  # any failure to decode an untrusted file is the file's fault, not a bug
        raise UserInputError(f"{path}: not a readable PyTorch file ({type(exc).__name__}: {exc})") from None


def check_state_dict(expected: Mapping[str, torch.Tensor], state_dict: Mapping[str, Any], where: str) -> None:
    """Refuse ``state_dict`` unless it has exactly ``expected``'s tensors and shapes; names the first offender.

    ``expected`` may be a model's state dict on the ``meta`` device: only the shapes are compared.
    """
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


def load_state_dict_checked(model: nn.Module, state_dict: Mapping[str, torch.Tensor], where: str) -> None:
    """``model.load_state_dict(state_dict)`` that names the first missing, unexpected or mis-shaped tensor."""
    check_state_dict(model.state_dict(), state_dict, where)
    model.load_state_dict(state_dict)


def check_config(config: Mapping[str, Any], state_dict: Mapping[str, Any], where: str) -> None:
    """Refuse sizes no sane network has: integers outside [0, MAX_CONFIG_SIZE], non-finite floats,
    and more layers (:data:`COUNT_KEYS`) than the state dict has tensors."""
    for key, value in config.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise UserInputError(f"{where}.config.{key} is {value}, expected a finite number")
        if isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value <= MAX_CONFIG_SIZE:
                raise UserInputError(f"{where}.config.{key} is {value}, expected 0 to {MAX_CONFIG_SIZE}")
            if key in COUNT_KEYS and value > len(state_dict):
                raise UserInputError(
                    f"{where}.config.{key} is {value}, more than the {len(state_dict)} tensors of its state_dict"
                )


def build_network(entry: Mapping[str, Any], where: str) -> nn.Module:
    """Rebuild one network of a checkpoint from its registry name and config, and load its weights.

    The config is checked (:func:`check_config`) and the state dict's shapes are compared with a
    model built on the ``meta`` device before the real one is built, so a config that does not
    match its tensors is refused without allocating what it claims.
    """
    from mlpgraph.models import build_model

    _check_entry(entry, where)
    name, config, state = entry["name"], dict(entry["config"]), entry["state_dict"]
    check_config(config, state, where)
    layout = config.pop("layout", "h36m16")
    try:
        with torch.device("meta"):
            shapes = build_model(name, layout=layout, **config).state_dict()
    except (TypeError, ValueError) as exc:  # UserInputError included: an unknown name, layout or argument
        raise UserInputError(f"{where}: its name and config do not build a network ({exc})") from None
    check_state_dict(shapes, state, where)
    model = build_model(name, layout=layout, **config)
    model.load_state_dict(state)
    return model


def networks_from_checkpoint(path: str | os.PathLike[str]) -> dict[str, nn.Module]:
    """Every network of a checkpoint, checked (:func:`load_checkpoint`), rebuilt and in eval mode (role -> module)."""
    content = load_checkpoint(path)
    networks = {}
    for role, entry in content["networks"].items():
        networks[role] = build_network(entry, f"{path}: networks.{role}").eval()
    return networks


def lifting_network(path: str | os.PathLike[str]) -> tuple[nn.Module, SkeletonLayout]:
    """The lifting network (role ``model``) of a checkpoint, in eval mode, and its layout.

    A checkpoint without one (a refinement module alone, say) is a user error. A refinement
    module stored beside it is not applied: its input needs the camera intrinsics and root depth.
    """
    from mlpgraph.models.refine import PoseRefinement

    networks = networks_from_checkpoint(path)
    model = networks.get("model")
    if model is None or isinstance(model, PoseRefinement):
        raise UserInputError(
            f"{path}: not a lifting network checkpoint (it holds {sorted(networks)}; "
            "expected a 2D-to-3D network under 'model')"
        )
    return model.eval(), get_layout(str(model.config["layout"]))
