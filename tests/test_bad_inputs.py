"""The bad-input corpus (tests/data/bad): every crafted file through its real entry point.

Each case must end with exit status 2, exactly one line on stderr holding the expected fragment
and no traceback, and leave its working folder exactly as it was: no output file, no user file
changed, and no ``PWNED`` file from a pickle that would run ``os.system`` under a plain load.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import resource
import shutil
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.conftest import ROOT

BAD = ROOT / "tests" / "data" / "bad"
sys.path.insert(0, str(BAD))
from cases import CAMS, CASES, CKPT, INPUT, OUT, PARAMS, PROCESSED, RAW2D, RAW3D, RELEASE, Case  # noqa: E402

sys.path.remove(str(BAD))
RAW_NAMES = {RAW3D: "data_3d_h36m.npz", RAW2D: "data_2d_h36m_gt.npz", CAMS: "cameras.json"}
MEMORY_LIMIT = 200 * 1024 * 1024
SCRIPTS = {"make_corpus.py", "cases.py", "cases.tsv", "corpus_inputs.py", "corpus_models.py", "README.md"}


def _stage(name: str) -> Any:
    """The stage script ``stages/<name>.py`` as a module (its ``parser`` and ``main``)."""
    spec = importlib.util.spec_from_file_location(f"_stage_{name}", ROOT / "stages" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _no_tracking(*_: Any, **__: Any) -> Iterator[Any]:
    """Stands in for MLflow's StageRun: the corpus tests the readers, not the tracking store."""

    class _Run:
        def __getattr__(self, name: str) -> Any:
            return lambda *a, **k: None

    yield _Run()


