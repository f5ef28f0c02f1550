"""Untrusted input files: bounded work before allocation and finite, plausible numbers after conversion.

Every bad file is crafted here and must raise UserInputError with one line that names it: never
MemoryError, RecursionError, OverflowError, LinAlgError or a silently wrong result.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from mlpgraph.cameras import h36m_cameras_path, load_cameras
from mlpgraph.data import formats, preprocess, schema
from mlpgraph.data.projection import project_dataset
from mlpgraph.errors import UserInputError
from mlpgraph.io import load_community_npz, save_community_npz
from mlpgraph.layouts import H36M16, H36M17, H36M32, select_joints
from mlpgraph.safe_read import MAX_JSON_DEPTH, load_json
from mlpgraph.user_keypoints.reading import read_keypoints
from tests.test_formats import make_content, stick_figure, write_raw
from tests.test_preprocess import make_raw_dir


def refused(call: Any, *args: Any, name: str, match: str, **kwargs: Any) -> str:
    """The one-line UserInputError message of ``call(*args)``, checked to name ``name`` and match ``match``."""
    with pytest.raises(UserInputError, match=match) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert name in message and "\n" not in message, message
    return message


# ------------------------------------------------------------------------------------------ .npz


def _npz_with_header(path: Path, header: dict[str, Any], payload: bytes = b"\0" * 16) -> Path:
    """An .npz whose single member ``x.npy`` has ``header`` but only ``payload`` as data."""
    with zipfile.ZipFile(path, "w") as archive, archive.open("x.npy", "w") as member:
        np.lib.format.write_array_header_1_0(member, header)
        member.write(payload)
    return path


def test_header_claiming_a_huge_array_is_refused_before_allocating(tmp_path: Path) -> None:
    path = _npz_with_header(tmp_path / "liar.npz", {"descr": "<f8", "fortran_order": False, "shape": (10**7, 10**7)})
    assert path.stat().st_size < 400
    message = refused(load_community_npz, path, name="liar.npz", match=r"\[key x\]: .npy header declares")
    assert "762939453.1 MB" in message
    refused(read_keypoints, path, H36M16, 1000, 1000, name="liar.npz", match="header declares")
    negative = _npz_with_header(tmp_path / "neg.npz", {"descr": "<f8", "fortran_order": False, "shape": (-1, 4)})
    refused(load_community_npz, negative, name="neg.npz", match="negative dimension")


def _zeros_member(path: Path, megabytes: int) -> Path:
    """A deflated ``keypoints`` member of ``megabytes`` MB of zeros (a few kB on disk)."""
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(megabytes * 1024 * 1024 // 8))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("keypoints.npy", buffer.getvalue())
    return path


def test_compressed_member_over_the_decoded_cap_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _zeros_member(tmp_path / "bomb.npz", 3)
    assert path.stat().st_size < 50_000
    monkeypatch.setenv("MLPGRAPH_MAX_DECODED_MB", "2")
    for reader, args in ((load_community_npz, ()), (read_keypoints, (H36M16, 1000, 1000))):
        message = refused(reader, path, *args, name="bomb.npz", match="decode to 3.0 MB, over the 2 MB limit")
        assert "MLPGRAPH_MAX_DECODED_MB" in message and "docs/data.md" in message
    monkeypatch.setenv("MLPGRAPH_MAX_DECODED_MB", "4")  # raised: now it reads
    assert load_community_npz(path)["keypoints"].shape == (3 * 1024 * 1024 // 8,)
    monkeypatch.setenv("MLPGRAPH_MAX_DECODED_MB", "lots")
    refused(load_community_npz, path, name="MLPGRAPH_MAX_DECODED_MB", match="expected a positive number")


def test_pickle_building_too_many_objects_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    holder = np.empty((), dtype=object)
    holder[()] = {"values": list(range(3000))}
    np.savez(tmp_path / "many.npz", positions_3d=holder)
    assert load_community_npz(tmp_path / "many.npz")["positions_3d"]["values"][-1] == 2999
    monkeypatch.setenv("MLPGRAPH_MAX_DECODED_MB", "0.05")  # 52 kB: at most 819 objects
    refused(load_community_npz, tmp_path / "many.npz", name="many.npz", match=r"\[key positions_3d\]: .* opcodes")


def test_pickled_codecs_encode_is_latin1_only(tmp_path: Path) -> None:
    payload = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R."
    assert pickle.loads(payload) == "nop"  # plain pickle runs any codec
    with zipfile.ZipFile(tmp_path / "codec.npz", "w") as archive, archive.open("x.npy", "w") as member:
        np.lib.format.write_array_header_1_0(member, {"descr": "|O", "fortran_order": False, "shape": ()})
        member.write(payload)
    refused(load_community_npz, tmp_path / "codec.npz", name="codec.npz", match="latin-1 only")


# ------------------------------------------------------------------------------------------ raw files


def test_values_beyond_float32_are_refused_at_preprocess(tmp_path: Path) -> None:
    """float64 3.5e38 is finite, but inf in float32: preprocess must not write a non-finite HDF5."""
    p3d, p2d, meta = make_content()
    p3d["S1"]["Eating"] = p3d["S1"]["Eating"].astype(np.float64)
    p3d["S1"]["Eating"][4, 7, 0] = 3.5e38
    write_raw(tmp_path / "raw", p3d, p2d, meta)
    out = tmp_path / "p.h5"
    build = preprocess.build_hdf5
    refused(build, tmp_path / "raw", out, train_subjects=["S1"], test_subjects=["S9"], name=schema.RAW_3D,
            match="subject S1, action 'Eating': 3D sequence contains 1 values beyond float32's range")  # fmt: skip
    assert not out.exists()


def _frames_glitch(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    x[5, 3] += 40.0
    return x


def _zero_frames(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    x[10:12] = 0.0
    return x


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda x: np.zeros_like(x), "30 of 30 frames with all joints at one point"),
        (_zero_frames, r"2 of 30 frames with all joints at one point \(first: frame 10\)"),
        (_frames_glitch, "frame 5: a joint lies 40.*a glitch"),
        (lambda x: x * 100.0, "looks like centimetres; expected metres"),
        (lambda x: x * 1e5, "implausible body size"),
        (lambda x: x * 1e-3, "implausible body size"),
        (lambda x: x + np.float32(5000.0), "reaches 5.*m from the world origin"),
    ],
)  # fmt: skip
def test_implausible_3d_is_refused(tmp_path: Path, mutate: Any, expected: str) -> None:
    p3d, p2d, meta = make_content()
    p3d["S9"]["Walking 1"] = mutate(p3d["S9"]["Walking 1"])
    write_raw(tmp_path, p3d, p2d, meta)
    refused(formats.read_positions_3d, tmp_path / schema.RAW_3D, name=schema.RAW_3D,
            match=rf"subject S9, action 'Walking 1': 3D sequence .*{expected}")  # fmt: skip


def test_2d_outside_the_image_is_refused(tmp_path: Path) -> None:
    p3d, p2d, meta = make_content()
    p2d["S1"]["Eating"][2] = p2d["S1"]["Eating"][2] * 10.0
    write_raw(tmp_path, p3d, p2d, meta)
    refused(formats.load_raw_dataset, tmp_path, name=schema.raw_2d_name("gt"),
            match=r"subject S1, action 'Eating', camera 2: 2D sequence \(camera \d+\) has \d+ points more than 1 "
                  r"image size outside the 1000 x 100\d image \(first at frame 0")  # fmt: skip


def test_all_zero_2d_is_refused(tmp_path: Path) -> None:
    p3d, p2d, meta = make_content()
    p2d["S9"]["Eating"][0] = np.zeros_like(p2d["S9"]["Eating"][0])
    write_raw(tmp_path, p3d, p2d, meta)
    refused(formats.read_positions_2d, tmp_path / schema.raw_2d_name("gt"), name=schema.raw_2d_name("gt"),
            match="camera 0: 2D sequence has all joints at one point in every frame")  # fmt: skip


def test_2d_much_longer_than_the_3d_is_refused(tmp_path: Path) -> None:
    """Five times the frames is another recording or frame rate, not the few extra frames of a detector."""
    p3d, p2d, meta = make_content(frames=30)
    long = stick_figure(150)
    p3d["S9"]["Walking 1"] = long[:30]
    projected = project_dataset({"S9": {"A": select_joints(long, H36M32, H36M17)}}, load_cameras())
    p2d["S9"]["Walking 1"] = projected["S9"]["A"]
    write_raw(tmp_path, p3d, p2d, meta)
    expected = "camera 0: 2D sequence has 150 frames, the 3D has 30: at most 100 extra 2D frames are trimmed"
    refused(formats.load_raw_dataset, tmp_path, name=schema.raw_2d_name("gt"), match=expected)
    p2d["S9"]["Walking 1"] = [seq[:130] for seq in p2d["S9"]["Walking 1"]]  # 100 extra: the convention
    write_raw(tmp_path, p3d, p2d, meta)
    assert formats.load_raw_dataset(tmp_path).positions_2d["S9"]["Walking 1"][0].shape == (30, 16, 2)


def test_normalised_2d_far_outside_the_image_is_refused(tmp_path: Path) -> None:
    pose2d = np.random.default_rng(0).uniform(-0.9, 0.9, (10, 16, 2)).astype(np.float32)
    pose2d[4, 2] = 40.0
    save_community_npz(tmp_path / schema.RAW_3DHP_POSEAUG, pose2d=pose2d, pose3d=stick_figure(10, joints=16))
    refused(formats.read_3dhp_test, tmp_path / schema.RAW_3DHP_POSEAUG, name=schema.RAW_3DHP_POSEAUG,
            match=r"key 'pose2d': 2D poses lie far outside the image \(\|value\| up to 40")  # fmt: skip


# ------------------------------------------------------------------------------------------ JSON


def _coco(path: Path, entries: Any, raw: str | None = None) -> Path:
    path.write_text(raw if raw is not None else json.dumps(entries))
    return path


KP = [500.0, 400.0, 0.9] * 17


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[" * 100_000 + "]" * 100_000, f"nested deeper than {MAX_JSON_DEPTH} levels"),
        ("[" * 100 + "]" * 100, f"nested deeper than {MAX_JSON_DEPTH} levels"),
        (json.dumps([{"image_id": 0, "keypoints": KP}]).replace("500.0", "1e400", 1),
         r"number at \[0\].keypoints\[0\] overflows a float"),
        (json.dumps([{"image_id": 10**400, "keypoints": KP}]), r"integer at \[0\].image_id is out of range"),
        (json.dumps([{"image_id": 0, "keypoints": KP, "score": -(10**30)}]), r"integer at \[0\].score is out of range"),
        (json.dumps([{"image_id": 0, "keypoints": KP, "score": float("inf")}]), "literal Infinity"),
        (json.dumps([{"image_id": 10**18, "keypoints": KP}]), "image_id 1000000000000000000 is out of range"),
        (json.dumps([{"image_id": 0, "keypoints": KP, "track_id": 2**60}]), "entry 0: track_id is out of range"),
        (json.dumps([{"image_id": [1], "keypoints": KP}]), "image_id must be a number or a string"),
        (json.dumps({"images": [{"id": [0], "width": 1000, "height": 1000}],
                     "annotations": [{"image_id": 0, "keypoints": KP}]}), r"images\[0\]: 'id' must be a number"),
        (json.dumps([{"image_id": f"frame{10**24 + n}.jpg", "keypoints": KP} for n in (1, 2)]),
         "image_id 'frame1000000000000000000000001.jpg': frame number is out of range"),
        (json.dumps([{"image_id": 0, "keypoints": [*KP[:-3], 9000.0, 400.0, 0.9]}]),
         r"'keypoints' has 1 points more than 1 image size outside the 1000 x 1000 image \(first at frame 0"),
        (json.dumps([{"image_id": 0, "keypoints": KP, "track_id": 0}]), None),
    ],
)  # fmt: skip
def test_bad_coco_json_is_refused(tmp_path: Path, text: str, expected: str | None) -> None:
    path = _coco(tmp_path / "people.json", None, text)
    if expected is None:  # sanity: the well-formed file reads
        assert read_keypoints(path, H36M16, 1000, 1000).num_frames == 1
        return
    refused(read_keypoints, path, H36M16, 1000, 1000, name="people.json", match=expected)


def test_json_over_the_size_cap_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _coco(tmp_path / "big.json", [{"image_id": i, "keypoints": KP} for i in range(400)])
    monkeypatch.setenv("MLPGRAPH_MAX_JSON_MB", "0.01")
    message = refused(read_keypoints, path, H36M16, 1000, 1000, name="big.json", match="over the 0.01 MB limit")
    assert "MLPGRAPH_MAX_JSON_MB" in message
    monkeypatch.delenv("MLPGRAPH_MAX_JSON_MB")
    assert len(load_json(path)) == 400


def _cameras_with(edit: Any) -> str:
    content = json.loads(h36m_cameras_path().read_text())
    edit(content)
    return json.dumps(content)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (_cameras_with(lambda c: c["intrinsics"][0].update(focal_length=[12345.5, 1.0])).replace("12345.5", "1e400"),
         r"intrinsics\[0\].focal_length\[0\] overflows a float"),
        (_cameras_with(lambda c: c["intrinsics"][1].update(res_w=10**30)), r"integer at intrinsics\[1\].res_w"),
        (_cameras_with(lambda c: c["intrinsics"][1].update(res_w=10**9)), r"'res_w' must be a number of pixels"),
        (_cameras_with(lambda c: c["intrinsics"][2].update(center="middle")), r"'center' must be 2 numbers"),
        (_cameras_with(lambda c: c.update(intrinsics={"a": 1})), "'intrinsics' must be a non-empty list"),
        (_cameras_with(lambda c: c["intrinsics"].__setitem__(0, 5)), r"intrinsics\[0\]: must be an object"),
        (_cameras_with(lambda c: c["extrinsics"].update(S1=7)), r"extrinsics\[S1\] must be a list"),
        (_cameras_with(lambda c: c["extrinsics"]["S1"][0].update(translation=[1.0, "x", 2.0])),
         r"extrinsics\[S1\]\[0\]: 'translation' must be 3 numbers"),
        ('{"intrinsics": ' * 70 + "1" + "}" * 70, "nested deeper than"),
        ('{"intrinsics": NaN}', "literal NaN"),
    ],
)  # fmt: skip
def test_bad_cameras_json_is_refused(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "cams.json").write_text(text)
    refused(load_cameras, tmp_path / "cams.json", name="cams.json", match=expected)


# ------------------------------------------------------------------------------------------ processed HDF5


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("untrusted")
    make_raw_dir(root / "raw")
    return preprocess.build_hdf5(root / "raw", root / "good.h5", train_subjects=("S1",), test_subjects=("S9",))


def _edited(processed: Path, tmp_path: Path, edit: Any) -> Path:
    path = tmp_path / "edited.h5"
    path.write_bytes(processed.read_bytes())
    with h5py.File(path, "r+") as handle:
        edit(handle)
    return path


def _replace(name: str, make: Any, **options: Any) -> Any:
    def edit(handle: h5py.File) -> None:
        data = make(handle[name][()])
        del handle[name]
        handle.create_dataset(name, data=data, **options)

    return edit


def _nan_pose(handle: h5py.File) -> None:
    handle[schema.POSES_3D][7, 3, 1] = np.nan


def _inf_intrinsics(handle: h5py.File) -> None:
    handle[schema.INTRINSICS][1, 0] = np.inf


def _bad_subject(handle: h5py.File) -> None:
    handle[schema.SUBJECT][3] = 9


def _bad_sequence(handle: h5py.File) -> None:
    handle[schema.SEQUENCES][1, 1] += 5


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_nan_pose, r"dataset 'poses_3d': 1 NaN or infinite values \(first in row 7\)"),
        (_inf_intrinsics, r"dataset 'intrinsics': 1 NaN or infinite values \(first in row 1\)"),
        (_replace(schema.POSES_2D, lambda x: x.astype(np.int32)), "dataset 'poses_2d': dtype int32; expected floats"),
        (_replace(schema.POSES_2D, lambda x: x[..., :1]), r"dataset 'poses_2d': shape \(\d+, 16, 1\)"),
        (_replace(schema.ROOT_3D, lambda x: x, compression="gzip"), "'root_3d': stored chunked or compressed"),
        (_replace(schema.FRAME, lambda x: x[:-1]), "per-sample datasets differ in length"),
        (_bad_subject, r"dataset 'subject': values outside 0..1"),
        (_bad_sequence, "dataset 'sequences': .* do not cover the samples"),
        (lambda h: h.attrs.__setitem__("actions", "[[[" * 30), "attribute 'actions': not valid JSON"),
    ],
)  # fmt: skip
def test_bad_processed_file_is_refused_at_load(processed: Path, tmp_path: Path, edit: Any, expected: str) -> None:
    path = _edited(processed, tmp_path, edit)
    refused(preprocess.load_processed, path, name="edited.h5", match=expected)


def test_good_processed_file_still_loads(processed: Path) -> None:
    data = preprocess.load_processed(processed, subjects=["S9"])
    assert np.isfinite(data[schema.POSES_3D]).all() and data["attrs"]["subjects"] == ["S1", "S9"]
