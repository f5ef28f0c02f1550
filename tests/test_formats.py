"""Readers and validation of the community files (mlpgraph.data.formats)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlpgraph.cameras import h36m_cameras_path
from mlpgraph.data import formats, schema
from mlpgraph.data.projection import project_dataset
from mlpgraph.errors import UserInputError
from mlpgraph.io import save_community_npz
from mlpgraph.layouts import H36M16, H36M17, H36M32, MPI3DHP17, select_joints

REAL_MOCAP = Path(__file__).parent / "data" / "real_mocap" / "real_mocap_A.npz"
FILE_2D = schema.raw_2d_name("gt")

# A standing figure in the h36m17 layout, metres, Z up, feet on the floor.
STANDING_17 = np.array(
    [
        [0.0, 0.0, 0.95], [-0.13, 0.0, 0.95], [-0.14, 0.02, 0.5], [-0.15, 0.0, 0.07],
        [0.13, 0.0, 0.95], [0.14, 0.02, 0.5], [0.15, 0.0, 0.07], [0.0, 0.0, 1.18],
        [0.0, 0.0, 1.43], [0.0, -0.05, 1.53], [0.0, 0.0, 1.68], [0.18, 0.0, 1.42],
        [0.2, 0.0, 1.14], [0.22, 0.0, 0.9], [-0.18, 0.0, 1.42], [-0.2, 0.0, 1.14],
        [-0.22, 0.0, 0.9],
    ]
)  # fmt: skip


def stick_figure(frames: int, phase: float = 0.0, joints: int = 32) -> np.ndarray:
    """A walking-ish stick figure (T, joints, 3) in world metres (h36m32, h36m17 or h36m16)."""
    t = np.arange(frames)[:, None] / 50.0
    pose = np.broadcast_to(STANDING_17, (frames, 17, 3)).copy()
    swing = 0.2 * np.sin(2 * np.pi * t + phase)
    pose[:, [12, 13], 1] += swing
    pose[:, [15, 16], 1] -= swing
    pose[:, :, 0] += 0.5 * t
    if joints == 17:
        return pose.astype(np.float32)
    if joints == 16:
        return select_joints(pose, H36M17, H36M16).astype(np.float32)
    raw = np.empty((frames, 32, 3))
    for j, name in enumerate(H36M32.joint_names):
        if name in H36M17.joint_names:
            raw[:, j] = pose[:, H36M17.index(name)]
        else:
            raw[:, j] = raw[:, H36M32.parents[j]] + 0.05
    return raw.astype(np.float32)


def make_content(
    subjects: tuple[str, ...] = ("S1", "S9"),
    actions: tuple[str, ...] = ("Walking 1", "Eating"),
    frames: int = 30,
    joints_2d: int = 17,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """positions_3d (32 joints), positions_2d (pixels, ``joints_2d`` joints) and metadata."""
    from mlpgraph.cameras import load_cameras

    p3d = {
        s: {a: stick_figure(frames, phase=i + 2 * k) for k, a in enumerate(actions)}
        for i, s in enumerate(subjects)
    }
    target = H36M17 if joints_2d == 17 else H36M16
    reduced = {
        s: {a: select_joints(seq, H36M32, target) for a, seq in acts.items()}
        for s, acts in p3d.items()
    }
    p2d = project_dataset(reduced, load_cameras())
    meta = {"layout_name": "h36m", "num_joints": joints_2d}
    return p3d, p2d, meta


def write_raw(
    raw: Path, p3d: Any, p2d: Any, meta: Any | None = None, keypoints: str = "gt"
) -> Path:
    """Write a raw directory in the canonical names of mlpgraph.data.schema."""
    raw.mkdir(parents=True, exist_ok=True)
    save_community_npz(raw / schema.RAW_3D, positions_3d=p3d)
    extra = {} if meta is None else {"metadata": meta}
    save_community_npz(raw / schema.raw_2d_name(keypoints), positions_2d=p2d, **extra)
    shutil.copy(h36m_cameras_path(), raw / schema.RAW_CAMERAS)
    return raw


def test_load_raw_dataset_converts_layouts(tmp_path: Path) -> None:
    p3d, p2d, meta = make_content()
    raw = formats.load_raw_dataset(write_raw(tmp_path, p3d, p2d, meta), "gt", "h36m16")
    assert raw.layout is H36M16
    assert raw.fps == 50
    assert set(raw.files) == {schema.RAW_3D, FILE_2D, schema.RAW_CAMERAS}
    seq = raw.positions_3d["S1"]["Walking 1"]
    assert seq.shape == (30, 16, 3) and seq.dtype == np.float32
    np.testing.assert_array_equal(seq, select_joints(p3d["S1"]["Walking 1"], H36M32, H36M16))
    cams = raw.positions_2d["S9"]["Eating"]
    assert len(cams) == 4 and cams[2].shape == (30, 16, 2)
    np.testing.assert_array_equal(cams[2], select_joints(p2d["S9"]["Eating"][2], H36M17, H36M16))
    raw17 = formats.load_raw_dataset(tmp_path, "gt", "h36m17")
    assert raw17.positions_3d["S1"]["Eating"].shape == (30, 17, 3)


def test_longer_2d_is_trimmed(tmp_path: Path) -> None:
    p3d, p2d, meta = make_content()
    long = stick_figure(35)
    p3d["S9"]["Walking 1"] = long[:30]
    longer = project_dataset({"S9": {"A": select_joints(long, H36M32, H36M17)}}, _cameras())
    p2d["S9"]["Walking 1"] = longer["S9"]["A"]
    raw = formats.load_raw_dataset(write_raw(tmp_path, p3d, p2d, meta))
    for cam in range(4):
        got = raw.positions_2d["S9"]["Walking 1"][cam]
        assert got.shape == (30, 16, 2)
        expected = select_joints(longer["S9"]["A"][cam][:30], H36M17, H36M16)
        np.testing.assert_array_equal(got, expected)


def _cameras() -> Any:
    from mlpgraph.cameras import load_cameras

    return load_cameras()


# Each case: (id, mutate(p3d, p2d, meta, raw_dir) -> None, layout, substrings of the message).
Mutation = Callable[[dict, dict, dict, Path], None]


def _set3(subject: str, action: str, value: Any) -> Mutation:
    def mutate(p3d: dict, p2d: dict, meta: dict, raw: Path) -> None:
        p3d[subject][action] = value(p3d[subject][action]) if callable(value) else value

    return mutate


def _set2(subject: str, action: str, cam: int | None, value: Any) -> Mutation:
    def mutate(p3d: dict, p2d: dict, meta: dict, raw: Path) -> None:
        if cam is None:
            old = p2d[subject][action]
            p2d[subject][action] = value(old) if callable(value) else value
        else:
            old = p2d[subject][action][cam]
            p2d[subject][action][cam] = value(old) if callable(value) else value

    return mutate


def _nan(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    x[3, 2, 0] = np.nan
    return x


def _inf(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    x[0, 0, 1] = np.inf
    return x


def _extra_subject(which: str, old: str, new: str) -> Mutation:
    """Copy subject ``old`` to ``new`` in one of the two files only."""

    def mutate(p3d: dict, p2d: dict, meta: dict, raw: Path) -> None:
        target = p3d if which == "3d" else p2d
        target[new] = target[old]

    return mutate


def _extra_action(which: str, subject: str, old: str, new: str) -> Mutation:
    """Copy an action to a new name in one of the two files only."""

    def mutate(p3d: dict, p2d: dict, meta: dict, raw: Path) -> None:
        target = p3d if which == "3d" else p2d
        target[subject][new] = target[subject][old]

    return mutate


def _both_subject(new: str) -> Mutation:
    def mutate(p3d: dict, p2d: dict, meta: dict, raw: Path) -> None:
        p3d[new] = p3d.pop("S1")
        p2d[new] = p2d.pop("S1")

    return mutate


def _meta(value: Any) -> Mutation:
    def mutate(p3d: dict, p2d: dict, meta: dict, raw: Path) -> None:
        meta.clear()
        meta.update(value)

    return mutate


def _mixed_2d_joints(p3d: dict, p2d: dict, meta: dict, raw: Path) -> None:
    p2d["S9"]["Eating"][1] = p2d["S9"]["Eating"][1][:, :16]


def _all_16(which: str) -> Mutation:
    def mutate(p3d: dict, p2d: dict, meta: dict, raw: Path) -> None:
        if which == "3d":
            for acts in p3d.values():
                for a in acts:
                    acts[a] = select_joints(acts[a], H36M32, H36M16)
        else:
            for acts in p2d.values():
                for a in acts:
                    acts[a] = [select_joints(c, H36M17, H36M16) for c in acts[a]]
            meta["num_joints"] = 16

    return mutate


F3, CAMS = schema.RAW_3D, schema.RAW_CAMERAS
BAD_CASES: list[tuple[str, Mutation, str, list[str]]] = [
    ("3d-ndim", _set3("S1", "Eating", lambda x: x.reshape(30, -1)), "h36m16",
     [F3, "subject S1", "action 'Eating'", "shape (T, J, 3)"]),
    ("3d-last-dim", _set3("S1", "Eating", lambda x: x[..., :2]), "h36m16",
     [F3, "subject S1", "action 'Eating'", "shape (T, J, 3)"]),
    ("2d-last-dim", _set2("S9", "Eating", 3, lambda x: np.concatenate([x, x[..., :1]], -1)),
     "h36m16", [FILE_2D, "subject S9", "action 'Eating'", "camera 3", "shape (T, J, 2)"]),
    ("3d-int", _set3("S9", "Walking 1", lambda x: x.astype(np.int64)), "h36m16",
     [F3, "subject S9", "action 'Walking 1'", "dtype int64"]),
    ("2d-int", _set2("S1", "Eating", 0, lambda x: x.astype(np.int32)), "h36m16",
     [FILE_2D, "subject S1", "action 'Eating'", "camera 0", "dtype int32"]),
    ("2d-nan", _set2("S9", "Walking 1", 2, _nan), "h36m16",
     [FILE_2D, "subject S9", "action 'Walking 1'", "camera 2", "NaN"]),
    ("3d-inf", _set3("S1", "Walking 1", _inf), "h36m16",
     [F3, "subject S1", "action 'Walking 1'", "NaN or infinite"]),
    ("3d-joints", _set3("S1", "Eating", lambda x: x[:, :20]), "h36m16",
     [F3, "subject S1", "action 'Eating'", "20 joints", "16, 17, 32"]),
    ("2d-joints", _set2("S1", "Eating", 1, lambda x: np.concatenate([x, x], 1)[:, :32]), "h36m16",
     [FILE_2D, "subject S1", "action 'Eating'", "camera 1", "32 joints"]),
    ("2d-16-to-17", _all_16("2d"), "h36m17",
     [FILE_2D, "subject S1", "action 'Walking 1'", "camera 0", "cannot give layout h36m17"]),
    ("3d-16-to-17", _all_16("3d"), "h36m17",
     [F3, "subject S1", "action 'Walking 1'", "cannot give layout h36m17"]),
    ("3d-mm", _set3("S9", "Eating", lambda x: x * 1000), "h36m16",
     [F3, "subject S9", "action 'Eating'", "looks like millimetres; expected metres"]),
    ("2d-normalised", _set2("S1", "Walking 1", 1, lambda x: x / 1000.0 - 0.5), "h36m16",
     [FILE_2D, "subject S1", "action 'Walking 1'", "camera 1", "looks normalised"]),
    ("3d-empty", _set3("S1", "Eating", lambda x: x[:0]), "h36m16",
     [F3, "subject S1", "action 'Eating'", "empty"]),
    ("2d-empty", _set2("S1", "Eating", 2, lambda x: x[:0]), "h36m16",
     [FILE_2D, "subject S1", "action 'Eating'", "camera 2", "empty"]),
    ("2d-shorter", _set2("S9", "Walking 1", 2, lambda x: x[:25]), "h36m16",
     [FILE_2D, "subject S9", "action 'Walking 1'", "camera 2",
      "2D sequence has 25 frames, the 3D has 30 (shorter 2D is refused)"]),
    ("3-cameras", _set2("S9", "Eating", None, lambda x: x[:3]), "h36m16",
     [FILE_2D, "subject S9", "action 'Eating'", "3 cameras", "has 4"]),
    ("2d-not-list", _set2("S9", "Eating", None, lambda x: x[0]), "h36m16",
     [FILE_2D, "subject S9", "action 'Eating'", "list of per-camera arrays"]),
    ("2d-empty-list", _set2("S9", "Eating", None, []), "h36m16",
     [FILE_2D, "subject S9", "action 'Eating'", "empty"]),
    ("3d-not-array", _set3("S1", "Eating", [[1.0, 2.0, 3.0]]), "h36m16",
     [F3, "subject S1", "action 'Eating'", "numpy array"]),
    ("subject-only-2d", _extra_subject("2d", "S1", "S7"), "h36m16",
     [FILE_2D, "['S7']", "2D but no 3D"]),
    ("subject-only-3d", _extra_subject("3d", "S9", "S11"), "h36m16",
     [F3, "['S11']", "3D but no 2D"]),
    ("action-only-2d", _extra_action("2d", "S9", "Eating", "Eating 2"), "h36m16",
     [FILE_2D, "subject S9", "['Eating 2']", "2D but no 3D"]),
    ("action-only-3d", _extra_action("3d", "S1", "Walking 1", "Walking 2"), "h36m16",
     [F3, "subject S1", "['Walking 2']", "3D but no 2D"]),
    ("no-extrinsics", _both_subject("S2"), "h36m16", [CAMS, "subject S2"]),
    ("mixed-2d-joints", _mixed_2d_joints, "h36m16",
     [FILE_2D, "subject S9", "action 'Eating'", "camera 1", "16 joints", "one joint count"]),
    ("metadata-joints", _meta({"num_joints": 16}), "h36m16",
     [FILE_2D, "key 'metadata'", "num_joints is 16", "17 joints"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "layout", "expected"),
    [pytest.param(m, lay, exp, id=name) for name, m, lay, exp in BAD_CASES],
)
def test_bad_raw_files_are_refused(
    tmp_path: Path, mutate: Mutation, layout: str, expected: list[str]
) -> None:
    p3d, p2d, meta = make_content()
    mutate(p3d, p2d, meta, tmp_path)
    write_raw(tmp_path, p3d, p2d, meta)
    with pytest.raises(UserInputError) as info:
        formats.load_raw_dataset(tmp_path, "gt", layout)
    message = str(info.value)
    assert "\n" not in message
    for part in expected:
        assert part in message, (part, message)


@pytest.mark.parametrize(
    ("missing", "expected"),
    [(schema.RAW_3D, "file not found"), (FILE_2D, "file not found"),
     (schema.RAW_CAMERAS, "cameras file not found")],
)  # fmt: skip
def test_missing_files(tmp_path: Path, missing: str, expected: str) -> None:
    write_raw(tmp_path, *make_content())
    (tmp_path / missing).unlink()
    with pytest.raises(UserInputError, match=expected) as info:
        formats.load_raw_dataset(tmp_path)
    assert missing in str(info.value)


def test_missing_raw_dir(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="raw data directory not found"):
        formats.load_raw_dataset(tmp_path / "nope")


@pytest.mark.parametrize(
    ("content", "reader", "expected"),
    [
        ({"poses": {}}, formats.read_positions_3d, "missing key 'positions_3d'"),
        ({"poses": {}}, formats.read_positions_2d, "missing key 'positions_2d'"),
        ({"positions_3d": [1, 2]}, formats.read_positions_3d, "positions_3d must be a dict"),
        ({"positions_3d": {}}, formats.read_positions_3d, "positions_3d is empty"),
        ({"positions_3d": {"S1": [np.zeros((3, 17, 3))]}}, formats.read_positions_3d,
         "subject S1: the subject's entry must be a dict"),
        ({"positions_2d": {"S1": {}}}, formats.read_positions_2d,
         "subject S1: the subject's entry is empty"),
        ({"positions_2d": {"S1": {"A": (np.full((3, 17, 2), 100.0),)}}, "metadata": [1]},
         formats.read_positions_2d, "key 'metadata': must be a dict"),
    ],
)  # fmt: skip
def test_container_types(tmp_path: Path, content: dict, reader: Callable, expected: str) -> None:
    path = tmp_path / "file.npz"
    save_community_npz(path, **content)
    with pytest.raises(UserInputError, match=expected) as info:
        reader(path)
    assert "file.npz" in str(info.value)


class _Evil:
    """A pickle that would create a marker file when loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def test_malicious_pickle_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    holder = np.empty((), dtype=object)
    holder[()] = {"S1": {"Walking": _Evil(marker)}}
    path = tmp_path / schema.RAW_3D
    np.savez(path, positions_3d=holder)
    with pytest.raises(UserInputError, match="refused to unpickle") as info:
        formats.read_positions_3d(path)
    assert schema.RAW_3D in str(info.value)
    assert not marker.exists()


