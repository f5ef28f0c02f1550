"""Write the bad-input corpus (this folder's binary and text files) deterministically.

    python tests/data/bad/make_corpus.py [FOLDER]   # default: this script's folder

Every file is built from bytes this script controls: zip archives with fixed timestamps and
stored (uncompressed) members, ``.npy`` members from :func:`numpy.lib.format.write_array`,
PyTorch files from :func:`torch.save` and HDF5 from :mod:`h5py`, so running it again rewrites
exactly the committed bytes (tests/test_bad_inputs.py checks this). The cases and what each
must report are in ``cases.py``; README.md is written from that table.
"""

from __future__ import annotations

import io
import json
import struct
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[2]), str(HERE.parents[2] / "src")]

from cases import readme_text  # noqa: E402

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
# A pickle that runs ``os.system`` under plain ``pickle.load`` / ``np.load(allow_pickle=True)``.
EXPLOIT = b"cos\nsystem\n(S'touch PWNED'\ntR."
W, H = 1000.0, 1002.0


def npy(value: Any) -> bytes:
    """One ``.npy`` member (object arrays pickled, as numpy writes them)."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asanyarray(value), allow_pickle=True)
    return buffer.getvalue()


def held(obj: Any) -> np.ndarray:
    """A 0-d object array holding ``obj`` (how the community files store their dicts)."""
    holder = np.empty((), dtype=object)
    holder[()] = obj
    return holder


def npy_header(header: dict[str, Any], payload: bytes = b"\0" * 16, version: tuple[int, int] = (1, 0)) -> bytes:
    """An ``.npy`` member with ``header`` followed by ``payload`` (which need not match)."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    data = buffer.getvalue()
    return np.lib.format.magic(*version) + data[8:] + payload


def pickled(payload: bytes) -> bytes:
    """An object ``.npy`` member whose pickle is ``payload``."""
    return npy_header({"descr": "|O", "fortran_order": False, "shape": ()}, payload)


def npz(members: dict[str, bytes]) -> bytes:
    """A zip of ``name.npy`` members with fixed timestamps, stored uncompressed."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=FIXED_TIME), data)
    return buffer.getvalue()


def declared_size_lie(data: bytes, size: int) -> bytes:
    """``data`` (a one-member zip) whose central directory claims ``size`` uncompressed bytes."""
    at = data.rfind(b"PK\x01\x02")
    return data[: at + 24] + struct.pack("<I", size) + data[at + 28 :]


def zip_version_lie(data: bytes) -> bytes:
    """``data`` (a one-member zip) whose central directory asks for zip version 8.4 to extract."""
    at = data.rfind(b"PK\x01\x02")
    return data[: at + 6] + struct.pack("<H", 84) + data[at + 8 :]


def utf8_name_lie(data: bytes) -> bytes:
    """``data`` (a one-member zip) whose member name is flagged UTF-8 but starts with byte 0xff."""
    at = data.rfind(b"PK\x01\x02")
    flags = struct.unpack("<H", data[at + 8 : at + 10])[0] | 0x800
    return data[: at + 8] + struct.pack("<H", flags) + data[at + 10 : at + 46] + b"\xff" + data[at + 47 :]


def figure(frames: int, joints: int, dims: int, seed: int, low: float, high: float) -> np.ndarray:
    """Seeded float32 coordinates in ``[low, high)``."""
    return np.random.default_rng(seed).uniform(low, high, (frames, joints, dims)).astype(np.float32)


# ------------------------------------------------------------------------------ raw community files


def raw_content() -> dict[str, Any]:
    """The valid raw folder's arrays (tests.test_preprocess.make_raw_dir at 5 frames)."""
    from mlpgraph.io import load_community_npz
    from tests.test_preprocess import make_raw_dir

    with tempfile.TemporaryDirectory() as tmp:
        make_raw_dir(Path(tmp), frames=5)
        p3d = load_community_npz(Path(tmp) / "data_3d_h36m.npz")["positions_3d"]
        two = load_community_npz(Path(tmp) / "data_2d_h36m_gt.npz")
        cameras = json.loads((Path(tmp) / "cameras.json").read_text())
    return {"p3d": p3d, "p2d": two["positions_2d"], "meta": two["metadata"], "cameras": cameras}


def _edit(tree: dict[str, dict[str, Any]], change: Callable[[np.ndarray], Any]) -> dict[str, dict[str, Any]]:
    """``tree`` with ``change`` applied to S9 / 'Walking 1' (its first camera for 2D)."""
    out = {s: dict(acts) for s, acts in tree.items()}
    value = out["S9"]["Walking 1"]
    if isinstance(value, list):
        out["S9"]["Walking 1"] = [change(value[0]), *value[1:]]
    else:
        out["S9"]["Walking 1"] = change(value)
    return out


def _set(index: tuple[int, ...], value: float, dtype: Any = None) -> Callable[[np.ndarray], np.ndarray]:
    def change(x: np.ndarray) -> np.ndarray:
        x = x.astype(dtype or x.dtype)
        x[index] = value
        return x

    return change


