"""Raw directory -> processed HDF5 (mlpgraph.data.preprocess), checked against independent maths."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from mlpgraph.cameras import h36m_cameras_path, load_cameras
from mlpgraph.data import preprocess, schema
from mlpgraph.data.projection import project_dataset
from mlpgraph.errors import UserInputError
from mlpgraph.io import save_community_npz, sha256_file
from mlpgraph.layouts import H36M16, H36M17, H36M32, select_joints

SUBJECTS = ("S1", "S9")
ACTIONS = ("Walking 1", "Eating")
FRAMES = 30


def _figure(frames: int, phase: float) -> np.ndarray:
    """A moving 32-joint stick figure in world metres (Z up) near the capture volume's centre."""
    t = np.arange(frames)[:, None, None] / 50.0
    rng = np.random.default_rng(int(phase * 10))
    base = rng.uniform(-0.3, 0.3, (1, 32, 3)) + np.array([0.0, 0.0, 1.0])
    base[:, 0] = [0.0, 0.0, 0.95]
    wobble = 0.1 * np.sin(2 * np.pi * t + phase + np.arange(32)[None, :, None])
    return (base + wobble + np.array([0.3, -0.2, 0.0]) * t).astype(np.float32)


def make_raw_dir(raw: Path, frames: int = FRAMES) -> dict[str, Any]:
    """2 subjects x 2 actions of ``frames`` frames: 32-joint 3D, projected 17-joint gt 2D."""
    p3d = {
        s: {a: _figure(frames, i + 2 * k) for k, a in enumerate(ACTIONS)}
        for i, s in enumerate(SUBJECTS)
    }
    reduced = {
        s: {a: select_joints(x, H36M32, H36M17) for a, x in acts.items()} for s, acts in p3d.items()
    }
    p2d = project_dataset(reduced, load_cameras())
    raw.mkdir(parents=True, exist_ok=True)
    save_community_npz(raw / schema.RAW_3D, positions_3d=p3d)
    save_community_npz(
        raw / schema.raw_2d_name("gt"), positions_2d=p2d, metadata={"num_joints": 17}
    )
    shutil.copy(h36m_cameras_path(), raw / schema.RAW_CAMERAS)
    return {"p3d": p3d, "p2d": p2d}


