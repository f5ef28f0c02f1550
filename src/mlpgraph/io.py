"""Safe reading and writing of the community's pickled ``.npz`` files, and file fingerprints.

The community's Human3.6M files store Python dicts inside ``.npz`` members, i.e. as pickles.
A pickle can run arbitrary code when loaded, so members with object dtype are decoded here by
a restricted unpickler that admits only numpy arrays, dtypes and scalars and the pickle
protocol's own containers (dict, list, tuple, str, bytes, numbers, bool, None). Anything else
is refused before it is called.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from mlpgraph.errors import UserInputError
from mlpgraph.outputs import atomic_path

# (module, name) pairs a community file may reference. numpy 1.x pickles name `numpy.core`,
# numpy 2.x pickles `numpy._core`; both resolve to the running numpy. `_codecs.encode` turns a
# str into bytes: Python-2-era pickles of numpy arrays use it for the raw buffer.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): __import__("codecs").encode,
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


def _read_member(stream: io.BufferedIOBase, where: str) -> Any:
    """Read one ``.npy`` member; object arrays go through the restricted unpickler."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version in ((2, 0), (3, 0)):
        shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise UserInputError(f"{where}: unsupported .npy format version {version}")
    if not dtype.hasobject:
        count = int(np.prod(shape, dtype=np.int64))
        data = stream.read(count * dtype.itemsize)
        if len(data) != count * dtype.itemsize:
            raise UserInputError(f"{where}: truncated array data")
        array = np.frombuffer(data, dtype=dtype).copy()
        return array.reshape(shape, order="F" if fortran_order else "C")
    try:
        obj = _RestrictedUnpickler(stream, where).load()
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
    Raises :class:`UserInputError` naming the file for anything unreadable or not allowed.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: file not found")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserInputError(f"{path}: not a readable .npz archive ({exc})") from None
    content: dict[str, Any] = {}
    with archive:
        for member in archive.namelist():
            key = member[:-4] if member.endswith(".npy") else member
            with archive.open(member) as raw:
                value = _read_member(io.BufferedReader(raw), f"{path} [key {key}]")
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
