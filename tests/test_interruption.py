"""``kill -9`` at seeded points: rerunning gives an uninterrupted run's outputs, and nothing half-written counts.

The fast tests kill a writer of :mod:`mlpgraph.outputs` inside its atomic block and check that
its temporaries are recognised as stale and removed (or, for a backup, put back). The slow ones
kill ``python stages/fetch.py``, ``stages/preprocess.py`` and ``stages/train_spatial.py`` in a
tiny pipeline repository whose ``dvc repro`` gave the reference outputs; after every kill the
engines see the output as missing or changed (never done), leftovers never pile up, and the
same command run again writes outputs identical to the reference (every file's bytes; for the
training stage every checkpoint tensor and the metrics but for timings and MLflow run ids).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import pytest
import torch

from mlpgraph.checkpoints import load_checkpoint
from mlpgraph.outputs import CHECKPOINTS, MARKER, RAW, atomic_path, output_folder, remove_stale_temporaries
from tests.conftest import make_pipeline_repo, run, set_params, tool_env

EXPERIMENT = "mlpgraph_gt_f1"
PROCESSED = "data/processed/synthetic_gt_h36m16.h5"
MODELS = f"models/{EXPERIMENT}/spatial"
SUMMARY, CURVE = f"metrics/train/{EXPERIMENT}.json", f"metrics/train/{EXPERIMENT}_curve.json"
VOLATILE = {"seconds", "mlflow_run_id"}  # a summary's wall time and MLflow run differ between runs

KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from mlpgraph.outputs import CHECKPOINTS, RAW, atomic_path, output_folder
root, case = Path(sys.argv[1]), sys.argv[2]
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
if case == "blocks":
    with atomic_path(root / "raw", RAW) as tmp:
        (tmp / "half.npz").write_bytes(b"half")
        with atomic_path(root / "file.json") as path:
            path.write_text("{")
            die()
elif case == "publish":
    with atomic_path(root / "raw", RAW) as tmp:
        (tmp / "f").write_text("v1")
    calls, replace = [], os.replace
    def second_replace_dies(src, dst):
        calls.append(src)
        die() if len(calls) == 2 else replace(src, dst)
    os.replace = second_replace_dies  # dies after raw is set aside, before the new one is renamed in
    with atomic_path(root / "raw", RAW) as tmp:
        (tmp / "f").write_text("v2")
else:
    output_folder(root / "ck", CHECKPOINTS)
    with atomic_path(root / "ck" / "last.pt") as path:
        path.write_bytes(b"half a checkpoint")
        die()
"""


def killed_writer(root: Path, case: str) -> None:
    """Run :data:`KILLED_WRITER`'s ``case`` in a child that SIGKILLs itself."""
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(root), case], env=tool_env(), capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()


def temporaries(folder: Path) -> list[str]:
    """The names of the ``.tmp-*`` entries in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".tmp-")) if folder.is_dir() else []


def test_a_killed_writers_temporaries_go_with_the_next_write_of_the_same_output(tmp_path):
    killed_writer(tmp_path, "blocks")
    left = temporaries(tmp_path)
    assert [name.split("-")[1] for name in left] == ["file.json", "raw"] and not (tmp_path / "raw").exists()
    with subprocess.Popen(["sleep", "60"]) as alive:  # a running writer's temporary is never touched
        busy = tmp_path / "-".join([*left[1].split("-")[:4], str(alive.pid), "live"])
        busy.mkdir()
        with atomic_path(tmp_path / "raw", RAW) as tmp:
            (tmp / "f").write_text("whole")
        assert temporaries(tmp_path) == sorted([left[0], busy.name])  # the other output's is not this one's
        alive.kill()
    assert (tmp_path / "raw" / "f").read_text() == "whole" and sorted(os.listdir(tmp_path / "raw")) == [MARKER, "f"]
    with atomic_path(tmp_path / "file.json") as path:
        path.write_text("{}")
    assert temporaries(tmp_path) == [busy.name] and (tmp_path / "file.json").read_text() == "{}"
    with atomic_path(tmp_path / "raw", RAW) as tmp:  # that writer is gone now
        (tmp / "f").write_text("again")
    assert temporaries(tmp_path) == []


def test_a_backup_set_aside_by_a_killed_publish_is_put_back(tmp_path):
    killed_writer(tmp_path, "publish")
    assert not (tmp_path / "raw").exists()
    assert sorted(name.split("-")[2] for name in temporaries(tmp_path)) == ["new", "old"]
    remove_stale_temporaries(tmp_path, "raw")
    assert temporaries(tmp_path) == [] and (tmp_path / "raw" / "f").read_text() == "v1"


def test_claiming_a_checkpoint_folder_removes_a_killed_runs_temporaries_in_it(tmp_path):
    killed_writer(tmp_path, "checkpoint")
    assert len(temporaries(tmp_path / "ck")) == 1
    output_folder(tmp_path / "ck", CHECKPOINTS)
    assert sorted(os.listdir(tmp_path / "ck")) == [MARKER]


# ----------------------------------------------------------------- the stages, killed and rerun


def digests(path: Path) -> dict[str, str]:
    """SHA-256 of the file ``path``, or of every file under the folder ``path`` (relative names)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path if path.is_dir() else path.parent)): sha256(p) for p in files}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Where two nested checkpoint / JSON structures differ (tensors bit for bit), keys in :data:`VOLATILE` aside."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        same = isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
        return [] if same and a.shape == b.shape and torch.equal(a, b) else [where]
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) - VOLATILE != set(b) - VOLATILE:
            return [f"{where}: keys {sorted(map(str, set(a) ^ set(b)))}"]
        return [d for k in a if k not in VOLATILE for d in differences(a[k], b[k], f"{where}/{k}")]
    if isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny pipeline repository after ``dvc repro`` of one training (gt keypoints), and a copy of its outputs."""
    repo = make_pipeline_repo(tmp_path_factory.mktemp("interrupt"), experiments=(EXPERIMENT,))
    small = {"data.keypoints": ["gt"], "data.train_subjects": ["S1"], "data.test_subjects": ["S9"], "train.epochs": 2}
    set_params(repo, **small)  # one subject each: a training of seconds
    run(["git", "commit", "-qam", "gt only"], repo)
    run(["dvc", "repro", f"train_spatial@{EXPERIMENT}"], repo)
    reference = repo.parent / "reference"
    for name in ("data/raw", PROCESSED, MODELS, SUMMARY, CURVE):
        (reference / name).parent.mkdir(parents=True, exist_ok=True)
        copy = shutil.copytree if (repo / name).is_dir() else shutil.copy2
        copy(repo / name, reference / name)
    return repo, reference


def start(repo: Path, command: list[str], log: Path) -> subprocess.Popen[bytes]:
    """``command`` in ``repo`` as its own process group, its output to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=repo, env=tool_env(), stdout=out, stderr=out, start_new_session=True)


def kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool], delay: float, timeout: float = 300) -> bool:
    """``kill -9`` ``proc``'s group ``delay`` s after ``ready()``; False when it finished first."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, "the kill point never came"
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    time.sleep(delay)
    if proc.poll() is not None:
        return False
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def finish(repo: Path, command: list[str], log: Path) -> None:
    """Run ``command`` again to its end; it must succeed."""
    proc = start(repo, command, log)
    assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]


def dvc_changed(repo: Path, stage: str) -> dict[str, Any]:
    """``dvc status``'s report for ``stage`` (empty when up to date)."""
    return json.loads(run(["dvc", "status", "--json", stage], repo).stdout or "{}")


def snakemake_would_run(repo: Path, target: str) -> set[str]:
    """The rules ``snakemake -n target`` would run."""
    out = run(["snakemake", target, "-n", "--cores", "1"], repo).stdout
    return set(re.findall(r"^(?:local)?rule (\S+):$", out, flags=re.MULTILINE))


def writing(folder: Path, proc: subprocess.Popen[bytes], inside: str = "") -> Callable[[], bool]:
    """Whether ``proc`` has a temporary in ``folder`` (holding ``inside``, if given)."""
    return lambda: any(
        name.split("-")[-2] == str(proc.pid) and (not inside or (folder / name / inside).exists())
        for name in temporaries(folder)
    )


def temps_of_killed(folder: Path, pid: int) -> None:
    """Every temporary in ``folder`` is the last killed process's: a rerun removed the earlier ones."""
    assert all(name.split("-")[-2] == str(pid) for name in temporaries(folder)), temporaries(folder)


def stage_cmd(name: str, *args: str) -> list[str]:
    return [sys.executable, f"stages/{name}.py", "--params", "params.yaml", *args]


@pytest.mark.slow
def test_fetch_killed_anywhere_then_rerun_writes_the_same_raw_folder(pipeline):
    repo, reference = pipeline
    command = stage_cmd("fetch", "--out", "data/raw")
    rng, log, killed = random.Random(12), repo / "fetch.log", 0
    shutil.rmtree(repo / "data/raw")
    points = [("temp", rng.uniform(0.0, 1.5)), ("temp", rng.uniform(1.5, 4.0)), ("manifest", 0.0)]
    for kind, delay in points:
        proc = start(repo, command, log)
        if kill_when(proc, writing(repo / "data", proc, "manifest.json" if kind == "manifest" else ""), delay):
            killed += 1
            temps_of_killed(repo / "data", proc.pid)
        if (repo / "data/raw").exists():  # killed after the rename: the whole folder, or nothing
            assert digests(repo / "data/raw") == digests(reference / "data/raw")
            shutil.rmtree(repo / "data/raw")
        else:
            assert dvc_changed(repo, "fetch")["fetch"] == [{"changed outs": {"data/raw": "deleted"}}]
    assert killed >= 2
    finish(repo, command, log)
    assert digests(repo / "data/raw") == digests(reference / "data/raw")
    assert temporaries(repo / "data") == [] and dvc_changed(repo, "fetch") == {}