def test_real_mocap_fixture_reads() -> None:
    assert (REAL_MOCAP.parent / "README.md").is_file()
    data = formats.read_positions_3d(REAL_MOCAP)
    assert set(data) == {"CMU_S01", "CMU_S11", "EyesJapan_S1"}
    for actions in data.values():
        for seq in actions.values():
            assert seq.dtype == np.float32 and seq.ndim == 3 and seq.shape[1:] == (17, 3)
            assert 0.5 < formats.body_extent(seq) < 2.0


# --- MPI-INF-3DHP test files -------------------------------------------------------------------

IDX_3DHP_TO_H36M16 = [14, 8, 9, 10, 11, 12, 13, 15, 1, 0, 5, 6, 7, 2, 3, 4]  # docs/model.md
IDX_3DHP_TO_H36M17 = [14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4]  # docs/model.md


def _pstmo_sequence(frames: int, rng: np.random.Generator, width: int, height: int) -> dict:
    pose = stick_figure(frames, joints=17).astype(np.float64) * 1000.0
    pose += rng.normal(0, 20, pose.shape) + np.array([0.0, 0.0, 4000.0])
    mpi = select_joints(pose, H36M17, MPI3DHP17)  # 3DHP order, by name
    pixels = rng.uniform(0, 1, (frames, 17, 2)) * np.array([width, height])
    return {"data_2d": pixels.astype(np.float32), "data_3d": mpi.astype(np.float32),
            "valid": np.ones(frames, dtype=np.float32)}  # fmt: skip


