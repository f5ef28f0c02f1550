"""Property-based fuzzing of the readers of untrusted files (hypothesis, derandomized).

For every generated input each reader either returns data or raises UserInputError (one line):
never another exception, and never more than MEMORY_LIMIT of new memory for one call (Python
allocations through tracemalloc, the process's peak RSS through getrusage). Inputs: random bytes,
random mutations of a valid file's bytes, valid archives around random or mutated members, random
JSON / YAML structures and random edits of a valid checkpoint's and params.yaml's structure.
"""

from __future__ import annotations

import io
import json
import os
import resource
import tempfile
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlpgraph.errors import UserInputError
from mlpgraph.io import load_community_npz
from mlpgraph.layouts import H36M16
from mlpgraph.safe_read import parse_json
from mlpgraph.user_keypoints.coco import read_coco_json
from mlpgraph.user_keypoints.reading import read_keypoints

pytestmark = pytest.mark.fuzz
MEMORY_LIMIT = 200 * 1024 * 1024
# MLPGRAPH_FUZZ_EXAMPLES raises the examples per test for a deeper local run (the suite's default: 60).
FUZZ = settings(
    max_examples=int(os.environ.get("MLPGRAPH_FUZZ_EXAMPLES", "60")),
    deadline=None,
    derandomize=True,  # the same examples on every run: CI is reproducible
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# The file readers are fast: three times the examples.
FUZZ_MANY = settings(FUZZ, max_examples=3 * FUZZ.max_examples)
W, H = 1000.0, 1002.0


def bounded(call: Callable[[], Any]) -> Any:
    """``call()``'s result, or None when it raised UserInputError (a one-line message); memory-checked."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        return call()
    except UserInputError as exc:
        assert "\n" not in str(exc), str(exc)
        return None
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024  # Linux: kB
        assert peak < MEMORY_LIMIT, f"{peak / 2**20:.0f} MB of Python allocations"
        assert grown < MEMORY_LIMIT, f"peak RSS grew by {grown / 2**20:.0f} MB"


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """A folder for the generated files (hypothesis reruns one test body many times)."""
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


# ------------------------------------------------------------------------------------------ bytes


def mutated(data: bytes) -> st.SearchStrategy[bytes]:
    """``data`` with a few random byte flips, insertions, deletions and a possible truncation."""
    edit = st.tuples(st.sampled_from(["flip", "insert", "delete"]), st.integers(0, len(data)), st.integers(0, 255))

    def apply(edits: list[tuple[str, int, int]], cut: int | None) -> bytes:
        out = bytearray(data)
        for kind, at, byte in edits:
            at = min(at, len(out) - 1) if out else 0
            if kind == "flip" and out:
                out[at] ^= byte or 1
            elif kind == "insert":
                out.insert(at, byte)
            elif out:
                del out[at]
        return bytes(out[:cut] if cut is not None else out)

    return st.builds(apply, st.lists(edit, min_size=1, max_size=8), st.none() | st.integers(0, len(data)))


def zipped(members: dict[str, bytes]) -> bytes:
    """A valid (stored) zip of ``name.npy`` members: mutated members reach the .npy and pickle parsers."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


def npy(value: Any) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asanyarray(value), allow_pickle=True)
    return buffer.getvalue()


def _held(obj: Any) -> np.ndarray:
    holder = np.empty((), dtype=object)
    holder[()] = obj
    return holder


KEYPOINTS = np.random.default_rng(2).uniform(100, 900, (3, 16, 2))
KP_MEMBERS = {"keypoints": npy(KEYPOINTS), "width": npy(W), "height": npy(H)}
POSITIONS = {"S1": {"Walking 1": np.random.default_rng(3).normal(size=(3, 32, 3)).astype(np.float32)}}
COMMUNITY_MEMBERS = {"positions_3d": npy(_held(POSITIONS)), "metadata": npy(_held({"num_joints": 17}))}
NPZ_FILES = [zipped(KP_MEMBERS), zipped(COMMUNITY_MEMBERS)]


def read_npz_both(path: Path) -> None:
    """The two .npz readers: the community one (pickles allowed, restricted) and predict's keypoints."""
    bounded(lambda: load_community_npz(path))
    bounded(lambda: read_keypoints(path, H36M16))


@FUZZ_MANY
@given(data=st.binary(max_size=2048) | st.binary(max_size=64).map(lambda b: b"PK\x03\x04" + b))
def test_npz_readers_on_random_bytes(scratch: Path, data: bytes) -> None:
    (scratch / "f.npz").write_bytes(data)
    read_npz_both(scratch / "f.npz")


