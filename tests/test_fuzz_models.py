"""Property-based fuzzing of the checkpoint and params.yaml loaders (see tests/test_fuzz.py)."""

from __future__ import annotations

import copy
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from hypothesis import given
from hypothesis import strategies as st

from mlpgraph.checkpoints import CHECKPOINT_VERSION, network_entry, networks_from_checkpoint
from mlpgraph.models import build_model
from mlpgraph.params import load_params
from tests.conftest import ROOT
from tests.test_fuzz import FUZZ, SCALARS, bounded, mutated

pytestmark = pytest.mark.fuzz


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """A folder for the generated files, with the repository's presets (configs/) for params files."""
    with tempfile.TemporaryDirectory() as folder:
        shutil.copytree(ROOT / "configs", Path(folder) / "configs")
        yield Path(folder)


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into the nested dicts (and lists) of ``tree``."""
    found = [prefix] if prefix else []
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            found += _paths(value, (*prefix, i))
    return found


def _edited(tree: Any, edits: list[tuple[int, str, Any]]) -> Any:
    """``tree`` with each edit (path index, kind, value) applied: replace, delete, or add a key."""
    tree = copy.deepcopy(tree)
    for index, kind, value in edits:
        paths = _paths(tree)
        if not paths:
            return value
        *parents, last = paths[index % len(paths)]
        node = tree
        for part in parents:
            node = node[part]
        if kind == "replace":
            node[last] = value
        elif kind == "delete":
            del node[last]
        elif isinstance(node, dict):
            node[f"extra_{index}"] = value
    return tree


DTYPES = [torch.float32, torch.float64, torch.float16, torch.int64, torch.bool, torch.complex64]


def _tensor(shape: list[int], dtype: torch.dtype, fill: float) -> torch.Tensor:
    return torch.full(shape, fill).to(dtype) if dtype is not torch.bool else torch.zeros(shape, dtype=dtype)


TENSORS = st.builds(
    _tensor,
    st.lists(st.integers(0, 9), max_size=3),
    st.sampled_from(DTYPES),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
)
VALUES = (
    SCALARS
    | TENSORS
    | st.lists(SCALARS | TENSORS, max_size=3)
    | st.dictionaries(st.text(max_size=6), SCALARS | TENSORS, max_size=3)
)
VALUES = VALUES | st.integers(0, 70000) | st.sampled_from(["mlpgraph", "semgcn", "refine", "h36m17", "graph"])
EDITS = st.lists(
    st.tuples(st.integers(0, 10**6), st.sampled_from(["replace", "delete", "add"]), VALUES), min_size=1, max_size=3
)


def _good_checkpoint() -> dict[str, Any]:
    torch.manual_seed(0)
    model = build_model("mlpgraph", layout="h36m16", frames=1, hid_dim=8, spatial_hid_dim=8, channel_hid_dim=8,
                        num_layers=1)  # fmt: skip
    entry = network_entry("mlpgraph", model)
    return {"format_version": CHECKPOINT_VERSION, "networks": {"model": entry}, "data_fingerprint": None, "meta": {}}


GOOD_CHECKPOINT = _good_checkpoint()


@FUZZ
@given(edits=EDITS)
def test_checkpoint_loader_on_edited_structures(scratch: Path, edits: list[tuple[int, str, Any]]) -> None:
    torch.save(_edited(GOOD_CHECKPOINT, edits), scratch / "m.pt")
    networks = bounded(lambda: networks_from_checkpoint(scratch / "m.pt"))
    if networks is not None:
        assert all(isinstance(net, torch.nn.Module) for net in networks.values())


def _good_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        torch.save(GOOD_CHECKPOINT, Path(folder) / "m.pt")
        return (Path(folder) / "m.pt").read_bytes()


@FUZZ
@given(data=st.binary(max_size=2048) | mutated(_good_bytes()))
def test_checkpoint_loader_on_random_and_mutated_bytes(scratch: Path, data: bytes) -> None:
    (scratch / "m.pt").write_bytes(data)
    bounded(lambda: networks_from_checkpoint(scratch / "m.pt"))


# ------------------------------------------------------------------------------------------ params.yaml

GOOD_PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
PARAM_VALUES = SCALARS | st.lists(SCALARS, max_size=3) | st.dictionaries(st.text(max_size=6), SCALARS, max_size=3)
PARAM_VALUES = (
    PARAM_VALUES | st.integers(-5, 300) | st.sampled_from(["tiny", "files", "h36m17", "gt", "mlpgraph", "1e5"])
)
PARAM_EDITS = st.lists(
    st.tuples(st.integers(0, 10**6), st.sampled_from(["replace", "delete", "add"]), PARAM_VALUES),
    min_size=1,
    max_size=3,
)


def _load(scratch: Path, text: bytes) -> None:
    (scratch / "params.yaml").write_bytes(text)
    params = bounded(lambda: load_params(scratch / "params.yaml"))
    assert params is None or isinstance(params, dict)


@FUZZ
@given(edits=PARAM_EDITS)
def test_params_loader_on_edited_structures(scratch: Path, edits: list[tuple[int, str, Any]]) -> None:
    _load(scratch, yaml.safe_dump(_edited(GOOD_PARAMS, edits), sort_keys=False, allow_unicode=True).encode())


@FUZZ
@given(
    data=st.text(max_size=300).map(str.encode) | st.binary(max_size=300) | mutated((ROOT / "params.yaml").read_bytes())
)
def test_params_loader_on_random_and_mutated_text(scratch: Path, data: bytes) -> None:
    _load(scratch, data)


CONFIG_KEYS = [*sorted(GOOD_CHECKPOINT["networks"]["model"]["config"]), "num_heads", "dropout", "extra"]
CONFIG_VALUES = st.integers(-2, 40) | st.integers(0, 70000) | st.floats(-1, 2) | SCALARS
CONFIG_VALUES = CONFIG_VALUES | st.sampled_from(["h36m17", "h36m16", "graph", "diagonal", "mlpgraph"])


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(CONFIG_KEYS), CONFIG_VALUES, min_size=1, max_size=3))
def test_checkpoint_loader_on_edited_configs(scratch: Path, changes: dict[str, Any]) -> None:
    """A config that does not match its tensors (or builds no network) is refused before allocating."""
    content = copy.deepcopy(GOOD_CHECKPOINT)
    content["networks"]["model"]["config"].update(changes)
    torch.save(content, scratch / "m.pt")
    bounded(lambda: networks_from_checkpoint(scratch / "m.pt"))
