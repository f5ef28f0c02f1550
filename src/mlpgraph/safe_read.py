"""Bounded reading of untrusted files: size caps for ``.npz`` archives and a safe JSON loader.

A user's file may lie: an ``.npy`` header can claim a 77 TB array in a 300-byte archive, a
compressed member can decode to gigabytes, a pickle can build far more objects than it has
bytes, JSON can nest a hundred thousand levels deep or hold ``1e400``. Every check here runs
before the memory is allocated and raises :class:`UserInputError` with one line naming the file.

Caps (docs/data.md, "Checks and limits on input files"), each raised through an environment variable:

- ``MLPGRAPH_MAX_DECODED_MB`` (default 1024): the most one ``.npz`` may decode to, i.e. the sum
  of its members' uncompressed sizes from the zip directory (the largest community file,
  Human3.6M's 3D in float64, decodes to about 400 MB). A pickled member may also build at
  most one object per :data:`BYTES_PER_PICKLE_OBJECT` bytes of that cap.
- ``MLPGRAPH_MAX_JSON_MB`` (default 256): the largest JSON file read.

JSON is also refused when nested deeper than :data:`MAX_JSON_DEPTH`, when it holds ``NaN`` or
``Infinity`` literals, numbers that overflow a float, or integers beyond the int64 range.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import math
import os
import pickletools
import tokenize
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mlpgraph.errors import UserInputError

MB = 1024 * 1024
DECODED_ENV = "MLPGRAPH_MAX_DECODED_MB"
DEFAULT_MAX_DECODED_MB = 1024
JSON_ENV = "MLPGRAPH_MAX_JSON_MB"
DEFAULT_MAX_JSON_MB = 256
# Nesting depth of a JSON document (COCO keypoint files nest 4 levels, camera files 5).
MAX_JSON_DEPTH = 64
# JSON integers must fit int64 (image ids, sizes, track ids); anything beyond is refused.
MAX_JSON_INT = 2**63 - 1
# Memory per object a pickle may build (a small tuple, an int and its memo entry): a pickle may
# create at most cap / this many objects, so unpickling stays within a small multiple of the cap.
BYTES_PER_PICKLE_OBJECT = 64
# What zipfile raises on a damaged archive: a bad directory, an unknown zip version or compression,
# a name flagged UTF-8 that is not, a corrupt deflate stream.
ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError, UnicodeDecodeError, zlib.error)


def cap_bytes(env: str, default_mb: int) -> int:
    """The cap in bytes: ``env`` (megabytes) when set, else ``default_mb``."""
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default_mb * MB
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise UserInputError(f"environment variable {env}={raw!r}: expected a positive number of megabytes")
    return int(value * MB)


def _over_cap(where: str, size: int, cap: int, env: str, what: str) -> UserInputError:
    return UserInputError(
        f"{where}: {what} {size / MB:.1f} MB, over the {round(cap / MB, 3):g} MB limit (set the environment "
        f"variable {env} to a larger number of MB to raise it; see docs/data.md)"
    )


# ------------------------------------------------------------------------------------------ .npz


def check_archive_size(archive: zipfile.ZipFile, where: str) -> int:
    """Refuse an archive whose members decode to more than the cap; return the cap in bytes.

    The sizes are the zip directory's uncompressed sizes, which :mod:`zipfile` enforces while
    decoding (a member never yields more bytes than its directory entry states).
    """
    cap = cap_bytes(DECODED_ENV, DEFAULT_MAX_DECODED_MB)
    total = sum(info.file_size for info in archive.infolist())
    if total > cap:
        raise _over_cap(where, total, cap, DECODED_ENV, "its members decode to")
    return cap


def read_npy_header(stream: io.BufferedIOBase, where: str, member_size: int) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of one ``.npy`` member, its declared size checked against ``member_size``.

    A plain array must fit in the member's bytes (its uncompressed size in the zip directory);
    object arrays (pickles) are bounded by ``member_size`` itself.
    """
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version in ((2, 0), (3, 0)):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise UserInputError(f"{where}: unsupported .npy format version {version}")
    except UserInputError:
        raise
    except (ValueError, TypeError, SyntaxError, EOFError, OSError, tokenize.TokenError, RecursionError) as exc:
        raise UserInputError(f"{where}: malformed .npy header ({type(exc).__name__}: {exc})") from None
    if any(dim < 0 for dim in shape):
        raise UserInputError(f"{where}: .npy header declares a negative dimension {shape}")
    if math.prod(max(dim, 1) for dim in shape) * max(dtype.itemsize, 1) > np.iinfo(np.intp).max:
        raise UserInputError(f"{where}: .npy header declares an impossible shape {shape} (too large for any array)")
    if not dtype.hasobject:
        declared = math.prod(shape) * dtype.itemsize
        if declared > member_size:
            raise UserInputError(
                f"{where}: .npy header declares a {shape} {dtype} array ({declared / MB:.1f} MB) but "
                f"the member holds {member_size} bytes"
            )
    return shape, fortran_order, dtype