def raw_3d_files(raw: dict[str, Any]) -> dict[str, bytes]:
    """Bad ``data_3d_h36m.npz`` files (the preprocess stage's raw 3D)."""
    p3d = raw["p3d"]
    huge = {"descr": "<f8", "fortran_order": False, "shape": (10**7, 10**7)}
    good = npz({"positions_3d": npy(held(p3d))})
    return {
        "raw3d_pickle_os_system.npz": npz({"positions_3d": pickled(EXPLOIT)}),
        "raw3d_huge_declared_shape.npz": npz({"positions_3d": npy_header(huge)}),
        "raw3d_negative_dimension.npz": npz({"positions_3d": npy_header({**huge, "shape": (-1, 3)})}),
        "raw3d_impossible_shape.npz": npz(
            {"positions_3d": npy_header({**huge, "shape": (0, 34635, 5768582, 5770527)})}
        ),
        "raw3d_npy_version_9.npz": npz({"positions_3d": npy_header(huge, version=(9, 0))}),
        "raw3d_decoded_size_lie.npz": declared_size_lie(good, 2**31),
        "raw3d_zip_version_84.npz": zip_version_lie(npz({"positions_3d": npy(held(p3d))})),
        "raw3d_truncated.npz": good[: len(good) // 2],
        "raw3d_not_a_zip.npz": b"this is a text file, not an .npz archive\n",
        "raw3d_empty_archive.npz": npz({}),
        "raw3d_wrong_key.npz": npz({"poses": npy(held(p3d))}),
        "raw3d_list_not_dict.npz": npz({"positions_3d": npy(held([1, 2, 3]))}),
        "raw3d_wrong_shape.npz": npz({"positions_3d": npy(held(_edit(p3d, lambda x: x[:, :, :2])))}),
        "raw3d_string_dtype.npz": npz({"positions_3d": npy(held(_edit(p3d, lambda x: x.astype("U8"))))}),
        "raw3d_nan.npz": npz({"positions_3d": npy(held(_edit(p3d, _set((2, 3, 1), np.nan))))}),
        "raw3d_float32_overflow.npz": npz({"positions_3d": npy(held(_edit(p3d, _set((2, 3, 0), 3.5e38, np.float64))))}),
        "raw3d_all_zero.npz": npz({"positions_3d": npy(held(_edit(p3d, np.zeros_like)))}),
    }


def raw_2d_files(raw: dict[str, Any]) -> dict[str, bytes]:
    """Bad ``data_2d_h36m_gt.npz`` files (the preprocess stage's raw 2D)."""
    p2d, meta = raw["p2d"], raw["meta"]

    def two(positions: Any, metadata: Any = meta) -> bytes:
        return npz({"positions_2d": npy(held(positions)), "metadata": npy(held(metadata))})

    three_cams = _edit(p2d, lambda x: x)
    three_cams["S9"]["Walking 1"] = three_cams["S9"]["Walking 1"][:3]
    return {
        "raw2d_pickle_os_system_metadata.npz": npz({"positions_2d": npy(held(p2d)), "metadata": pickled(EXPLOIT)}),
        "raw2d_nan.npz": two(_edit(p2d, _set((1, 4, 0), np.nan))),
        "raw2d_inf.npz": two(_edit(p2d, _set((1, 4, 1), np.inf))),
        "raw2d_out_of_image.npz": two(_edit(p2d, lambda x: x + np.float32(5000.0))),
        "raw2d_float32_overflow.npz": two(_edit(p2d, _set((0, 0, 0), 1e39, np.float64))),
        "raw2d_three_cameras.npz": two(three_cams),
        "raw2d_wrong_joints.npz": two(_edit(p2d, lambda x: x[:, :5])),
        "raw2d_missing_positions.npz": npz({"metadata": npy(held(meta))}),
        "raw2d_metadata_not_dict.npz": two(p2d, [17]),
    }


def cameras_files(raw: dict[str, Any]) -> dict[str, bytes]:
    """Bad ``cameras.json`` files (the preprocess stage reads the raw folder's cameras first)."""
    cams = raw["cameras"]

    def edited(change: Callable[[dict[str, Any]], None]) -> bytes:
        content = json.loads(json.dumps(cams))
        change(content)
        return json.dumps(content, indent=0).encode()

    def setter(*path: Any, value: Any) -> Callable[[dict[str, Any]], None]:
        def change(content: dict[str, Any]) -> None:
            node = content
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = value

        return change

    text = json.dumps(cams, indent=0)
    return {
        "cameras_nan_literal.json": text.replace("1145.0494384765625", "NaN", 1).encode(),
        "cameras_huge_number.json": text.replace("1145.0494384765625", "1e400", 1).encode(),
        "cameras_zero_focal.json": edited(setter("intrinsics", 0, "focal_length", value=[0.0, 0.0])),
        "cameras_focal_string.json": edited(setter("intrinsics", 0, "focal_length", value="big")),
        "cameras_missing_intrinsics.json": edited(lambda c: c.pop("intrinsics")),
        "cameras_not_object.json": b"[1, 2, 3]\n",
        "cameras_deep_nesting.json": b"[" * 5_000 + b"]" * 5_000,
        "cameras_not_json.json": b"\x89PNG\r\n\x1a\n not json",
    }


# ------------------------------------------------------------------------------------------ main

OUTPUT_FILES = {
    "user_folder/notes.txt": b"A user's folder: --out must never replace or empty it.\n",
    "plain_file.txt": b"A plain file: --out plain_file.txt/out.npz must not turn it into a folder.\n",
}


def build() -> dict[str, bytes]:
    """Every corpus file: relative path -> bytes (README.md included)."""
    from corpus_inputs import coco_files, keypoint_files, params_files
    from corpus_models import checkpoint_files, processed_files, release_files

    raw = raw_content()
    files: dict[str, bytes] = {}
    for part in (
        raw_3d_files(raw),
        raw_2d_files(raw),
        cameras_files(raw),
        keypoint_files(),
        coco_files(),
        params_files(),
        checkpoint_files(),
        release_files(),
        processed_files(raw),
        OUTPUT_FILES,
    ):
        files.update(part)
    files["README.md"] = readme_text().encode()
    return files


def write(folder: Path) -> list[Path]:
    """Write the corpus into ``folder``; returns the paths written."""
    written = []
    for name, data in build().items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    print(f"wrote {len(write(target))} files to {target}")
