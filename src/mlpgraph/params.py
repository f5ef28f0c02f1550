"""Reading ``params.yaml``: the preset merge and typed access to dotted keys.

``params.yaml`` is the only source of parameters. Its top-level ``preset`` names a file
``configs/<preset>.yaml`` (beside ``params.yaml``) whose keys override the base ones, recursively.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from mlpgraph.errors import UserInputError

PRESETS_DIR = "configs"


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``override`` merged in; nested mappings merge, everything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A YAML mapping from ``path``, with one-line errors naming the file."""
    path = Path(path)
    try:
        content = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UserInputError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise UserInputError(f"{path}: invalid YAML ({' '.join(str(exc).split())})") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise UserInputError(f"{path}: expected a mapping at the top level")
    return content


def load_params(path: str | os.PathLike[str] = "params.yaml") -> dict[str, Any]:
    """``params.yaml`` merged with its preset file; the result records the preset's name."""
    path = Path(path)
    params = read_yaml(path)
    preset = params.get("preset")
    if preset is None:
        return params
    preset_path = path.parent / PRESETS_DIR / f"{preset}.yaml"
    if not preset_path.is_file():
        available = sorted(p.stem for p in (path.parent / PRESETS_DIR).glob("*.yaml"))
        raise UserInputError(f"{path}: preset {preset!r} has no file {preset_path} (available: {available})")
    return deep_merge(params, read_yaml(preset_path))


def get(params: Mapping[str, Any], dotted_key: str, default: Any = ...) -> Any:
    """``params['a']['b']`` for ``'a.b'``; a missing key without default is a one-line error."""
    node: Any = params
    for part in dotted_key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            if default is not ...:
                return default
            raise UserInputError(f"params: missing key {dotted_key!r}")
        node = node[part]
    return node