@FUZZ_MANY
@given(data=st.sampled_from(NPZ_FILES).flatmap(mutated))
def test_npz_readers_on_mutated_archives(scratch: Path, data: bytes) -> None:
    (scratch / "f.npz").write_bytes(data)
    read_npz_both(scratch / "f.npz")


@FUZZ_MANY
@given(
    key=st.sampled_from(sorted(KP_MEMBERS) + sorted(COMMUNITY_MEMBERS)),
    member=st.sampled_from([*KP_MEMBERS.values(), *COMMUNITY_MEMBERS.values()]).flatmap(mutated),
)
def test_npz_readers_on_mutated_members(scratch: Path, key: str, member: bytes) -> None:
    members = {**(KP_MEMBERS if key in KP_MEMBERS else COMMUNITY_MEMBERS), key: member}
    (scratch / "f.npz").write_bytes(zipped(members))
    read_npz_both(scratch / "f.npz")


DESCRS = ["<f8", "<f4", ">f8", "<i8", "|u1", "|b1", "|O", "<U4", "|S3", "<c16", "|V8", "<M8[s]", "(2,3)<f4"]
HEADER = st.fixed_dictionaries(
    {
        "descr": st.sampled_from(DESCRS) | st.text(max_size=8),
        "fortran_order": st.booleans(),
        "shape": st.lists(st.integers(-3, 10**12) | st.sampled_from([0, 1, 16, 2]), max_size=4).map(tuple),
    }
)


@FUZZ_MANY
@given(header=HEADER, payload=st.binary(max_size=512), version=st.sampled_from([(1, 0), (2, 0), (3, 0)]))
def test_npz_readers_on_random_npy_headers(scratch: Path, header: dict[str, Any], payload: bytes, version: Any) -> None:
    text = repr(header).encode("latin1", "replace")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    prefix = np.lib.format.magic(*version) + (len(text).to_bytes(2 if version == (1, 0) else 4, "little"))
    members = {**KP_MEMBERS, "keypoints": prefix + text + payload}
    (scratch / "f.npz").write_bytes(zipped(members))
    read_npz_both(scratch / "f.npz")


# ------------------------------------------------------------------------------------------ COCO JSON

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
COORD = st.floats(-2000, 3000) | st.integers(-5, 1500) | SCALARS
ENTRY = st.fixed_dictionaries(
    {"image_id": st.integers(-3, 40) | st.text(max_size=6) | SCALARS},
    optional={
        "keypoints": st.lists(COORD, min_size=45, max_size=54) | st.lists(COORD, max_size=4) | SCALARS,
        "score": COORD,
        "track_id": st.integers(-2, 3) | SCALARS,
        "category_id": st.just(1) | SCALARS,
    },
)
IMAGES = st.lists(
    st.fixed_dictionaries({"id": st.integers(0, 40) | SCALARS, "width": COORD, "height": COORD}), max_size=4
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
COCO_DOCS = (
    st.lists(ENTRY, max_size=6)
    | st.fixed_dictionaries(
        {"annotations": st.lists(ENTRY, max_size=6) | JSONISH}, optional={"images": IMAGES | JSONISH}
    )
    | JSONISH
)


def _good_coco() -> bytes:
    rng = np.random.default_rng(4)
    entries = []
    for frame in range(3):
        xy = rng.uniform(200, 800, (17, 2))
        flat = np.concatenate([xy, np.full((17, 1), 0.9)], axis=1).ravel()
        entries.append({"image_id": frame, "category_id": 1, "keypoints": [round(float(v), 2) for v in flat]})
    return json.dumps(
        {"annotations": entries, "images": [{"id": i, "width": W, "height": H} for i in range(3)]}
    ).encode()


@FUZZ_MANY
@given(content=COCO_DOCS, size=st.booleans())
def test_coco_reader_on_random_structures(content: Any, size: bool) -> None:
    text = json.dumps(content)  # NaN / Infinity become literals: parse_json must refuse them
    sizes = (W, H) if size else (None, None)
    bounded(lambda: read_coco_json(parse_json(text, "c.json"), "c.json", *sizes))


@FUZZ_MANY
@given(data=mutated(_good_coco()))
def test_coco_reader_on_mutated_files(scratch: Path, data: bytes) -> None:
    (scratch / "c.json").write_bytes(data)
    bounded(lambda: read_keypoints(scratch / "c.json", H36M16))
