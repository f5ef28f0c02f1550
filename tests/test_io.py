"""The restricted loader, community .npz writing and hashing (atomic writes: test_outputs.py)."""

import hashlib
import os
import pickle
import zipfile

import numpy as np
import pytest

from mlpgraph.errors import UserInputError
from mlpgraph.io import load_community_npz, save_community_npz, sha256_file


def test_round_trip_of_community_content(tmp_path):
    positions = {"S1": {"Walking 1": np.random.default_rng(0).normal(size=(5, 32, 3)).astype(np.float32)}}
    meta = {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [[4, 5], [1, 2]]}
    save_community_npz(tmp_path / "f.npz", positions_3d=positions, metadata=meta, flat=np.arange(3))
    loaded = load_community_npz(tmp_path / "f.npz")
    assert loaded["metadata"] == meta
    assert np.array_equal(loaded["positions_3d"]["S1"]["Walking 1"], positions["S1"]["Walking 1"])
    assert loaded["positions_3d"]["S1"]["Walking 1"].dtype == np.float32
    assert np.array_equal(loaded["flat"], np.arange(3))


def test_reads_files_written_by_plain_numpy_with_object_arrays(tmp_path):
    holder = np.empty(1, dtype=object)
    holder[0] = np.ones((4, 16, 3), dtype=np.float32)
    np.savez(tmp_path / "hard.npz", pose_3d=holder, scalar=np.float64(2.5))
    loaded = load_community_npz(tmp_path / "hard.npz")
    assert loaded["pose_3d"].shape == (1,) and loaded["pose_3d"][0].shape == (4, 16, 3)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("wrap", ["dict", "list", "bare"])
def test_malicious_pickle_is_refused_and_does_not_run(tmp_path, wrap):
    marker = str(tmp_path / "payload-ran")
    payload = _Payload(marker)
    obj = {"S1": payload} if wrap == "dict" else [payload] if wrap == "list" else payload
    holder = np.empty((), dtype=object)
    holder[()] = obj
    np.savez(tmp_path / "evil.npz", positions_3d=holder)
    with pytest.raises(UserInputError) as info:
        load_community_npz(tmp_path / "evil.npz")
    message = str(info.value)
    assert "evil.npz" in message and "mkdir" in message and "\n" not in message
    assert not os.path.exists(marker)


def test_unknown_class_is_refused(tmp_path):
    from collections import OrderedDict

    holder = np.empty((), dtype=object)
    holder[()] = OrderedDict(a=1)
    np.savez(tmp_path / "odd.npz", data=holder)
    with pytest.raises(UserInputError, match="collections.OrderedDict"):
        load_community_npz(tmp_path / "odd.npz")


def test_garbage_and_missing_files(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(UserInputError, match="bad.npz: not a readable .npz"):
        load_community_npz(tmp_path / "bad.npz")
    with pytest.raises(UserInputError, match="file not found"):
        load_community_npz(tmp_path / "absent.npz")
    raw = pickle.dumps([1, 2, 3])[:-3]

    with (
        zipfile.ZipFile(tmp_path / "trunc.npz", "w") as archive,
        archive.open("x.npy", "w") as member,
    ):
        np.lib.format.write_array_header_1_0(member, {"descr": "|O", "fortran_order": False, "shape": ()})
        member.write(raw)
    with pytest.raises(UserInputError, match=r"trunc.npz \[key x\]: unreadable pickled data"):
        load_community_npz(tmp_path / "trunc.npz")


def test_sha256(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert sha256_file(tmp_path / "f") == hashlib.sha256(b"abc").hexdigest()
