"""Preprocessing: a raw directory (community files + cameras) -> one processed HDF5 file.

The file layout is the contract in :mod:`mlpgraph.data.schema`. Per (subject, action, camera)
sequence: camera-space root-relative 3D, the absolute camera-space root, normalised 2D, integer
labels and the sequence index. Datasets are contiguous and uncompressed (random batch reads from
gzip were about 100 times slower), the file is written under a temporary name and renamed only
when complete, and its ``complete`` attribute is written last.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mlpgraph.data import schema
from mlpgraph.data.actions import ACTION_FAMILIES, action_family
from mlpgraph.data.formats import RawDataset, load_raw_dataset
from mlpgraph.data.processed_checks import check_processed, check_storage
from mlpgraph.errors import UserInputError
from mlpgraph.io import fingerprint
from mlpgraph.layouts import SkeletonLayout, root_relative
from mlpgraph.outputs import atomic_path
from mlpgraph.progress import progress
from mlpgraph.safe_read import parse_json

log = logging.getLogger(__name__)

JSON_ATTRIBUTES = (
    "subjects",
    "actions",
    "families",
    "train_subjects",
    "test_subjects",
    "raw_files",
    "params",
)


def _ordered_families(actions: Iterable[str]) -> list[str]:
    """The families present: Human3.6M's 15 in their canonical order, then custom ones sorted."""
    present = {action_family(a) for a in actions}
    known = [f for f in ACTION_FAMILIES if f in present]
    return known + sorted(present - set(ACTION_FAMILIES))


def _check_split(raw: RawDataset, train: Sequence[str], test: Sequence[str]) -> None:
    both = sorted(set(train) & set(test))
    if both:
        raise UserInputError(f"subjects {both} are in both train_subjects and test_subjects")
    missing = [s for s in (*train, *test) if s not in raw.positions_3d]
    if missing:
        raise UserInputError(
            f"subjects {missing} of the train/test split are not in the raw data "
            f"(it has {sorted(raw.positions_3d)})"
        )
    extra = sorted(set(raw.positions_3d) - set(train) - set(test))
    if extra:
        log.warning("subjects %s are in neither train nor test; kept in the file", extra)


