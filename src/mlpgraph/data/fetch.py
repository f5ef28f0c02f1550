"""The fetch stage: put the raw data set into ``data/raw`` in the community formats.

``data.source: synthetic`` runs the embedded generator. ``data.source: files`` takes the user's
folder ``data.dir``: the 3D file, the 2D files of ``data.keypoints``, optional MPI-INF-3DHP test
and hard-pose files. Files are validated, then hard-linked (or copied) under canonical names.
A custom data set without 2D gets its 2D by projection through the cameras, exactly like the
synthetic set: its 3D is first mapped to Z up (``data.up_axis: y``) and each sequence centred
on the ground plane, and the 3D written to ``data/raw`` is that converted one.

The whole folder is built under a temporary name and renamed when complete, with
``manifest.json`` (SHA-256 of every file, and where it came from) written last; it replaces an
earlier raw folder only (:mod:`mlpgraph.outputs`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mlpgraph import __version__
from mlpgraph.cameras import CameraSet, h36m_cameras_path, load_cameras
from mlpgraph.data import formats, schema
from mlpgraph.data.projection import centre_on_ground, metadata_2d, project_dataset, y_up_to_z_up
from mlpgraph.errors import UserInputError
from mlpgraph.io import fingerprint, save_community_npz, sha256_file
from mlpgraph.layouts import H36M17, get_layout, layout_for_joint_count, select_joints
from mlpgraph.outputs import RAW, atomic_path
from mlpgraph.params import get
from mlpgraph.safe_read import load_json

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
OPTIONAL_FILES = {  # canonical raw name -> the names a user's folder may hold it under
    schema.RAW_3DHP_PSTMO: (schema.RAW_3DHP_PSTMO,),
    schema.RAW_3DHP_POSEAUG: (schema.RAW_3DHP_POSEAUG,),
    schema.RAW_HARD_POSES: ("whole_body_S0.05_f5_1_gt.npz", schema.RAW_HARD_POSES),
}


def fetch(params: Mapping[str, Any], out_dir: Path, base_dir: Path = Path(".")) -> dict[str, Any]:
    """Write the raw data set described by ``params['data']`` into ``out_dir``; return the manifest.

    Relative paths in the parameters are taken relative to ``base_dir`` (the params file's folder).
    """
    source = get(params, "data.source")
    with atomic_path(out_dir, RAW) as tmp:
        if source == "synthetic":
            origins = _fetch_synthetic(params, tmp)
        elif source == "files":
            origins = _fetch_files(params, tmp, base_dir)
        else:
            raise UserInputError(f"params: data.source must be 'synthetic' or 'files', not {source!r}")
        manifest = write_manifest(tmp, origins, params)
    return manifest


def fetch_inputs(params: Mapping[str, Any], base_dir: Path = Path(".")) -> list[Path]:
    """The user's paths :func:`fetch` reads (``data.dir``, ``data.cameras``; none for synthetic data)."""
    if get(params, "data.source") != "files":
        return []
    found = (_resolve(base_dir, get(params, "data.dir")), _resolve(base_dir, get(params, "data.cameras")))
    return [path for path in found if path is not None]


def _fetch_synthetic(params: Mapping[str, Any], out: Path) -> dict[str, str]:
    from mlpgraph.data.synthetic import generate

    scale, seed = get(params, "data.scale"), int(get(params, "data.seed"))
    layout = get_layout(get(params, "data.layout")).name
    log.info("fetch: generating synthetic Human3.6M (scale %s, seed %d, layout %s)", scale, seed, layout)
    written = generate(out, scale=scale, seed=seed, layout=layout)
    missing = [
        schema.raw_2d_name(kp) for kp in get(params, "data.keypoints") if not (out / schema.raw_2d_name(kp)).is_file()
    ]
    if missing:
        raise UserInputError(
            f"params: data.keypoints asks for {missing}, the synthetic generator writes only gt and hr"
        )
    return {Path(path).name: f"synthetic (scale {scale}, seed {seed})" for path in written.values()}


def _resolve(base_dir: Path, value: str | None) -> Path | None:
    if value is None:
        return None
    path = Path(os.path.expanduser(str(value)))
    return path if path.is_absolute() else base_dir / path


def _fetch_files(params: Mapping[str, Any], out: Path, base_dir: Path) -> dict[str, str]:
    """Validate the user's folder ``data.dir`` and write its files into ``out``; returns each file's origin."""
    data_dir = _resolve(base_dir, get(params, "data.dir"))
    if data_dir is None or not data_dir.is_dir():
        raise UserInputError(f"params: data.dir must name an existing folder for data.source 'files' (got {data_dir})")
    layout = get_layout(get(params, "data.layout"))
    keypoints = list(get(params, "data.keypoints"))
    up_axis = str(get(params, "data.up_axis")).lower()
    if up_axis not in ("y", "z"):
        raise UserInputError(f"params: data.up_axis must be 'y' or 'z', not {up_axis!r}")
    path_3d = data_dir / get(params, "data.file_3d")
    positions_3d = formats.read_positions_3d(path_3d)
    cameras_path = _resolve(base_dir, get(params, "data.cameras")) or h36m_cameras_path()
    cameras = load_cameras(cameras_path)

    given_2d = {
        kp: data_dir / schema.raw_2d_name(kp) for kp in keypoints if (data_dir / schema.raw_2d_name(kp)).is_file()
    }
    missing_2d = [kp for kp in keypoints if kp not in given_2d]
    if [kp for kp in missing_2d if kp != "gt"]:
        raise UserInputError(
            f"{data_dir}: no {schema.raw_2d_name(missing_2d[-1])}; only the gt 2D can be made by projecting the 3D"
        )
    origins: dict[str, str] = {}
    if given_2d:
        if up_axis != "z":
            raise UserInputError(
                f"params: data.up_axis is {up_axis!r} but {data_dir} has 2D files; 3D with 2D must already be "
                "in the cameras' world frame (Z up)"
            )
        _link_or_copy(path_3d, out / schema.RAW_3D)
        origins[schema.RAW_3D] = f"linked from {path_3d}"
        for kp, path in given_2d.items():
            _link_or_copy(path, out / schema.raw_2d_name(kp))
            origins[schema.raw_2d_name(kp)] = f"linked from {path}"
        cameras_json = cameras.raw
        origins[schema.RAW_CAMERAS] = f"copied from {cameras_path}"
    else:
        positions_3d = _canonical_world(positions_3d, up_axis)
        cameras_json = _cameras_for(positions_3d, cameras)
        cameras = CameraSet(cameras_json, str(cameras_path))
        save_community_npz(out / schema.RAW_3D, positions_3d=positions_3d)
        origins[schema.RAW_3D] = f"converted from {path_3d} (up axis {up_axis}, sequences centred on the ground)"
        origins[schema.RAW_CAMERAS] = f"from {cameras_path}, subjects without extrinsics given Human3.6M's"
    if missing_2d:
        _write_projected_2d(positions_3d, cameras, out / schema.raw_2d_name("gt"))
        origins[schema.raw_2d_name("gt")] = "projected from the 3D through the cameras"
    (out / schema.RAW_CAMERAS).write_text(json.dumps(cameras_json, indent=1))
    origins.update(_link_optional(data_dir, out, layout))
    sources = {schema.RAW_3D: str(path_3d), schema.RAW_CAMERAS: str(cameras_path)}
    sources.update({schema.raw_2d_name(kp): str(path) for kp, path in given_2d.items()})
    if missing_2d:
        sources[schema.raw_2d_name("gt")] = f"{path_3d} (its gt 2D projection)"
    with _as_the_users_files(out, data_dir, sources):
        for kp in keypoints:
            formats.load_raw_dataset(out, keypoints=kp, layout=layout.name)
    return origins


def _link_optional(data_dir: Path, out: Path, layout: Any) -> dict[str, str]:
    """Validate and link the optional files (MPI-INF-3DHP test sets, hard poses) ``data_dir`` holds."""
    origins = {}
    for canonical, candidates in OPTIONAL_FILES.items():
        for name in candidates:
            if (data_dir / name).is_file():
                _validate_optional(canonical, data_dir / name, layout)
                _link_or_copy(data_dir / name, out / canonical)
                origins[canonical] = f"linked from {data_dir / name}"
                break
    return origins


@contextlib.contextmanager
def _as_the_users_files(out: Path, data_dir: Path, sources: Mapping[str, str]) -> Iterator[None]:
    """Re-raise a :class:`UserInputError` about the files in the temporary ``out`` naming the user's files.

    ``sources`` maps a canonical raw name to the user's file it came from: a path in ``out`` becomes
    that file (``out`` itself ``data_dir``), and the bare canonical name of the 3D or cameras file
    the user's file name, so a message never points into a folder that is gone after the failure.
    """
    try:
        yield
    except UserInputError as exc:
        names = {str(out / name): source for name, source in sources.items()}
        for name in (schema.RAW_3D, schema.RAW_CAMERAS):
            if name in sources:
                names[name] = Path(sources[name]).name
        names[str(out)] = str(data_dir)
        pattern = "|".join(
            re.escape(key) if key.startswith(str(out)) else rf"(?<![\w/.-]){re.escape(key)}(?![\w])"
            for key in sorted(names, key=len, reverse=True)
        )
        raise UserInputError(re.sub(pattern, lambda found: names[found.group(0)], str(exc))) from exc


def _canonical_world(positions_3d: dict[str, dict[str, np.ndarray]], up_axis: str) -> dict[str, dict[str, np.ndarray]]:
    """Z-up, ground-centred copies of every sequence, ready for projection."""
    out = {}
    for subject, actions in positions_3d.items():
        out[subject] = {}
        for action, seq in actions.items():
            world = y_up_to_z_up(seq) if up_axis == "y" else seq
            out[subject][action] = centre_on_ground(world).astype(np.float32)
    return out


def _cameras_for(positions_3d: Mapping[str, Any], cameras: Any) -> dict[str, Any]:
    """The cameras JSON with extrinsics for every subject; uncalibrated subjects borrow a Human3.6M subject's."""
    content = json.loads(json.dumps(cameras.raw))
    calibrated = cameras.subjects
    if not calibrated:
        raise UserInputError(f"{cameras.source}: no subject has camera extrinsics")
    for i, subject in enumerate(sorted(positions_3d)):
        if subject not in calibrated:
            content["extrinsics"][subject] = content["extrinsics"][calibrated[i % len(calibrated)]]
    return content


def _write_projected_2d(positions_3d: dict[str, dict[str, np.ndarray]], cameras: Any, path: Path) -> None:
    """The gt 2D file made by projection, in h36m17 (or the 3D's own 16 joints)."""
    num_joints = next(iter(next(iter(positions_3d.values())).values())).shape[1]
    source = layout_for_joint_count(num_joints, str(path))
    target = source if source.num_joints == 16 else H36M17
    reduced = {
        s: {a: select_joints(seq, source, target) for a, seq in acts.items()} for s, acts in positions_3d.items()
    }
    save_community_npz(path, positions_2d=project_dataset(reduced, cameras), metadata=metadata_2d(target))


def _validate_optional(canonical: str, path: Path, layout: Any) -> None:
    if canonical == schema.RAW_HARD_POSES:
        formats.read_hard_poses(path)
    else:
        formats.read_3dhp_test(path, layout=layout.name)


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (same file system), else copy it."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def write_manifest(raw_dir: Path, origins: Mapping[str, str], params: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``manifest.json``: each file's SHA-256, size and origin, and the fingerprint over them all."""
    files = {}
    for path in sorted(p for p in raw_dir.iterdir() if p.is_file() and p.name != schema.RAW_MANIFEST):
        files[path.name] = {
            "sha256": sha256_file(path),
            "bytes": path.stat().st_size,
            "origin": origins.get(path.name, ""),
        }
    manifest = {
        "format_version": MANIFEST_VERSION,
        "created_by": f"mlpgraph {__version__}",
        "source": get(params, "data.source"),
        "data_params": dict(get(params, "data")),
        "files": files,
        "fingerprint": fingerprint({name: entry["sha256"] for name, entry in files.items()}),
    }
    (raw_dir / schema.RAW_MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(raw_dir: Path) -> dict[str, Any]:
    """The manifest of a raw folder, with a clear error when it is missing."""
    path = Path(raw_dir) / schema.RAW_MANIFEST
    if not path.is_file():
        raise UserInputError(f"{path}: no manifest; run the fetch stage first")
    manifest = load_json(path, "manifest")
    if not isinstance(manifest, dict):
        raise UserInputError(f"{path}: the manifest must be a JSON object; run the fetch stage again")
    return manifest
