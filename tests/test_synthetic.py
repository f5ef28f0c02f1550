"""The synthetic Human3.6M generator: formats, determinism, anatomy, 2D noise and the 3DHP set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlpgraph.cameras import load_cameras
from mlpgraph.data import motion, synthetic
from mlpgraph.data.actions import ACTION_FAMILIES, action_family
from mlpgraph.data.motion import kinematics
from mlpgraph.errors import UserInputError
from mlpgraph.io import load_community_npz
from mlpgraph.layouts import H36M16, H36M17, H36M32, MPI3DHP17

TINY = synthetic.SCALES["tiny"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return synthetic.generate(tmp_path_factory.mktemp("synthetic"), scale="tiny", seed=0)


@pytest.fixture(scope="module")
def data(generated: dict[str, Path]) -> dict[str, dict]:
    return {
        "3d": load_community_npz(generated["data_3d_h36m"])["positions_3d"],
        "gt": load_community_npz(generated["data_2d_h36m_gt"]),
        "hr": load_community_npz(generated["data_2d_h36m_hr"]),
        "3dhp": load_community_npz(generated["data_test_3dhp"])["data"],
    }


def _sequences(positions: dict) -> list[tuple[str, str, np.ndarray]]:
    return [(s, a, x) for s, acts in positions.items() for a, x in acts.items()]


def test_files_and_formats(generated: dict[str, Path], data: dict[str, dict]) -> None:
    assert all(path.is_file() for path in generated.values())
    assert generated["cameras"].read_text() == synthetic.h36m_cameras_path().read_text()
    positions = data["3d"]
    assert tuple(positions) == synthetic.SUBJECTS
    for subject, acts in positions.items():
        assert tuple(acts) == synthetic.ACTIONS
        frames = TINY.train_frames_per_take if subject in synthetic.TRAIN_SUBJECTS else TINY.test_frames_per_take
        for action, seq in acts.items():
            assert seq.dtype == np.float32 and seq.shape == (frames, 32, 3)
            assert np.isfinite(seq).all()
            for kind in ("gt", "hr"):
                views = data[kind]["positions_2d"][subject][action]
                assert len(views) == synthetic.NUM_CAMERAS
                for view in views:
                    assert view.dtype == np.float32 and view.shape == (frames, 16, 2)
                    assert np.isfinite(view).all()
    for kind in ("gt", "hr"):
        assert data[kind]["metadata"] == {
            "layout_name": "h36m",
            "num_joints": 16,
            "keypoints_symmetry": [list(H36M16.left_joints), list(H36M16.right_joints)],
        }
    families = {action_family(a) for a in synthetic.ACTIONS}
    assert families == set(ACTION_FAMILIES) and len(synthetic.ACTIONS) == 30
    assert {"Walking", "Walking 1", "Eating 2", "Photo", "WalkDog 1"} <= set(synthetic.ACTIONS)


def test_scale_totals() -> None:
    full = synthetic.SCALES["full"]
    assert abs(full.train_poses_2d - 1_560_000) < 20_000
    assert abs(full.test_poses_2d - 540_000) < 20_000
    assert TINY.train_poses_2d < synthetic.SCALES["small"].train_poses_2d < full.train_poses_2d


def test_other_seed_differs(data: dict[str, dict]) -> None:
    other = synthetic.generate_positions_3d("tiny", seed=1)
    for subject, action, seq in _sequences(other):
        assert not np.allclose(seq, data["3d"][subject][action])
    assert not np.allclose(synthetic.generate_3dhp("tiny", 1)["TS3"]["data_3d"], data["3dhp"]["TS3"]["data_3d"])


def test_deterministic_files(tmp_path: Path, generated: dict[str, Path]) -> None:
    again = synthetic.generate(tmp_path, scale="tiny", seed=0)
    first = {name: load_community_npz(path) for name, path in generated.items() if path.suffix == ".npz"}
    second = {name: load_community_npz(path) for name, path in again.items() if path.suffix == ".npz"}
    assert first.keys() == second.keys()

    def same(x: object, y: object) -> bool:
        if isinstance(x, dict):
            return isinstance(y, dict) and x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
        if isinstance(x, list):
            return isinstance(y, list) and len(x) == len(y) and all(map(same, x, y))
        if isinstance(x, np.ndarray):
            return isinstance(y, np.ndarray) and x.dtype == y.dtype and np.array_equal(x, y)
        return x == y

    assert all(same(first[name], second[name]) for name in first)


def test_bone_lengths_constant_and_human(data: dict[str, dict]) -> None:
    bones = H36M32.bones
    per_subject = {}
    for subject, acts in data["3d"].items():
        seqs = np.concatenate(list(acts.values()))
        lengths = np.linalg.norm(seqs[:, bones[:, 0]] - seqs[:, bones[:, 1]], axis=-1)
        assert lengths.std(axis=0).max() < 1e-4
        per_subject[subject] = lengths.mean(axis=0)
        named = dict(zip((H36M32.joint_names[c] for c in bones[:, 0]), per_subject[subject], strict=True))
        assert 0.38 < named["right_knee"] < 0.53  # thigh
        assert 0.38 < named["left_ankle"] < 0.53  # shin
        assert 0.22 < named["right_elbow"] < 0.33  # upper arm
        assert 0.20 < named["left_wrist"] < 0.30  # forearm
    subjects = list(per_subject)
    for i, a in enumerate(subjects):
        for b in subjects[i + 1 :]:
            assert np.abs(per_subject[a] - per_subject[b]).max() > 0.003


def test_bone_lengths_helper() -> None:
    s1 = motion.subject_bone_lengths("S1", 0)
    assert s1 == motion.subject_bone_lengths("S1", 0)
    assert s1 != motion.subject_bone_lengths("S9", 0)
    assert set(s1) == set(kinematics.BONE_MEANS)


def test_forward_kinematics_preserves_lengths() -> None:
    rng = np.random.default_rng(3)
    parents = (-1, 0, 1, 1)
    offsets = rng.normal(size=(4, 3))
    angles = rng.uniform(-180, 180, size=(50, 4, 3))
    rotations = kinematics.rot_z(angles[..., 0]) @ kinematics.rot_x(angles[..., 1]) @ kinematics.rot_y(angles[..., 2])
    pos = kinematics.forward_kinematics(parents, offsets, rotations, rng.normal(size=(50, 3)))
    for child, parent in ((1, 0), (2, 1), (3, 1)):
        length = np.linalg.norm(pos[:, child] - pos[:, parent], axis=-1)
        assert np.allclose(length, np.linalg.norm(offsets[child]))


def test_anatomy_floor_and_motion(data: dict[str, dict]) -> None:
    feet = list(kinematics.FOOT_JOINTS)
    features: dict[str, list[np.ndarray]] = {}
    spreads = []
    for _, action, seq in _sequences(data["3d"]):
        assert seq[:, feet, 2].min() >= -0.01
        assert np.abs(seq[:, feet, 2].min(axis=1) - kinematics.FLOOR_CLEARANCE).max() < 1e-5
        pelvis_z = seq[:, 0, 2]
        assert pelvis_z.min() > 0.03 and pelvis_z.max() < 1.25
        assert np.linalg.norm(seq[:, 0, :2], axis=-1).max() < 2.2  # inside the capture volume
        rel = seq - seq[:, :1]
        spread = rel.std(axis=0).mean()
        assert spread > 0.005  # every take moves
        spreads.append(spread)
        feat = np.concatenate([rel[..., 2].mean(0), np.linalg.norm(rel[..., :2], axis=-1).mean(0)])
        features.setdefault(action_family(action), []).append(feat)
    assert np.mean(spreads) > 0.02
    centroids = np.array([np.mean(features[f], axis=0) for f in ACTION_FAMILIES])
    dist = np.linalg.norm(centroids[:, None] - centroids[None], axis=-1)
    np.fill_diagonal(dist, np.inf)
    assert dist.min() > 0.05  # the 15 families have distinct mean poses
    sitting_knee = np.mean([f[H36M32.index("right_knee")] for f in features["Sitting"]])
    walking_knee = np.mean([f[H36M32.index("right_knee")] for f in features["Walking"]])
    assert sitting_knee > walking_knee + 0.3  # seated: knees near pelvis height


def test_angles_clipped_to_limits() -> None:
    rng = motion.make_rng(0, "limits")
    bones = motion.subject_bone_lengths("S1")
    for family in ACTION_FAMILIES:
        take = motion.family_take(family, 200, rng, bones)
        clipped = kinematics.clip_to_limits(take.angles)
        for name, course in clipped.items():
            if name != "root_yaw":
                lo, hi = kinematics.dof_limits(name)
                assert lo <= course.min() and course.max() <= hi
    assert kinematics.JOINT_LIMITS["knee_flex"] == (0.0, 150.0)
    assert kinematics.JOINT_LIMITS["hip_flex"] == (-20.0, 120.0)


def test_gt_inside_images(data: dict[str, dict]) -> None:
    cameras = load_cameras()
    inside = []
    for subject, acts in data["gt"]["positions_2d"].items():
        for views in acts.values():
            for cam, view in zip(cameras.cameras(subject), views, strict=True):
                ok = (view >= 0).all(-1) & (view[..., 0] < cam.res_w) & (view[..., 1] < cam.res_h)
                inside.append(ok.ravel())
    assert np.concatenate(inside).mean() >= 0.99


def test_gt_is_projection_of_3d(data: dict[str, dict]) -> None:
    cam = load_cameras().camera("S5", 2)
    seq = data["3d"]["S5"]["Greeting 1"]
    expected = cam.project(cam.world_to_camera(seq.astype(np.float64)))
    expected = expected[:, H36M16.indices_from(H36M32)]
    assert np.allclose(data["gt"]["positions_2d"]["S5"]["Greeting 1"][2], expected, atol=1e-3)


def test_hr_noise_statistics(data: dict[str, dict]) -> None:
    noise = synthetic.HR_NOISE
    gt, hr = data["gt"]["positions_2d"], data["hr"]["positions_2d"]
    pairs = [(h, g) for s in gt for a in gt[s] for h, g in zip(hr[s][a], gt[s][a], strict=True)]
    err = np.concatenate([h - g for h, g in pairs])
    est, truth = np.concatenate([h for h, _ in pairs]), np.concatenate([g for _, g in pairs])
    # Robust per-joint spread: median |error| of a Gaussian is 0.6745 sigma.
    median = np.median(np.abs(err), axis=(0, 2))
    expected = 0.6745 * noise.sigma_px(H36M16)
    assert np.allclose(median, expected, rtol=0.15)
    assert median[H36M16.index("left_wrist")] > median[H36M16.index("thorax")]
    # Temporal correlation of the noise (large errors removed).
    lag1 = []
    for h, g in pairs:
        e = np.where(np.abs(h - g) < 15.0, h - g, 0.0)
        lag1.append((e[1:] * e[:-1]).sum() / (e * e).sum())
    assert 0.5 < np.mean(lag1) < noise.ar_coefficient + 0.1
    # Outliers and left/right swaps: a swapped joint sits on its partner's true position.
    dist = np.linalg.norm(err, axis=-1)
    to_partner = np.linalg.norm(est - truth[:, H36M16.flip_permutation], axis=-1)
    swapped = (to_partner < 15.0) & (dist > 25.0)
    outliers = (dist > 20.0) & ~(to_partner < 15.0)
    assert 0.6 * noise.outlier_rate < outliers.mean() < 1.6 * noise.outlier_rate
    assert swapped.sum() > 50
    assert swapped.mean() < 0.03


def test_add_detector_noise_masks() -> None:
    rng = np.random.default_rng(0)
    clean = np.tile(np.linspace(100, 900, 16 * 2).reshape(1, 16, 2), (5000, 1, 1)).astype(np.float32)
    noisy, outliers, swapped = synthetic.add_detector_noise(clean, H36M16, rng)
    noise = synthetic.HR_NOISE
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    assert abs(outliers.mean() - noise.outlier_rate) < 0.3 * noise.outlier_rate
    mean_len = (noise.swap_min_frames + noise.swap_max_frames) / 2
    expected_swapped = noise.swap_start_rate * mean_len * 12 / 16
    assert 0.5 * expected_swapped < swapped.mean() < 1.5 * expected_swapped
    assert not swapped[:, [H36M16.index("pelvis"), H36M16.index("head")]].any()


def test_3dhp(data: dict[str, dict]) -> None:
    hp = data["3dhp"]
    assert tuple(hp) == synthetic.SEQUENCES_3DHP
    bones = MPI3DHP17.bones
    for seq, num_frames in zip(synthetic.SEQUENCES_3DHP, TINY.frames_3dhp, strict=True):
        entry = hp[seq]
        d2, d3, valid = entry["data_2d"], entry["data_3d"], entry["valid"]
        assert d2.shape == (num_frames, 17, 2) and d3.shape == (num_frames, 17, 3)
        assert d2.dtype == np.float32 and d3.dtype == np.float32 and valid.shape == (num_frames,)
        assert set(np.unique(valid)) <= {0.0, 1.0} and 0 < valid.sum() < num_frames
        width, height = (2048, 2048) if seq in ("TS1", "TS2", "TS3", "TS4") else (1920, 1080)
        ok = valid > 0
        assert (d2[ok] >= 0).all() and (d2[ok, :, 0] < width).all() and (d2[ok, :, 1] < height).all()
        lengths = np.linalg.norm(d3[:, bones[:, 0]] - d3[:, bones[:, 1]], axis=-1)
        assert 300 < lengths.max() < 600 and lengths.std(axis=0).max() < 0.5  # mm, rigid
        assert d3[:, :, 2].min() > 1500  # absolute camera depth in mm
    # Unseen subjects: proportions differ from every Human3.6M subject's.
    thigh = [motion.subject_bone_lengths(s, 0)["thigh"] for s in synthetic.SUBJECTS]
    d3 = hp["TS1"]["data_3d"]
    hp_thigh = np.linalg.norm(d3[0, MPI3DHP17.index("right_knee")] - d3[0, MPI3DHP17.index("right_hip")])
    assert np.min(np.abs(np.array(thigh) * 1000 - hp_thigh)) > 0.01


def test_layout_options(tmp_path: Path) -> None:
    paths = synthetic.generate(tmp_path, scale="tiny", seed=0, layout="h36m17", layout_3d="h36m17")
    two_d = load_community_npz(paths["data_2d_h36m_gt"])
    assert two_d["metadata"]["num_joints"] == 17
    assert two_d["positions_2d"]["S1"]["Walking"][0].shape[1:] == (17, 2)
    three_d = load_community_npz(paths["data_3d_h36m"])["positions_3d"]
    assert three_d["S9"]["Sitting 1"].shape[1:] == (17, 3)
    raw = synthetic.generate_positions_3d("tiny", 0)["S9"]["Sitting 1"]
    assert np.array_equal(three_d["S9"]["Sitting 1"], raw[:, H36M17.indices_from(H36M32)])
    with pytest.raises(UserInputError, match="layout"):
        synthetic.generate(tmp_path, layout="h36m32")
