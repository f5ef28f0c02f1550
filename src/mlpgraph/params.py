"""Reading ``params.yaml``: the preset's defaults under the user's values, validated once.

``params.yaml`` is the only source of parameters. Its top-level ``preset`` names a file
``configs/<preset>.yaml`` (beside ``params.yaml``) that supplies the scale-dependent values
(data scale, epochs, model widths): a value set in ``params.yaml`` always wins over the preset,
and ``null`` in ``params.yaml`` means "not set here: take the preset's". A preset's entry for an
experiment that ``params.yaml`` does not list is ignored (removing an experiment removes it).

The merged result is validated against :mod:`mlpgraph.params_schema`; the first problem is one
:class:`~mlpgraph.errors.UserInputError` line naming the file the bad value came from and the key.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
import reprlib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mlpgraph.errors import UserInputError
from mlpgraph.params_schema import MODEL_ARGS, PATTERN_MEANINGS, Params

PRESETS_DIR = "configs"
MISSING = object()
# The largest parameters file read (the repository's is a few kB).
MAX_YAML_BYTES = 4 * 1024 * 1024
# A wrong value is quoted shortened: a YAML alias "bomb" shares one list many times over and
# would print as gigabytes.
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother = 2, 6, 6, 80, 80


def with_defaults(values: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``values`` with ``defaults`` filling what it leaves unset (absent or ``None``).

    Nested mappings merge; the keys keep ``values``' order, with keys only ``defaults`` has after them.
    """
    merged: dict[str, Any] = {}
    for key, value in values.items():
        default = defaults.get(key)
        if isinstance(value, Mapping) and isinstance(default, Mapping):
            merged[key] = with_defaults(value, default)
        else:
            merged[key] = copy.deepcopy(default if value is None and key in defaults else value)
    for key, default in defaults.items():
        if key not in merged:
            merged[key] = copy.deepcopy(default)
    return merged


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A YAML mapping from ``path``, with one-line errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: file not found")
    if path.stat().st_size > MAX_YAML_BYTES:
        raise UserInputError(
            f"{path}: {path.stat().st_size} bytes, over the {MAX_YAML_BYTES} bytes a parameters file may have"
        )
    try:
        content = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise UserInputError(f"{path}: invalid YAML (not UTF-8 text)") from None
    except RecursionError:
        raise UserInputError(f"{path}: invalid YAML (nested too deeply)") from None
    except yaml.YAMLError as exc:
        raise UserInputError(f"{path}: invalid YAML ({' '.join(str(exc).split())})") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise UserInputError(f"{path}: expected a mapping at the top level")
    return content


def preset_path(params_path: Path, preset: Any) -> Path:
    """The preset file ``preset`` names, beside ``params_path``; a one-line error when there is none."""
    presets = params_path.parent / PRESETS_DIR
    available = sorted(p.stem for p in presets.glob("*.yaml"))
    if not isinstance(preset, str) or preset not in available:
        raise UserInputError(f"{params_path}: preset: {preset!r} has no file in {presets} (available: {available})")
    return presets / f"{preset}.yaml"