def test_3dhp_pstmo(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = {"TS5": _pstmo_sequence(8, rng, 1920, 1080), "TS1": _pstmo_sequence(6, rng, 2048, 2048)}
    data["TS1"]["valid"][[1, 4]] = 0
    data["TS1"]["data_3d"][1] = np.nan  # invalid frames may hold anything
    path = tmp_path / schema.RAW_3DHP_PSTMO
    save_community_npz(path, data=data)

    test = formats.read_3dhp_test(path, "h36m16")
    assert test.source_format == "pstmo"
    assert test.poses_2d.shape == (12, 16, 2) and test.poses_3d.shape == (12, 16, 3)
    assert list(test.sequence) == ["TS1"] * 4 + ["TS5"] * 8
    assert list(test.scene) == ["GS"] * 4 + ["outdoor"] * 8
    keep = np.array([0, 2, 3, 5])
    for name, rows, src, (w, h) in (
        ("TS1", slice(0, 4), keep, (2048, 2048)),
        ("TS5", slice(4, 12), np.arange(8), (1920, 1080)),
    ):
        mm = data[name]["data_3d"][src][:, IDX_3DHP_TO_H36M16].astype(np.float64)
        expected_3d = (mm - mm[:, :1]) / 1000.0
        np.testing.assert_allclose(test.poses_3d[rows], expected_3d, atol=1e-6)
        px = data[name]["data_2d"][src][:, IDX_3DHP_TO_H36M16].astype(np.float64)
        expected_2d = px / w * 2 - np.array([1.0, h / w])
        np.testing.assert_allclose(test.poses_2d[rows], expected_2d, atol=1e-6)
    assert np.all(test.poses_3d[:, 0] == 0)

    test17 = formats.read_3dhp_test(path, "h36m17")
    mm = data["TS5"]["data_3d"][:, IDX_3DHP_TO_H36M17].astype(np.float64)
    np.testing.assert_allclose(test17.poses_3d[4:], (mm - mm[:, :1]) / 1000.0, atol=1e-6)


def test_3dhp_mapping_is_model_md_index_list() -> None:
    np.testing.assert_array_equal(H36M16.indices_from(MPI3DHP17), IDX_3DHP_TO_H36M16)
    np.testing.assert_array_equal(H36M17.indices_from(MPI3DHP17), IDX_3DHP_TO_H36M17)


def test_3dhp_poseaug(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    pose3d = stick_figure(10, joints=16) + np.array([0.0, 0.0, 3.0], dtype=np.float32)
    pose2d = rng.uniform(-0.9, 0.9, (10, 16, 2)).astype(np.float32)
    path = tmp_path / schema.RAW_3DHP_POSEAUG
    save_community_npz(path, pose2d=pose2d, pose3d=pose3d)
    test = formats.read_3dhp_test(path)
    assert test.source_format == "poseaug" and test.scene is None
    assert list(test.sequence) == ["all"] * 10
    np.testing.assert_array_equal(test.poses_2d, pose2d)
    np.testing.assert_allclose(test.poses_3d, pose3d - pose3d[:, :1], atol=1e-6)
    with pytest.raises(UserInputError, match="cannot give layout h36m17"):
        formats.read_3dhp_test(path, "h36m17")


def _pstmo_bad(edit: Callable[[dict], None]) -> Callable[[Path], dict]:
    def build(_: Path) -> dict:
        seq = _pstmo_sequence(5, np.random.default_rng(2), 2048, 2048)
        data = {"TS3": seq}
        edit(data)
        return {"data": data}

    return build


def _set(key: str, fn: Callable[[Any], Any]) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        data["TS3"][key] = fn(data["TS3"][key])

    return edit


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda p: {"poses": np.zeros((2, 16, 2))},
         "unknown 3DHP test format.*PoseAug's test_3dhp.npz.*P-STMO's data_test_3dhp.npz"),
        (lambda p: {"pose2d": np.zeros((4, 16, 2), np.float32) + 300,
                    "pose3d": stick_figure(4, joints=16)}, "key 'pose2d'.*looks like pixels"),
        (lambda p: {"pose2d": np.zeros((4, 16, 2), np.float32),
                    "pose3d": stick_figure(4, joints=16) * 1000}, "key 'pose3d'.*millimetres"),
        (lambda p: {"pose2d": np.zeros((4, 16, 2), np.float32),
                    "pose3d": stick_figure(5, joints=16)}, "key 'pose2d'.*shape"),
        (_pstmo_bad(lambda d: d.update(TS7=d["TS3"])), "sequence TS7: unknown sequence"),
        (_pstmo_bad(lambda d: d["TS3"].pop("valid")), "sequence TS3: missing key 'valid'"),
        (_pstmo_bad(_set("data_3d", lambda x: x / 1000)),
         "sequence TS3: data_3d looks like metres"),
        (_pstmo_bad(_set("data_2d", lambda x: x / 4000)), "sequence TS3: data_2d looks normalised"),
        (_pstmo_bad(_set("data_2d", lambda x: x[:, :16])), "sequence TS3: data_2d has 16 joints"),
        (_pstmo_bad(_set("valid", lambda x: x[:3])), "sequence TS3: valid must hold one flag"),
        (_pstmo_bad(_set("valid", lambda x: x * 0)), "key 'data': no valid frames"),
        (_pstmo_bad(_set("data_2d", lambda x: x[:4])), "sequence TS3: data_2d has 4 frames"),
        (_pstmo_bad(_set("data_3d", _inf)), "sequence TS3: data_3d contains 1 NaN"),
    ],
)  # fmt: skip
def test_bad_3dhp_files(tmp_path: Path, build: Callable[[Path], dict], expected: str) -> None:
    path = tmp_path / "test3dhp.npz"
    save_community_npz(path, **build(tmp_path))
    with pytest.raises(UserInputError, match=expected) as info:
        formats.read_3dhp_test(path)
    assert "test3dhp.npz" in str(info.value) and "\n" not in str(info.value)