def build_arrays(raw: RawDataset) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """All datasets of the processed file (schema names -> arrays) and the label lists."""
    layout: SkeletonLayout = raw.layout
    root = layout.root
    subjects = list(raw.positions_3d)
    actions = sorted({a for acts in raw.positions_3d.values() for a in acts})
    families = _ordered_families(actions)
    action_index = {a: i for i, a in enumerate(actions)}
    family_index = {f: i for i, f in enumerate(families)}

    jobs = [
        (s, a, c)
        for s in subjects
        for a in raw.positions_3d[s]
        for c in range(len(raw.positions_2d[s][a]))
    ]
    lengths = np.array([raw.positions_3d[s][a].shape[0] for s, a, _ in jobs], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    total, joints = int(lengths.sum()), layout.num_joints
    log.info("building %d samples from %d sequences", total, len(jobs))

    arrays = {
        schema.POSES_3D: np.empty((total, joints, 3), dtype=np.float32),
        schema.POSES_2D: np.empty((total, joints, 2), dtype=np.float32),
        schema.ROOT_3D: np.empty((total, 3), dtype=np.float32),
        schema.SUBJECT: np.empty(total, dtype=np.int16),
        schema.ACTION: np.empty(total, dtype=np.int16),
        schema.FAMILY: np.empty(total, dtype=np.int16),
        schema.CAMERA: np.empty(total, dtype=np.int16),
        schema.FRAME: np.empty(total, dtype=np.int32),
        schema.SEQUENCE: np.empty(total, dtype=np.int32),
        schema.SEQUENCES: np.stack([starts, lengths], axis=1),
        schema.INTRINSICS: np.empty((len(jobs), 6), dtype=np.float32),
    }
    for seq, (subject, action, cam_index) in enumerate(
        progress(jobs, desc="preprocess", unit="seq")
    ):
        camera = raw.cameras.camera(subject, cam_index)
        rows = slice(int(starts[seq]), int(starts[seq] + lengths[seq]))
        cam_3d = camera.world_to_camera(raw.positions_3d[subject][action].astype(np.float64))
        arrays[schema.POSES_3D][rows] = root_relative(cam_3d, root)
        arrays[schema.ROOT_3D][rows] = cam_3d[:, root, :]
        arrays[schema.POSES_2D][rows] = camera.normalise(
            raw.positions_2d[subject][action][cam_index].astype(np.float64)
        )
        arrays[schema.SUBJECT][rows] = subjects.index(subject)
        arrays[schema.ACTION][rows] = action_index[action]
        arrays[schema.FAMILY][rows] = family_index[action_family(action)]
        arrays[schema.CAMERA][rows] = cam_index
        arrays[schema.FRAME][rows] = np.arange(lengths[seq], dtype=np.int32)
        arrays[schema.SEQUENCE][rows] = seq
        focal, centre = camera.normalised_intrinsics()
        arrays[schema.INTRINSICS][seq] = (*focal, *centre, camera.res_w, camera.res_h)
    return arrays, {"subjects": subjects, "actions": actions, "families": families}


def _write_datasets(handle: h5py.File, arrays: dict[str, np.ndarray]) -> None:
    """Each array as one contiguous, uncompressed dataset."""
    for name, array in arrays.items():
        handle.create_dataset(name, data=np.ascontiguousarray(array))


def _write_attributes(handle: h5py.File, attrs: dict[str, Any]) -> None:
    """Attributes (lists and dicts as JSON), then ``complete`` last."""
    for name, value in attrs.items():
        handle.attrs[name] = (
            json.dumps(value, sort_keys=True, default=str) if name in JSON_ATTRIBUTES else value
        )
    handle.attrs["complete"] = True


def build_hdf5(
    raw_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    keypoints: str = "gt",
    layout: str = "h36m16",
    *,
    train_subjects: Sequence[str],
    test_subjects: Sequence[str],
    dataset: str = "synthetic",
    params: dict[str, Any] | None = None,
) -> Path:
    """Read and validate ``raw_dir``, write the processed HDF5 file atomically to ``out_path``.

    The train/test split has no default here: the pipeline takes it from ``params.yaml``
    (``data.train_subjects``, ``data.test_subjects``).
    """
    out_path = Path(out_path)
    raw = load_raw_dataset(raw_dir, keypoints=keypoints, layout=layout)
    _check_split(raw, train_subjects, test_subjects)
    arrays, labels = build_arrays(raw)
    attrs: dict[str, Any] = {
        "format_version": schema.FORMAT_VERSION,
        "dataset": dataset,
        "keypoints": keypoints,
        "layout": raw.layout.name,
        **labels,
        "train_subjects": list(train_subjects),
        "test_subjects": list(test_subjects),
        "fps": raw.fps,
        "fingerprint": fingerprint(raw.files),
        "raw_files": raw.files,
        "params": params or {},
    }
    with atomic_path(out_path) as tmp, h5py.File(tmp, "w", track_order=True) as handle:
        _write_datasets(handle, arrays)
        _write_attributes(handle, attrs)
    log.info("wrote %s (%d samples)", out_path, arrays[schema.POSES_3D].shape[0])
    return out_path


def _read_attributes(handle: h5py.File, path: Path) -> dict[str, Any]:
    """The file's attributes; the JSON ones parsed (a malformed one is the file's fault)."""
    attrs: dict[str, Any] = {}
    for name, value in handle.attrs.items():
        if name in JSON_ATTRIBUTES:
            if not isinstance(value, str | bytes):
                raise UserInputError(f"{path}: attribute {name!r} must be JSON text (rebuild the file)")
            value = parse_json(value, f"{path}: attribute {name!r}")
        elif isinstance(value, np.generic):
            value = value.item()
        elif isinstance(value, bytes):
            value = value.decode()
        attrs[name] = value
    return attrs


def _select_subjects(data: dict[str, Any], subjects: Sequence[str], path: Path) -> dict[str, Any]:
    """Keep the samples and sequences of ``subjects``; renumber the sequence index."""
    names = data["attrs"]["subjects"]
    unknown = [s for s in subjects if s not in names]
    if unknown:
        raise UserInputError(f"{path}: subjects {unknown} not in the file (it has {names})")
    wanted = np.array([names.index(s) for s in subjects], dtype=np.int16)
    keep = np.isin(data[schema.SUBJECT], wanted)
    seq_keep = np.zeros(len(data[schema.SEQUENCES]), dtype=bool)
    seq_keep[np.unique(data[schema.SEQUENCE][keep])] = True
    out = {name: data[name][keep] for name in schema.PER_SAMPLE_DATASETS}
    lengths = data[schema.SEQUENCES][seq_keep, 1]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    out[schema.SEQUENCES] = np.stack([starts, lengths], axis=1)
    new_index = np.cumsum(seq_keep, dtype=np.int64) - 1
    out[schema.SEQUENCE] = new_index[out[schema.SEQUENCE]].astype(np.int32)
    out[schema.INTRINSICS] = data[schema.INTRINSICS][seq_keep]
    out["attrs"] = data["attrs"]
    return out


def load_processed(
    path: str | os.PathLike[str], subjects: Sequence[str] | None = None
) -> dict[str, Any]:
    """Load a processed file into memory: schema dataset name -> array, plus ``attrs`` (a dict).

    Refuses files of another ``format_version``, files without ``complete`` (an interrupted
    build) and datasets of the wrong storage, dtype or shape, with non-finite values or
    inconsistent indices (:mod:`mlpgraph.data.processed_checks`). With ``subjects``, only their
    samples are returned and ``sequences``/``sequence``/``intrinsics`` are renumbered to match.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: processed file not found (run the preprocess stage)")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise UserInputError(f"{path}: not a readable HDF5 file ({exc})") from None
    with handle:
        version = handle.attrs.get("format_version")
        if not isinstance(version, int | np.integer) or int(version) != schema.FORMAT_VERSION:
            raise UserInputError(
                f"{path}: format_version {version}, expected {schema.FORMAT_VERSION} "
                "(rebuild it with the preprocess stage)"
            )
        if not bool(handle.attrs.get("complete", False)):
            raise UserInputError(f"{path}: incomplete file (interrupted build?); rebuild it")
        names = (*schema.PER_SAMPLE_DATASETS, schema.SEQUENCES, schema.INTRINSICS)
        missing = [n for n in names if n not in handle]
        if missing:
            raise UserInputError(f"{path}: missing datasets {missing}")
        for name in names:
            if not isinstance(handle[name], h5py.Dataset):
                raise UserInputError(f"{path}: {name!r} is not a dataset (rebuild it with the preprocess stage)")
            check_storage(path, name, handle[name])
        data: dict[str, Any] = {name: handle[name][()] for name in names}
        data["attrs"] = _read_attributes(handle, path)
    check_processed(path, data)
    if subjects is not None:
        data = _select_subjects(data, subjects, path)
    return data