def check_pickle_size(data: bytes, where: str, cap: int) -> None:
    """Refuse a pickle that would build more objects than the cap allows (one per opcode at most)."""
    limit = max(cap // BYTES_PER_PICKLE_OBJECT, 1)
    try:
        for count, _ in enumerate(pickletools.genops(data)):
            if count >= limit:
                raise UserInputError(
                    f"{where}: pickled member has more than {limit} opcodes, over the limit of "
                    f"{DECODED_ENV}={round(cap / MB, 3):g} MB / {BYTES_PER_PICKLE_OBJECT} bytes per object "
                    "(set that environment variable to raise it; see docs/data.md)"
                )
    except UserInputError:
        raise
    except Exception as exc:  # any decoding failure of untrusted bytes is the file's fault
        raise UserInputError(f"{where}: unreadable pickled data ({type(exc).__name__}: {exc})") from None


def check_npz(path: str | os.PathLike[str]) -> None:
    """Size checks of an ``.npz`` before :func:`numpy.load` reads it (which trusts the headers).

    The archive's decoded total must be within the cap and every ``.npy`` member's declared
    array size within its bytes.
    """
    where = str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            check_archive_size(archive, where)
            for info in archive.infolist():
                if info.filename.endswith(".npy"):
                    with archive.open(info) as raw:
                        read_npy_header(io.BufferedReader(raw), f"{where} [key {info.filename[:-4]}]", info.file_size)
    except UserInputError:
        raise
    except ZIP_ERRORS as exc:
        raise UserInputError(f"{where}: not a readable .npz archive ({type(exc).__name__}: {exc})") from None


# ------------------------------------------------------------------------------------------ JSON


class JsonSyntaxError(UserInputError):
    """The bytes are not JSON at all (readers that sniff the format tell this case apart)."""


class _ConstantRefusedError(Exception):
    """A ``NaN`` / ``Infinity`` literal, raised from the decoder's hook."""


def _refuse_constant(name: str) -> Any:
    raise _ConstantRefusedError(name)


def _trail_text(trail: tuple[Any, ...] | None) -> str:
    """``[3].keypoints[5]`` from the (parent trail, key) chain; ``the top level`` for none."""
    parts: list[str] = []
    while trail is not None:
        trail, key = trail
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    text = "".join(reversed(parts)).lstrip(".")
    return text or "the top level"


def _check_number(value: Any, trail: tuple[Any, ...] | None, where: str) -> None:
    """Refuse a float that overflowed to infinity or an integer beyond int64."""
    if type(value) is float and not math.isfinite(value):
        raise UserInputError(f"{where}: number at {_trail_text(trail)} overflows a float (JSON numbers must be finite)")
    if type(value) is int and abs(value) > MAX_JSON_INT:
        raise UserInputError(
            f"{where}: integer at {_trail_text(trail)} is out of range (about {int(value.bit_length() * 0.30103) + 1} "
            "digits; at most 19 are accepted)"
        )


_NUMBER_TYPES = {int, float}


def _check_tree(content: Any, where: str) -> None:
    """Depth and number checks over the parsed document, without recursion."""
    _check_number(content, None, where)
    stack: list[tuple[Any, int, tuple[Any, ...] | None]] = [(content, 1, None)]
    while stack:
        node, depth, trail = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise UserInputError(f"{where}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(node, list) and node and set(map(type, node)) <= _NUMBER_TYPES:
            for value in (min(node), max(node)):  # fast path: a flat list of numbers (keypoints)
                _check_number(value, (trail, node.index(value)), where)
            continue
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            kind = type(value)
            if kind is float or kind is int:
                _check_number(value, (trail, key), where)
            elif kind is dict or kind is list:
                stack.append((value, depth + 1, (trail, key)))


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: JSON builds no cycles, and its passes over millions of
    fresh objects would double the parse time of a large file."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_json(data: bytes | str, where: str) -> Any:
    """Parse untrusted JSON text: refuse NaN/Infinity literals, overflowing numbers and deep nesting."""
    try:
        with _no_cyclic_gc():
            content = json.loads(data, parse_constant=_refuse_constant)
            _check_tree(content, where)
    except UserInputError:
        raise
    except _ConstantRefusedError as exc:
        raise UserInputError(f"{where}: JSON holds the literal {exc.args[0]} (numbers must be finite)") from None
    except RecursionError:
        raise UserInputError(f"{where}: JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise JsonSyntaxError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except UnicodeDecodeError:
        raise JsonSyntaxError(f"{where}: not valid JSON (not UTF-8 text)") from None
    except ValueError as exc:  # e.g. an integer longer than Python's digit limit
        raise UserInputError(f"{where}: unreadable JSON ({exc})") from None
    return content


def load_json(path: str | os.PathLike[str], what: str = "file") -> Any:
    """The JSON document in ``path`` (a user's file), size-capped and checked by :func:`parse_json`."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: {what} not found")
    size = path.stat().st_size
    cap = cap_bytes(JSON_ENV, DEFAULT_MAX_JSON_MB)
    if size > cap:
        raise _over_cap(str(path), size, cap, JSON_ENV, "JSON file of")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserInputError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    if len(data) > cap:  # grew since stat
        raise _over_cap(str(path), len(data), cap, JSON_ENV, "JSON file of")
    return parse_json(data, str(path))
