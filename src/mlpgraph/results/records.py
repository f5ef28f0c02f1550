"""The machinery of :mod:`mlpgraph.results`: records to and from JSON, checked, and their files.

A record is a frozen, keyword-only dataclass deriving from :class:`Record` whose fields, in
declaration order, are its JSON object's keys in the order the stages write them. Field types
say what the file must hold (``str``, ``int``, ``float``, ``bool``, ``X | None``, ``Literal``,
``dict[str, X]``, ``tuple[X, ...]`` for lists, nested records, ``Any``); a field with
``metadata=OPTIONAL_KEY`` is absent from the file when None, one with ``metadata=FLATTEN``
holds the object's remaining keys.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from mlpgraph.errors import UserInputError
from mlpgraph.outputs import atomic_path

# Field metadata: the key is written only when the value is not None.
OPTIONAL_KEY: Mapping[str, bool] = {"optional key": True}
# Field metadata: a mapping whose entries are the object's keys that no other field declares.
FLATTEN: Mapping[str, bool] = {"flatten": True}


def _optional(field: dataclasses.Field) -> bool:
    return bool(field.metadata.get("optional key"))


def _flattened(field: dataclasses.Field) -> bool:
    return bool(field.metadata.get("flatten"))


def _plain(value: Any) -> Any:
    """``value`` as JSON-ready data: records as dicts, tuples as lists, mappings copied."""
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(where: str, key: str, problem: str) -> UserInputError:
    return UserInputError(f"{where}: field {key!r} {problem}")


def _join(key: str, part: str) -> str:
    return f"{key}.{part}" if key else part


# The scalar types of the records' fields: what the file must hold, and the check.
_SCALARS: dict[type, tuple[str, Any]] = {
    bool: ("true or false", lambda v: isinstance(v, bool)),
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    float: ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    str: ("a string", lambda v: isinstance(v, str)),
}


def _convert(value: Any, hint: Any, where: str, key: str) -> Any:
    """``value`` checked against the type ``hint`` (records rebuilt, lists as tuples); the file is ``where``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _convert(value, inner, where, key)
    if origin is Literal:
        if not any(type(value) is type(arg) and value == arg for arg in args):
            raise _fail(where, key, f"must be {' or '.join(map(json.dumps, args))}, got {_short(value)}")
        return value
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _fail(where, key, f"must be a JSON object, got {_short(value)}")
        return {str(k): _convert(v, args[1], where, _join(key, str(k))) for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list):
            raise _fail(where, key, f"must be a list, got {_short(value)}")
        return tuple(_convert(item, args[0], where, f"{key}[{i}]") for i, item in enumerate(value))
    if isinstance(hint, type) and issubclass(hint, Record):
        return hint.parse(value, where, key)
    what, check = _SCALARS[hint]
    if not check(value):
        raise _fail(where, key, f"must be {what}, got {_short(value)}")
    return value


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


R = TypeVar("R", bound="Record")


class Record:
    """A metrics file, or an object inside one: to and from its JSON content, key order kept."""

    @classmethod
    def matches(cls, data: Mapping[str, Any]) -> bool:
        """Whether ``data`` is this kind of file (:func:`read_record` picks by it); by default: not a skip."""
        return data.get("available") is not False

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready content, keys in the file's order (absent optional keys left out)."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if _flattened(field):
                out.update(_plain(value))
            elif value is not None or not _optional(field):
                out[field.name] = _plain(value)
        return out

    @classmethod
    def from_dict(cls: type[R], data: Mapping[str, Any], where: str = "record") -> R:
        """The record of ``data`` (a file's content); ``where`` (the file) names it in the one-line errors."""
        return cls.parse(data, where, "")

    @classmethod
    def parse(cls: type[R], data: Any, where: str, key: str) -> R:
        """The record of ``data``, the object at ``key`` (dotted, "" for the top level) of the file ``where``."""
        if not isinstance(data, Mapping):
            raise UserInputError(f"{where}: {f'field {key!r}' if key else 'the top level'} must be a JSON object")
        hints = _hints(cls)
        declared = {field.name for field in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            if _flattened(field):
                rest = {k: v for k, v in data.items() if k not in declared}
                values[field.name] = _convert(rest, hints[field.name], where, key)
            elif field.name in data:
                values[field.name] = _convert(data[field.name], hints[field.name], where, _join(key, field.name))
            elif not _optional(field):
                raise UserInputError(f"{where}: missing field {_join(key, field.name)!r}")
        return cls(**values)


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; a missing, unreadable or malformed file is a one-line error naming it."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise UserInputError(f"{path}: metrics file not found (run the stage that writes it first)") from None
    except OSError as exc:
        raise UserInputError(f"{path}: cannot read the metrics file ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: expected a JSON object at the top level")
    return data


def read_record(path: Path, *kinds: type[R]) -> R:
    """The record in ``path``, of the first of ``kinds`` whose :meth:`Record.matches` accepts the content."""
    data = read_json(path)
    for kind in kinds:
        if kind.matches(data):
            return kind.from_dict(data, str(path))
    expected = " or ".join(kind.__name__ for kind in kinds)
    raise UserInputError(f"{path}: not a {expected} file (available: {_short(data.get('available'))})")


def write_record(path: str | Path, content: Record) -> None:
    """``content`` as indented JSON with a trailing newline at ``path``, written atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(content.to_dict(), indent=2, sort_keys=False) + "\n")