# --- Hard-pose user file -----------------------------------------------------------------------


def _object_array(item: np.ndarray) -> np.ndarray:
    holder = np.empty(1, dtype=object)
    holder[0] = item
    return holder


def test_hard_poses(tmp_path: Path) -> None:
    pose3d = stick_figure(7, joints=17)
    pose2d = np.random.default_rng(3).uniform(-1, 1, (7, 17, 2)).astype(np.float32)
    path = tmp_path / "whole_body_S0.05_f5_1_gt.npz"
    save_community_npz(path, pose_3d=_object_array(pose3d), pose_2d=_object_array(pose2d))
    hard = formats.read_hard_poses(path, "h36m16")
    np.testing.assert_array_equal(hard.poses_2d, select_joints(pose2d, H36M17, H36M16))
    rel = pose3d - pose3d[:, :1]
    np.testing.assert_allclose(hard.poses_3d, select_joints(rel, H36M17, H36M16), atol=1e-6)
    assert hard.layout is H36M16


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"pose_3d": _object_array(stick_figure(3, joints=16))}, "missing key 'pose_2d'"),
        ({"pose_3d": _object_array(stick_figure(3, joints=16) * 1000),
          "pose_2d": _object_array(np.zeros((3, 16, 2), np.float32))},
         "key 'pose_3d'.*millimetres"),
        ({"pose_3d": _object_array(stick_figure(3, joints=16)),
          "pose_2d": _object_array(np.zeros((3, 16, 3), np.float32))}, "key 'pose_2d'.*shape"),
        ({"pose_3d": np.empty(0, dtype=object),
          "pose_2d": _object_array(np.zeros((3, 16, 2), np.float32))}, "key 'pose_3d'.*empty"),
    ],
)  # fmt: skip
def test_bad_hard_poses(tmp_path: Path, content: dict, expected: str) -> None:
    path = tmp_path / "hard.npz"
    save_community_npz(path, **content)
    with pytest.raises(UserInputError, match=expected):
        formats.read_hard_poses(path)


def test_unknown_layout_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="layout 'h36m32'"):
        formats.load_raw_dataset(write_raw(tmp_path, *make_content()), layout="h36m32")
