"""The fetch stage: synthetic data, the user's files, a real motion-capture custom data set, and its errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mlpgraph.data import schema
from mlpgraph.data.fetch import fetch, read_manifest
from mlpgraph.data.formats import read_positions_3d
from mlpgraph.data.preprocess import build_hdf5, load_processed
from mlpgraph.errors import UserInputError
from mlpgraph.io import load_community_npz, save_community_npz, sha256_file
from mlpgraph.layouts import H36M17
from mlpgraph.params import with_defaults

REAL_MOCAP = Path(__file__).parent / "data" / "real_mocap"

BASE = {
    "data": {
        "source": "synthetic",
        "name": "synthetic",
        "dir": None,
        "file_3d": "data_3d_h36m.npz",
        "cameras": None,
        "up_axis": "z",
        "layout": "h36m16",
        "keypoints": ["gt", "hr"],
        "scale": "tiny",
        "seed": 0,
        "train_subjects": ["S1", "S5", "S6", "S7", "S8"],
        "test_subjects": ["S9", "S11"],
    }
}


def params(**data):
    return with_defaults({"data": data}, BASE)


@pytest.fixture(scope="module")
def synthetic_raw(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fetch") / "raw"
    fetch(params(), out)
    return out


def test_synthetic_fetch_writes_the_community_files_and_a_manifest(synthetic_raw):
    manifest = read_manifest(synthetic_raw)
    expected = {schema.RAW_3D, schema.raw_2d_name("gt"), schema.raw_2d_name("hr"), schema.RAW_CAMERAS}
    assert expected | {schema.RAW_3DHP_PSTMO} <= set(manifest["files"])
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_file(synthetic_raw / name)
    assert manifest["source"] == "synthetic" and len(manifest["fingerprint"]) == 64
    assert not [p for p in synthetic_raw.parent.iterdir() if p.name.startswith(".tmp-")]


def test_synthetic_fetch_is_deterministic(synthetic_raw, tmp_path):
    fetch(params(), tmp_path / "again")
    assert read_manifest(tmp_path / "again")["fingerprint"] == read_manifest(synthetic_raw)["fingerprint"]
    fetch(params(seed=1), tmp_path / "other")
    assert read_manifest(tmp_path / "other")["fingerprint"] != read_manifest(synthetic_raw)["fingerprint"]


def test_user_files_are_validated_and_linked(synthetic_raw, tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    for name in (schema.RAW_3D, schema.raw_2d_name("gt"), schema.raw_2d_name("hr"), schema.RAW_3DHP_PSTMO):
        shutil.copy2(synthetic_raw / name, user / name)
    fetch(params(source="files", dir=str(user)), tmp_path / "raw")
    manifest = read_manifest(tmp_path / "raw")
    for name in (schema.RAW_3D, schema.raw_2d_name("hr"), schema.RAW_3DHP_PSTMO):
        assert manifest["files"][name]["sha256"] == sha256_file(user / name)
        assert manifest["files"][name]["origin"] == f"linked from {user / name}"
    assert json.loads((tmp_path / "raw" / schema.RAW_CAMERAS).read_text())["intrinsics"]


def test_relative_data_dir_is_taken_from_the_params_folder(synthetic_raw, tmp_path):
    (tmp_path / "mine").mkdir()
    shutil.copy2(synthetic_raw / schema.RAW_3D, tmp_path / "mine" / schema.RAW_3D)
    fetch(params(source="files", dir="mine", keypoints=["gt"]), tmp_path / "raw", base_dir=tmp_path)
    assert "projected" in read_manifest(tmp_path / "raw")["files"][schema.raw_2d_name("gt")]["origin"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dir": "absent"}, "data.dir must name an existing folder"),
        ({"keypoints": ["gt", "cpn_ft_h36m_dbb"]}, "no data_2d_h36m_cpn_ft_h36m_dbb.npz; only the gt 2D can be made"),
        ({"up_axis": "y"}, "data.up_axis is 'y' but"),
        ({"up_axis": "x"}, "data.up_axis must be 'y' or 'z'"),
        ({"file_3d": "nothing.npz"}, "nothing.npz: file not found"),
    ],
)
def test_files_source_errors(synthetic_raw, tmp_path, overrides, message):
    user = tmp_path / "user"
    user.mkdir()
    for name in (schema.RAW_3D, schema.raw_2d_name("gt")):
        shutil.copy2(synthetic_raw / name, user / name)
    overrides = {"dir": str(user), "keypoints": ["gt"], **overrides}
    if overrides["dir"] == "absent":
        overrides["dir"] = str(tmp_path / "absent")
    with pytest.raises(UserInputError, match=message):
        fetch(params(source="files", **overrides), tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_short_2d_in_user_files_is_refused_at_fetch(synthetic_raw, tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    shutil.copy2(synthetic_raw / schema.RAW_3D, user / schema.RAW_3D)
    content = load_community_npz(synthetic_raw / schema.raw_2d_name("gt"))
    subject = sorted(content["positions_2d"])[0]
    action = sorted(content["positions_2d"][subject])[0]
    content["positions_2d"][subject][action][2] = content["positions_2d"][subject][action][2][:-5]
    save_community_npz(user / schema.raw_2d_name("gt"), **content)
    with pytest.raises(UserInputError, match=rf"subject {subject}.*{action}.*camera 2"):
        fetch(params(source="files", dir=str(user), keypoints=["gt"]), tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def _bone_lengths(poses: np.ndarray, layout) -> np.ndarray:
    child, parent = layout.bones.T
    return np.linalg.norm(poses[..., child, :] - poses[..., parent, :], axis=-1)


def test_real_mocap_runs_through_fetch_and_preprocess(tmp_path):
    """Real CMU / mocapdata.com clips (17 joints, metres, Y up) as a custom data set."""
    assert (REAL_MOCAP / "README.md").is_file(), "the attribution README must travel with the data"
    real = params(
        source="files",
        name="realmocap",
        dir=str(REAL_MOCAP),
        file_3d="real_mocap_A.npz",
        up_axis="y",
        keypoints=["gt"],
        layout="h36m17",
        train_subjects=["CMU_S01", "EyesJapan_S1"],
        test_subjects=["CMU_S11"],
    )
    fetch(real, tmp_path / "raw")
    manifest = read_manifest(tmp_path / "raw")
    assert "converted" in manifest["files"][schema.RAW_3D]["origin"]
    out = build_hdf5(tmp_path / "raw", tmp_path / "real.h5", keypoints="gt", layout="h36m17",
                     train_subjects=real["data"]["train_subjects"], test_subjects=real["data"]["test_subjects"],
                     dataset="realmocap")  # fmt: skip
    data = load_processed(out)
    poses_3d, poses_2d = data["poses_3d"], data["poses_2d"]
    assert poses_3d.shape[1:] == (17, 3) and np.all(poses_3d[:, 0] == 0)
    # Rigid transforms keep every bone's length: compare with the original file's bones.
    original = read_positions_3d(REAL_MOCAP / "real_mocap_A.npz")
    before = np.concatenate([_bone_lengths(seq, H36M17).ravel() for acts in original.values() for seq in acts.values()])
    after = _bone_lengths(poses_3d, H36M17)
    assert np.isclose(np.median(after), np.median(before), atol=1e-3)
    # Upright in the camera image: head above the ankles (image y grows downwards), in front of the camera.
    head, ankles = H36M17.index("head"), [H36M17.index("left_ankle"), H36M17.index("right_ankle")]
    assert np.mean(poses_2d[:, head, 1] < poses_2d[:, ankles, 1].min(axis=1)) > 0.9
    assert np.all(data["root_3d"][:, 2] > 1.0)
    # Inside the image for nearly every joint-frame (normalised x in [-1, 1]).
    assert np.mean(np.abs(poses_2d[..., 0]) <= 1.0) > 0.98


def _hard_pose_file(path: Path, poses_2d: np.ndarray, poses_3d: np.ndarray) -> None:
    """The release's hard-pose format: object arrays whose item 0 holds the poses."""
    holders = {}
    for key, poses in (("pose_2d", poses_2d), ("pose_3d", poses_3d)):
        holder = np.empty(1, dtype=object)
        holder[0] = poses
        holders[key] = holder
    np.savez(path, **holders)


def test_optional_hard_pose_file_is_validated_and_linked(synthetic_raw, tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    shutil.copy2(synthetic_raw / schema.RAW_3D, user / schema.RAW_3D)
    rng = np.random.default_rng(0)
    poses_3d = rng.normal(scale=0.3, size=(40, 16, 3)).astype(np.float32)
    poses_2d = rng.uniform(-0.8, 0.8, size=(40, 16, 2)).astype(np.float32)
    _hard_pose_file(user / "whole_body_S0.05_f5_1_gt.npz", poses_2d, poses_3d)
    fetch(params(source="files", dir=str(user), keypoints=["gt"]), tmp_path / "raw")
    origin = read_manifest(tmp_path / "raw")["files"][schema.RAW_HARD_POSES]["origin"]
    assert origin.endswith("whole_body_S0.05_f5_1_gt.npz")

    _hard_pose_file(user / "whole_body_S0.05_f5_1_gt.npz", poses_2d * 500, poses_3d)  # pixels, not normalised
    with pytest.raises(UserInputError, match="whole_body_S0.05_f5_1_gt.npz"):
        fetch(params(source="files", dir=str(user), keypoints=["gt"]), tmp_path / "raw2")
    assert not (tmp_path / "raw2").exists()
