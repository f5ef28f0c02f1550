"""Safe reading and writing of the community's pickled ``.npz`` files, and file fingerprints.

The community's Human3.6M files store Python dicts inside ``.npz`` members, i.e. as pickles.
A pickle can run arbitrary code when loaded, so members with object dtype are decoded here by
a restricted unpickler that admits only numpy arrays, dtypes and scalars and the pickle
protocol's own containers (dict, list, tuple, str, bytes, numbers, bool, None). Anything else
is refused before it is called. Sizes are checked before anything is allocated
(:mod:`mlpgraph.safe_read`): the archive's decoded total, each header's declared array size, the
object count of each pickle.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from mlpgraph.errors import UserInputError
from mlpgraph.outputs import atomic_path
from mlpgraph.safe_read import ZIP_ERRORS, check_archive_size, check_pickle_size, read_npy_header

_LATIN1_NAMES = ("latin1", "latin-1", "latin_1", "iso-8859-1", "iso8859-1", "iso8859_1", "l1")


def _latin1_encode(text: Any, encoding: Any = "latin1") -> bytes:
    """``codecs.encode`` restricted to the latin-1 round trip pickles use for raw bytes."""
    if not isinstance(text, str) or not isinstance(encoding, str) or encoding.lower() not in _LATIN1_NAMES:
        raise pickle.UnpicklingError(f"_codecs.encode is allowed for str to latin-1 only, not {encoding!r}")
    return text.encode("latin-1")


# (module, name) pairs a community file may reference. numpy 1.x pickles name `numpy.core`,
# numpy 2.x pickles `numpy._core`; both resolve to the running numpy. `_codecs.encode` turns a
# str into bytes: Python-2-era pickles of numpy arrays use it (latin-1) for the raw buffer.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}
for _core in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED_GLOBALS[(_core, "_reconstruct")] = np.ndarray.__reduce__(np.zeros(0))[0]
    _ALLOWED_GLOBALS[(_core, "scalar")] = np.float32(0).__reduce__()[0]
for _core in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED_GLOBALS[(_core, "_frombuffer")] = np.frombuffer


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose only reachable globals are the numpy reconstructors above."""

    def __init__(self, file: io.BufferedIOBase, where: str) -> None:
        super().__init__(file)
        self._where = where

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UserInputError(
                f"{self._where}: refused to unpickle {module}.{name} (only numpy arrays, dtypes, "
                "dicts, lists, tuples, strings and numbers are allowed)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UserInputError(f"{self._where}: refused a pickle persistent id")


def _read_member(stream: io.BufferedIOBase, where: str, member_size: int, cap: int) -> Any:
    """Read one ``.npy`` member of ``member_size`` bytes; object arrays go through the restricted unpickler.

    The header's declared size must fit in ``member_size``; a pickle may build at most the
    object count that ``cap`` allows (:func:`mlpgraph.safe_read.check_pickle_size`).
    """
    shape, fortran_order, dtype = read_npy_header(stream, where, member_size)
    if not dtype.hasobject:
        nbytes = math.prod(shape) * dtype.itemsize
        data = stream.read(nbytes)
        if len(data) != nbytes:
            raise UserInputError(f"{where}: truncated array data")
        array = np.frombuffer(data, dtype=dtype).copy()
        return array.reshape(shape, order="F" if fortran_order else "C")
    payload = stream.read(member_size)
    check_pickle_size(payload, where, cap)
    try:
        obj = _RestrictedUnpickler(io.BytesIO(payload), where).load()
    except UserInputError:
        raise
    except Exception as exc:  # any decoding failure of untrusted bytes is the file's fault
        raise UserInputError(f"{where}: unreadable pickled data ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, np.ndarray):
        raise UserInputError(f"{where}: pickled member is a {type(obj).__name__}, not an array")
    return obj


def load_community_npz(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a community ``.npz`` (pickled dicts inside) as plain Python and numpy objects.

    0-d object arrays (how ``np.savez`` stores a dict) are unwrapped to the object they hold.
    Raises :class:`UserInputError` naming the file for anything unreadable or not allowed, and
    for archives over the decoded-size cap (``MLPGRAPH_MAX_DECODED_MB``, docs/data.md).
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: file not found")
    try:
        archive = zipfile.ZipFile(path)
    except ZIP_ERRORS as exc:
        raise UserInputError(f"{path}: not a readable .npz archive ({exc})") from None
    content: dict[str, Any] = {}
    with archive:
        cap = check_archive_size(archive, str(path))
        for info in archive.infolist():
            member = info.filename
            key = member[:-4] if member.endswith(".npy") else member
            where = f"{path} [key {key}]"
            try:
                with archive.open(info) as raw:
                    value = _read_member(io.BufferedReader(raw), where, info.file_size, cap)
            except ZIP_ERRORS as exc:
                raise UserInputError(f"{where}: unreadable archive member ({type(exc).__name__}: {exc})") from None
            if isinstance(value, np.ndarray) and value.dtype.hasobject and value.ndim == 0:
                value = value.item()
            content[key] = value
    return content


def _as_npz_value(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    holder = np.empty((), dtype=object)
    holder[()] = value
    return holder


def save_community_npz(path: str | os.PathLike[str], compress: bool = True, **content: Any) -> None:
    """Write ``content`` as a community-style ``.npz`` (dicts pickled in 0-d object arrays), atomically."""
    arrays = {key: _as_npz_value(value) for key, value in content.items()}
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        (np.savez_compressed if compress else np.savez)(handle, **arrays)


def sha256_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(hashes: dict[str, str]) -> str:
    """SHA-256 over ``name:sha256`` lines sorted by name: one hash for a set of files."""
    lines = "".join(f"{name}:{digest}\n" for name, digest in sorted(hashes.items()))
    return hashlib.sha256(lines.encode()).hexdigest()