def _rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate ``v`` (..., 3) by the unit quaternion q = (w, u): v + 2w(u x v) + 2u x (u x v)."""
    w, u = q[0], q[1:]
    uv = np.cross(u, v)
    return v + 2 * w * uv + 2 * np.cross(u, uv)


def _expected_camera_space(world: np.ndarray, subject: str, cam: int) -> np.ndarray:
    """World -> camera straight from the JSON: X_cam = R^T (X - t), R camera-to-world."""
    content = json.loads(h36m_cameras_path().read_text())
    ext = content["extrinsics"][subject][cam]
    q = np.asarray(ext["orientation"], dtype=np.float64)
    q = q / np.linalg.norm(q)
    conj = q * np.array([1.0, -1.0, -1.0, -1.0])
    return _rotate(conj, world.astype(np.float64) - np.asarray(ext["translation"]) / 1000.0)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("pre")
    content = make_raw_dir(root / "raw")
    out = preprocess.build_hdf5(
        root / "raw", root / "proc" / "synthetic_gt_h36m16.h5", train_subjects=("S1",),
        test_subjects=("S9",), params={"seed": 3},
    )  # fmt: skip
    return {"root": root, "out": out, "data": preprocess.load_processed(out), **content}


def test_round_trip_3d_2d_and_labels(built: dict[str, Any]) -> None:
    data, attrs = built["data"], built["data"]["attrs"]
    assert attrs["subjects"] == list(SUBJECTS)
    assert attrs["actions"] == sorted(ACTIONS)
    assert attrs["families"] == ["Eating", "Walking"]
    assert attrs["layout"] == "h36m16" and attrs["keypoints"] == "gt" and attrs["fps"] == 50
    assert attrs["train_subjects"] == ["S1"] and attrs["test_subjects"] == ["S9"]
    assert attrs["params"] == {"seed": 3} and attrs["complete"] is True
    assert attrs["format_version"] == schema.FORMAT_VERSION
    res = json.loads(h36m_cameras_path().read_text())["intrinsics"]

    n = len(SUBJECTS) * len(ACTIONS) * 4 * FRAMES
    assert data[schema.POSES_3D].shape == (n, 16, 3) and data[schema.POSES_3D].dtype == np.float32
    assert data[schema.POSES_2D].shape == (n, 16, 2) and data[schema.POSES_2D].dtype == np.float32
    assert np.all(data[schema.POSES_3D][:, 0] == 0.0)
    checked = 0
    for seq, (start, length) in enumerate(data[schema.SEQUENCES]):
        rows = slice(start, start + length)
        subject = attrs["subjects"][data[schema.SUBJECT][start]]
        action = attrs["actions"][data[schema.ACTION][start]]
        cam = int(data[schema.CAMERA][start])
        for name in (schema.SUBJECT, schema.ACTION, schema.CAMERA, schema.FAMILY, schema.SEQUENCE):
            assert np.all(data[name][rows] == data[name][start])
        assert data[schema.SEQUENCE][start] == seq
        assert attrs["families"][data[schema.FAMILY][start]] == action.split()[0]
        np.testing.assert_array_equal(data[schema.FRAME][rows], np.arange(length))

        world = select_joints(built["p3d"][subject][action], H36M32, H36M16)
        cam_space = _expected_camera_space(world, subject, cam)
        np.testing.assert_allclose(
            data[schema.POSES_3D][rows], cam_space - cam_space[:, :1], atol=1e-5
        )
        np.testing.assert_allclose(data[schema.ROOT_3D][rows], cam_space[:, 0], atol=1e-5)

        w, h = res[cam]["res_w"], res[cam]["res_h"]
        pixels = select_joints(built["p2d"][subject][action][cam], H36M17, H36M16).astype(
            np.float64
        )
        np.testing.assert_allclose(
            data[schema.POSES_2D][rows], pixels / w * 2 - [1, h / w], atol=1e-5
        )
        f, c = np.array(res[cam]["focal_length"]), np.array(res[cam]["center"])
        expected = [*(f / w * 2), *(c / w * 2 - [1, h / w]), w, h]
        np.testing.assert_allclose(data[schema.INTRINSICS][seq], expected, rtol=1e-6)
        checked += 1
    assert checked == len(SUBJECTS) * len(ACTIONS) * 4


def test_sequence_index_covers_samples_contiguously(built: dict[str, Any]) -> None:
    data = built["data"]
    starts, lengths = data[schema.SEQUENCES].T
    assert starts[0] == 0 and np.all(lengths > 0)
    np.testing.assert_array_equal(starts[1:], starts[:-1] + lengths[:-1])
    assert starts[-1] + lengths[-1] == len(data[schema.POSES_3D])
    np.testing.assert_array_equal(data[schema.SEQUENCE], np.repeat(np.arange(len(starts)), lengths))


def test_dtypes_and_storage_layout(built: dict[str, Any]) -> None:
    dtypes = {
        schema.SUBJECT: np.int16, schema.ACTION: np.int16, schema.FAMILY: np.int16,
        schema.CAMERA: np.int16, schema.FRAME: np.int32, schema.SEQUENCE: np.int32,
        schema.SEQUENCES: np.int64, schema.INTRINSICS: np.float32, schema.ROOT_3D: np.float32,
    }  # fmt: skip
    with h5py.File(built["out"], "r") as handle:
        for name in (*schema.PER_SAMPLE_DATASETS, schema.SEQUENCES, schema.INTRINSICS):
            ds = handle[name]
            assert ds.chunks is None and ds.compression is None, name
            if name in dtypes:
                assert ds.dtype == dtypes[name], name
        assert list(handle.attrs)[-1] == "complete"
        raw_files = json.loads(handle.attrs["raw_files"])
    raw = built["root"] / "raw"
    assert raw_files == {p.name: sha256_file(p) for p in raw.iterdir()}


def test_fingerprint_follows_raw_files(built: dict[str, Any], tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(built["root"] / "raw", raw)
    again = preprocess.build_hdf5(
        raw, tmp_path / "a.h5", train_subjects=("S1",), test_subjects=("S9",)
    )
    first = built["data"]["attrs"]["fingerprint"]
    assert preprocess.load_processed(again)["attrs"]["fingerprint"] == first
    p3d = {s: dict(a) for s, a in built["p3d"].items()}
    p3d["S1"]["Eating"] = p3d["S1"]["Eating"] + np.float32(0.001)
    save_community_npz(raw / schema.RAW_3D, positions_3d=p3d)
    changed = preprocess.build_hdf5(
        raw, tmp_path / "b.h5", train_subjects=("S1",), test_subjects=("S9",)
    )
    assert preprocess.load_processed(changed)["attrs"]["fingerprint"] != first


def test_select_subjects(built: dict[str, Any]) -> None:
    full = built["data"]
    sub = preprocess.load_processed(built["out"], subjects=["S9"])
    keep = full[schema.SUBJECT] == 1
    np.testing.assert_array_equal(sub[schema.POSES_3D], full[schema.POSES_3D][keep])
    assert np.all(sub[schema.SUBJECT] == 1)
    starts, lengths = sub[schema.SEQUENCES].T
    assert starts[0] == 0 and starts[-1] + lengths[-1] == keep.sum()
    np.testing.assert_array_equal(sub[schema.SEQUENCE], np.repeat(np.arange(len(starts)), lengths))
    kept_seqs = np.unique(full[schema.SEQUENCE][keep])
    np.testing.assert_array_equal(sub[schema.INTRINSICS], full[schema.INTRINSICS][kept_seqs])
    with pytest.raises(UserInputError, match=r"subjects \['S5'\] not in the file"):
        preprocess.load_processed(built["out"], subjects=["S5"])


def test_layout_h36m17(tmp_path: Path) -> None:
    make_raw_dir(tmp_path / "raw", frames=5)
    out = preprocess.build_hdf5(tmp_path / "raw", tmp_path / "x.h5", layout="h36m17",
                                train_subjects=("S1",), test_subjects=("S9",))  # fmt: skip
    data = preprocess.load_processed(out)
    assert data[schema.POSES_3D].shape[1:] == (17, 3) and data["attrs"]["layout"] == "h36m17"


def test_failed_write_leaves_nothing(
    built: dict[str, Any], tmp_path: Path, monkeypatch: Any
) -> None:
    out_dir = tmp_path / "proc"
    out_dir.mkdir()
    out = out_dir / "synthetic_gt_h36m16.h5"

    def boom(handle: h5py.File, attrs: dict[str, Any]) -> None:
        handle.attrs["format_version"] = schema.FORMAT_VERSION
        raise RuntimeError("disk full")

    monkeypatch.setattr(preprocess, "_write_attributes", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        preprocess.build_hdf5(
            built["root"] / "raw", out, train_subjects=("S1",), test_subjects=("S9",)
        )
    assert list(out_dir.iterdir()) == []

    shutil.copy(built["out"], out)  # an earlier good build survives a failed rebuild untouched
    before = sha256_file(out)
    with pytest.raises(RuntimeError):
        preprocess.build_hdf5(
            built["root"] / "raw", out, train_subjects=("S1",), test_subjects=("S9",)
        )
    assert sha256_file(out) == before and [p.name for p in out_dir.iterdir()] == [out.name]


def _write_h5(path: Path, **attrs: Any) -> Path:
    with h5py.File(path, "w") as handle:
        handle.create_dataset(schema.POSES_3D, data=np.zeros((1, 16, 3), np.float32))
        for key, value in attrs.items():
            handle.attrs[key] = value
    return path


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p / "none.h5", "processed file not found"),
        (lambda p: (p / "t.h5").write_text("hello") and p / "t.h5", "not a readable HDF5 file"),
        (lambda p: _write_h5(p / "v.h5", format_version=99, complete=True), "format_version 99"),
        (lambda p: _write_h5(p / "i.h5", format_version=schema.FORMAT_VERSION), "incomplete file"),
        (lambda p: _write_h5(p / "m.h5", format_version=schema.FORMAT_VERSION, complete=True),
         "missing datasets"),
    ],
)  # fmt: skip
def test_load_processed_refuses_bad_files(tmp_path: Path, make: Any, expected: str) -> None:
    path = make(tmp_path)
    with pytest.raises(UserInputError, match=expected) as info:
        preprocess.load_processed(path)
    assert path.name in str(info.value)


@pytest.mark.parametrize(
    ("train", "test", "expected"),
    [(("S1",), ("S1", "S9"), "both train_subjects and test_subjects"),
     (("S1", "S5"), ("S9",), r"subjects \['S5'\] of the train/test split are not in the raw data")],
)  # fmt: skip
def test_bad_split(
    built: dict[str, Any], tmp_path: Path, train: tuple, test: tuple, expected: str
) -> None:
    with pytest.raises(UserInputError, match=expected):
        preprocess.build_hdf5(
            built["root"] / "raw", tmp_path / "x.h5", train_subjects=train, test_subjects=test
        )
    assert not (tmp_path / "x.h5").exists()


def test_progress_disabled_under_ci(monkeypatch: Any) -> None:
    from mlpgraph.progress import progress_disabled

    monkeypatch.setenv("CI", "1")
    assert progress_disabled()