@pytest.fixture(scope="session")
def good(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Valid companions: a checkpoint, a keypoint file, a raw folder and the params for preprocess."""
    import torch

    from mlpgraph.checkpoints import network_entry, save_checkpoint
    from mlpgraph.models import build_model
    from tests.test_preprocess import make_raw_dir

    folder = tmp_path_factory.mktemp("good")
    torch.manual_seed(0)
    model = build_model("mlpgraph", layout="h36m16", frames=1, hid_dim=8, spatial_hid_dim=8, channel_hid_dim=8,
                        num_layers=1)  # fmt: skip
    save_checkpoint(folder / "model.pt", {"model": network_entry("mlpgraph", model.eval())})
    kp = np.random.default_rng(2).uniform(100, 900, (4, 16, 2))
    np.savez(folder / "kp.npz", keypoints=kp, width=1000.0, height=1002.0)
    make_raw_dir(folder / "raw", frames=5)
    shutil.copytree(ROOT / "configs", folder / "configs")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(train_subjects=["S1"], test_subjects=["S9"])
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return {"checkpoint": folder / "model.pt", "kp": folder / "kp.npz", "raw": folder / "raw", "root": folder}


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for a folder)."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in folder.rglob("*")}


def _prepare(case: Case, good: dict[str, Path], work: Path) -> list[str]:
    """Copy what ``case`` needs into ``work`` (the working directory); return the command's arguments."""
    from mlpgraph.cli import main

    predict = ["predict", "--checkpoint", str(good["checkpoint"]), "--input", str(good["kp"]), "--out", "out.npz"]
    if case.entry == OUT:
        shutil.copytree(BAD / "user_folder", work / "user_folder")
        shutil.copy(BAD / "plain_file.txt", work / "plain_file.txt")
        return [main, *predict[:-1], case.file]
    shutil.copy(BAD / case.file, work / case.file)
    if case.entry == CKPT:
        return [main, *predict[:2], case.file, *predict[3:]]
    if case.entry == INPUT:
        size = ["--width", "1000", "--height", "1002"] if case.file.endswith(".json") else []
        return [main, *predict[:4], case.file, *predict[5:], *size]
    if case.entry == RELEASE:
        return [main, "import-release", "--weights", case.file, "--out", "out.pt"]
    if case.entry == PARAMS:
        shutil.copytree(good["root"] / "configs", work / "configs")
        return ["fetch", "--params", case.file, "--out", "raw"]
    if case.entry in RAW_NAMES:
        shutil.copytree(good["raw"], work / "raw")
        shutil.copytree(good["root"] / "configs", work / "configs")
        shutil.copy(good["root"] / "params.yaml", work / "params.yaml")
        shutil.copy(BAD / case.file, work / "raw" / RAW_NAMES[case.entry])
        return ["preprocess", "--params", "params.yaml", "--raw", "raw", "--keypoints", "gt", "--out", "p.h5"]
    assert case.entry == PROCESSED, case
    return ["load_processed", case.file]


def _run(arguments: list[Any], monkeypatch: pytest.MonkeyPatch) -> int:
    """Run the prepared command in-process; its exit status."""
    from mlpgraph.entry import run_command

    head, rest = arguments[0], arguments[1:]
    if callable(head):
        return head(rest)
    if head == "load_processed":
        from mlpgraph.data.preprocess import load_processed

        return run_command("load_processed", argparse.ArgumentParser(), lambda _: load_processed(rest[0]), [])
    stage = _stage(head)
    monkeypatch.setattr(stage, "StageRun", _no_tracking)
    return run_command(head, stage.parser(), stage.main, rest)


@pytest.mark.parametrize("case", CASES, ids=[case.file for case in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    case: Case, good: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    arguments = _prepare(case, good, tmp_path)
    before = _snapshot(tmp_path)
    status = _run(arguments, monkeypatch)
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert case.fragment in err, err
    assert _snapshot(tmp_path) == before  # no output, no user file changed, no PWNED


# The largest files of each kind, and the lies about sizes: measured one by one (tracemalloc slows a call).
MEASURED = ["cameras_deep_nesting.json", "h5_compressed.h5", "raw3d_string_dtype.npz", "ckpt_meta_numpy_array.pt",
            "raw3d_huge_declared_shape.npz", "raw3d_decoded_size_lie.npz", "ckpt_legacy_pickle_4gb_string.pt",
            "params_alias_bomb.yaml"]  # fmt: skip


@pytest.mark.parametrize("name", MEASURED)
def test_memory_of_the_largest_and_lying_files(
    name: str, good: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Python allocations of one refusal stay under MEMORY_LIMIT (run with -s to see the peaks)."""
    case = next(case for case in CASES if case.file == name)
    monkeypatch.chdir(tmp_path)
    arguments = _prepare(case, good, tmp_path)
    _run(arguments, monkeypatch)  # imports and caches warm: the measured call is the reading alone
    capsys.readouterr()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        assert _run(arguments, monkeypatch) == 2
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) * 1024
    print(f"{name}: peak {peak / 2**20:.2f} MB traced, peak RSS +{grown / 2**20:.1f} MB", file=sys.__stdout__)
    assert peak < MEMORY_LIMIT and grown < MEMORY_LIMIT


def test_every_corpus_file_is_a_case() -> None:
    files = {str(p.relative_to(BAD)) for p in BAD.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    listed = {case.file for case in CASES if case.entry != OUT}
    assert files - SCRIPTS - {"user_folder/notes.txt", "plain_file.txt"} == listed
    assert len(CASES) >= 60 and len({case.file for case in CASES}) == len(CASES)
    readme = (BAD / "README.md").read_text()
    assert all(f"`{case.file}`" in readme for case in CASES)
    assert sum(p.stat().st_size for p in BAD.rglob("*") if p.is_file()) < 1_400_000


def test_make_corpus_regenerates_the_committed_bytes(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(BAD / "make_corpus.py"), str(tmp_path)], capture_output=True,
                          text=True, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    regenerated = {str(p.relative_to(tmp_path)): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    committed = {name: (BAD / name).read_bytes() for name in regenerated}
    changed = sorted(name for name in regenerated if regenerated[name] != committed[name])
    assert not changed, f"make_corpus.py no longer writes the committed bytes of {changed}; rerun it and commit"


def test_huge_params_file_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Made here, not committed: a 5 MB (sparse) params.yaml, over the 4 MB a parameters file may have."""
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "params.yaml", "wb") as handle:
        handle.write(b"preset: tiny\n")
        handle.truncate(5 * 1024 * 1024)
    assert _run(["fetch", "--params", "params.yaml", "--out", "raw"], monkeypatch) == 2
    err = capsys.readouterr().err
    assert err == "fetch: error: params.yaml: 5242880 bytes, over the 4194304 bytes a parameters file may have\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]