def _preset_defaults(preset: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The preset without entries for experiments that ``params`` does not list."""
    defaults = dict(preset)
    listed = params.get("experiments")
    if isinstance(defaults.get("experiments"), Mapping) and isinstance(listed, Mapping):
        defaults["experiments"] = {k: v for k, v in defaults["experiments"].items() if k in listed}
    return defaults


def load_params(path: str | os.PathLike[str] = "params.yaml") -> dict[str, Any]:
    """``params.yaml`` over its preset's defaults, validated; the result records the preset's name."""
    path = Path(path)
    user = read_yaml(path)
    sources: list[tuple[Path, Mapping[str, Any]]] = [(path, user)]
    merged = user
    if user.get("preset") is not None:
        preset_file = preset_path(path, user["preset"])
        preset = read_yaml(preset_file)
        merged = with_defaults(user, _preset_defaults(preset, user))
        sources.append((preset_file, preset))
    validate(merged, sources)
    return merged


def validate(params: Mapping[str, Any], sources: list[tuple[Path, Mapping[str, Any]]]) -> None:
    """Check ``params`` against the schema; the first problem becomes one line naming its file and key.

    ``sources`` are the files merged into ``params``, the user's first: a problem is blamed on the
    first of them that sets the key (the user's file when none does).
    """
    try:
        Params.model_validate(params)
        for name, entry in params["experiments"].items():
            arguments = MODEL_ARGS[entry["model"]]
            try:
                arguments.model_validate(entry.get("model_args") or {})
            except ValidationError as exc:
                raise _located(exc, ("experiments", name, "model_args"), list(arguments.model_fields)) from None
    except ValidationError as exc:
        # A wrong value says more than a missing one (which may follow from it): report it first.
        errors = sorted(exc.errors(), key=_is_unset)
        raise UserInputError(describe_error(errors[0], sources)) from None
    except _LocatedError as exc:
        raise UserInputError(describe_error(exc.error, sources)) from None


class _LocatedError(Exception):
    """A validation error of a nested model, moved to its place in the whole file."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("msg"))
        self.error = error


def _located(exc: ValidationError, prefix: tuple[Any, ...], fields: list[str]) -> _LocatedError:
    """``exc``'s first error at ``prefix`` in the whole file; ``fields``: the keys allowed there."""
    error = dict(exc.errors()[0])
    error["loc"] = (*prefix, *error["loc"])
    error["fields"] = fields
    return _LocatedError(error)


def _lookup(tree: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        if not isinstance(tree, Mapping) or part not in tree:
            return MISSING
        tree = tree[part]
    return tree


def _blamed_file(loc: tuple[Any, ...], sources: list[tuple[Path, Mapping[str, Any]]], missing: bool) -> str:
    """The first source that sets the key at ``loc`` (the user's file if none does)."""
    if not missing:
        for file, content in sources:
            if _lookup(content, loc) not in (MISSING, None):
                return str(file)
        for file, content in sources:
            if _lookup(content, loc) is not MISSING:
                return str(file)
    return str(sources[0][0])


def _is_unset(error: Mapping[str, Any]) -> bool:
    """Whether a pydantic error is about a value nobody set (absent, or ``null`` with no preset value)."""
    return error["type"] == "missing" or ("input" in error and error["input"] is None)


def describe_error(error: Mapping[str, Any], sources: list[tuple[Path, Mapping[str, Any]]]) -> str:
    """One line for one pydantic error: ``FILE: KEY: problem``."""
    loc = tuple(part for part in error["loc"] if not isinstance(part, str) or not part.startswith("function-"))
    kind, message = error["type"], str(error["msg"]).removeprefix("Value error, ")
    if kind == "value_error" and (named := re.match(r"^([\w.]+): (.*)$", message)):
        loc, message = (*loc, *named.group(1).split(".")), named.group(2)
    key = ".".join(str(part) for part in loc) or "(top level)"
    missing = _is_unset(error)
    file = _blamed_file(loc, sources, missing)
    if missing:
        also = f" or in {sources[1][0]}" if len(sources) > 1 else ""
        return f"{file}: {key}: missing (set it in {sources[0][0]}{also})"
    if kind == "extra_forbidden":
        fields = error.get("fields") or _fields_at(Params, loc[:-1])
        return f"{file}: {key}: unknown key{_suggestion(str(loc[-1]), fields)}"
    if kind == "value_error":
        return f"{file}: {key}: {message}"
    if kind == "string_pattern_mismatch":
        message = f"expected {PATTERN_MEANINGS.get(error['ctx']['pattern'], error['ctx']['pattern'])}"
    return f"{file}: {key}: {message[0].lower() + message[1:]}, got {_SHORT.repr(error.get('input'))}"


def _suggestion(key: str, fields: list[str]) -> str:
    """`` (did you mean 'x'?)`` for a misspelt key, from the keys the schema allows at that place."""
    close = difflib.get_close_matches(key, fields, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (expected one of {sorted(fields)})" if fields else ""


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the schema's model at ``loc`` (dict keys skipped), or [] if there is none."""
    annotation: Any = model
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return []
            annotation = field.annotation
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
        else:
            return []
    annotation = _unwrap(annotation)
    return list(annotation.model_fields) if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []


def _unwrap(annotation: Any) -> Any:
    """``X`` for ``Annotated[X, ...]`` and ``X | None``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = options[0] if len(options) == 1 else annotation
            if len(options) != 1:
                return annotation
        else:
            return annotation


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
