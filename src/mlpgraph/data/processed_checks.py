"""Checks of a processed HDF5 file as it is loaded: storage, dtypes, shapes, finite values, index ranges.

A processed file is the preprocess stage's output, but it may be damaged, hand-edited or from
another tool; a NaN in it would otherwise surface much later as a ``LinAlgError`` in training.
Each check raises :class:`UserInputError` naming the file and the dataset.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from mlpgraph.data import schema
from mlpgraph.errors import UserInputError

# Dataset -> (accepted dtype kinds, shape after the first axis; "J" is the joint count).
SPECS: dict[str, tuple[str, tuple[Any, ...]]] = {
    schema.POSES_3D: ("f", ("J", 3)),
    schema.POSES_2D: ("f", ("J", 2)),
    schema.ROOT_3D: ("f", (3,)),
    schema.SUBJECT: ("iu", ()),
    schema.ACTION: ("iu", ()),
    schema.FAMILY: ("iu", ()),
    schema.CAMERA: ("iu", ()),
    schema.FRAME: ("iu", ()),
    schema.SEQUENCE: ("iu", ()),
    schema.SEQUENCES: ("iu", (2,)),
    schema.INTRINSICS: ("f", (6,)),
}
# Per-sample label datasets and the attribute listing their names.
LABELS = {schema.SUBJECT: "subjects", schema.ACTION: "actions", schema.FAMILY: "families"}
REBUILD = "rebuild it with the preprocess stage"


def _error(path: Any, name: str, problem: str) -> UserInputError:
    return UserInputError(f"{path}: dataset {name!r}: {problem} ({REBUILD})")


def check_storage(path: Any, name: str, dataset: h5py.Dataset) -> None:
    """Before reading ``dataset``: its dtype kind and rank, and contiguous storage of exactly its declared size.

    Contiguous uncompressed storage (what the preprocess stage writes) bounds the memory the
    read takes by the file's own bytes.
    """
    kinds, tail = SPECS[name]
    if dataset.dtype.kind not in kinds:
        raise _error(path, name, f"dtype {dataset.dtype}; expected {'floats' if kinds == 'f' else 'integers'}")
    if dataset.ndim != 1 + len(tail):
        raise _error(path, name, f"shape {dataset.shape}; expected {1 + len(tail)} dimensions")
    if dataset.chunks is not None or dataset.compression is not None:
        raise _error(path, name, "stored chunked or compressed; processed files are contiguous")
    declared = dataset.size * dataset.dtype.itemsize
    stored = dataset.id.get_storage_size()
    if stored != declared:
        raise _error(path, name, f"{stored} bytes stored for a declared {dataset.shape} {dataset.dtype} ({declared})")


def _check_shapes(path: Any, data: dict[str, np.ndarray]) -> None:
    """Trailing shapes as in :data:`SPECS`; one sample count, one sequence count, one joint count."""
    joints = data[schema.POSES_3D].shape[1]
    for name, (_, tail) in SPECS.items():
        expected = tuple(joints if dim == "J" else dim for dim in tail)
        if data[name].shape[1:] != expected:
            raise _error(path, name, f"shape {data[name].shape}; expected (N, {', '.join(map(str, expected))})")
    samples = {name: len(data[name]) for name in schema.PER_SAMPLE_DATASETS}
    if len(set(samples.values())) != 1:
        raise UserInputError(f"{path}: per-sample datasets differ in length {samples} ({REBUILD})")
    num_sequences, rows = len(data[schema.SEQUENCES]), len(data[schema.INTRINSICS])
    if rows != num_sequences:
        raise _error(path, schema.INTRINSICS, f"{rows} rows for {num_sequences} sequences")


def _check_finite(path: Any, data: dict[str, np.ndarray]) -> None:
    """Every float dataset finite."""
    for name, (kinds, _) in SPECS.items():
        if kinds == "f":
            bad = ~np.isfinite(data[name])
            if bad.any():
                first = int(np.argwhere(bad)[0, 0])
                raise _error(path, name, f"{int(bad.sum())} NaN or infinite values (first in row {first})")


def _check_indices(path: Any, data: dict[str, np.ndarray], attrs: dict[str, Any]) -> None:
    """Labels within their attribute lists; the sequence index (start, length) covering the samples in order."""
    for name, attr in LABELS.items():
        names = attrs.get(attr)
        if not isinstance(names, list):
            raise UserInputError(f"{path}: attribute {attr!r} must be a JSON list ({REBUILD})")
        values = data[name]
        if len(values) and (values.min() < 0 or values.max() >= len(names)):
            raise _error(path, name, f"values outside 0..{len(names) - 1} (the {attr} attribute has {len(names)})")
    sequences = data[schema.SEQUENCES].astype(np.int64)
    lengths = sequences[:, 1]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    covered = lengths.sum() == len(data[schema.SEQUENCE])
    if np.any(lengths < 1) or not np.array_equal(sequences[:, 0], starts) or not covered:
        raise _error(path, schema.SEQUENCES, "(start, length) rows do not cover the samples back to back")
    expected = np.repeat(np.arange(len(sequences)), lengths)
    if not np.array_equal(data[schema.SEQUENCE], expected):
        raise _error(path, schema.SEQUENCE, "does not match the sequence index (start, length)")


def check_processed(path: Any, data: dict[str, Any]) -> None:
    """All checks of the loaded datasets (and ``data['attrs']``) of one processed file."""
    _check_shapes(path, data)
    _check_finite(path, data)
    _check_indices(path, data, data["attrs"])