@pytest.mark.slow
def test_preprocess_killed_anywhere_then_rerun_writes_the_same_file(pipeline):
    repo, reference = pipeline
    out = repo / PROCESSED
    command = stage_cmd("preprocess", "--raw", "data/raw", "--keypoints", "gt", "--out", PROCESSED)
    rng, log, killed = random.Random(7), repo / "preprocess.log", 0
    out.unlink()
    for delay in (rng.uniform(0.0, 0.2), rng.uniform(0.2, 0.6)):
        proc = start(repo, command, log)
        if kill_when(proc, writing(out.parent, proc), delay):
            killed += 1
            temps_of_killed(out.parent, proc.pid)
        if out.exists():
            assert sha256(out) == sha256(reference / PROCESSED)
            out.unlink()
    assert killed >= 1 and not out.exists()
    assert "preprocess__gt" in snakemake_would_run(repo, PROCESSED)
    finish(repo, command, log)
    assert sha256(out) == sha256(reference / PROCESSED) and temporaries(out.parent) == []
    assert dvc_changed(repo, "preprocess@gt") == {}


@pytest.mark.slow
def test_training_killed_anywhere_then_rerun_resumes_to_the_same_checkpoints(pipeline):
    repo, reference = pipeline
    command = stage_cmd(
        "train_spatial", "--experiment", EXPERIMENT, "--processed", PROCESSED, "--out", MODELS,
        "--metrics", SUMMARY, "--curve", CURVE,
    )  # fmt: skip
    rng, log = random.Random(3), repo / "train.log"
    shutil.rmtree(repo / MODELS)
    for name in (SUMMARY, CURVE):
        (repo / name).unlink()
    proc = start(repo, command, log)  # in the first epoch: the folder is claimed, nothing saved yet
    assert kill_when(proc, lambda: (repo / MODELS / MARKER).exists(), rng.uniform(0.0, 2.0))
    proc = start(repo, command, log)  # while it writes its first checkpoint
    assert kill_when(proc, writing(repo / MODELS, proc), 0.0)
    if not temporaries(repo / MODELS):  # it got past the rename: leave what a kill a moment earlier would
        tag = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
        (repo / MODELS / f".tmp-last.pt-new-{tag}-{proc.pid}-x").write_bytes(b"half a checkpoint")
    proc = start(repo, command, log)  # after epoch 1's checkpoint, in epoch 2
    assert kill_when(proc, lambda: (repo / MODELS / "last.pt").exists(), rng.uniform(0.0, 1.0))
    temps_of_killed(repo / MODELS, proc.pid)  # claiming the folder removed the earlier run's temporaries
    assert not (repo / SUMMARY).exists() and not (repo / MODELS / "final.pt").exists()
    assert load_checkpoint(repo / MODELS / "last.pt")["meta"]["epoch"] == 1
    changed = dvc_changed(repo, f"train_spatial@{EXPERIMENT}")[f"train_spatial@{EXPERIMENT}"]
    assert changed == [{"changed outs": {MODELS: "modified", SUMMARY: "deleted", CURVE: "deleted"}}]
    finish(repo, command, repo / "train-rerun.log")
    rerun_log = (repo / "train-rerun.log").read_text()
    assert "from epoch 1" in rerun_log and "epoch 2/2" in rerun_log and "epoch 1/2" not in rerun_log, rerun_log
    assert sorted(os.listdir(repo / MODELS)) == sorted([MARKER, "best.pt", "final.pt", "last.pt"])
    for name in ("best.pt", "final.pt", "last.pt"):
        got, expected = load_checkpoint(repo / MODELS / name), load_checkpoint(reference / MODELS / name)
        assert differences(got, expected) == [], name
    for name in (SUMMARY, CURVE):
        assert differences(json.loads((repo / name).read_text()), json.loads((reference / name).read_text())) == []


@pytest.mark.slow
def test_a_processed_file_of_another_2d_source_is_refused_before_training(pipeline, tmp_path):
    repo, _ = pipeline
    other = tmp_path / "synthetic_hr_h36m16.h5"
    shutil.copy2(repo / PROCESSED, other)
    with h5py.File(other, "r+") as handle:
        handle.attrs["keypoints"] = "hr"
    out = tmp_path / "models"
    cmd = stage_cmd("train_spatial", "--experiment", EXPERIMENT, "--processed", str(other), "--out", str(out))
    cmd += ["--metrics", str(tmp_path / "s.json"), "--curve", str(tmp_path / "c.json")]
    proc = run(cmd, repo, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "holds 'hr' 2D keypoints, but experiment 'mlpgraph_gt_f1' uses 'gt'" in lines[0]
    assert not out.exists() and not (tmp_path / "s.json").exists()
