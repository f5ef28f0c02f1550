"""Outputs never destroy anything: the output-path policy, folder markers, and publishing all outputs or none."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlpgraph import outputs
from mlpgraph.errors import UserInputError
from mlpgraph.outputs import (
    CHECKPOINTS,
    DEMOS,
    MARKER,
    PLOTS,
    RAW,
    Output,
    atomic_outputs,
    atomic_path,
    check_outputs,
    marker_kind,
    output_folder,
)
from tests.conftest import ROOT, tool_env


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` -> its bytes (None for folders)."""
    return {
        str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))
    }


def _refused(match: str, *outs: Output | Path, inputs=()) -> None:
    with pytest.raises(UserInputError, match=match):
        check_outputs(outs, inputs=inputs)


# ------------------------------------------------------------------------------------- policy


def test_a_file_replaces_a_file_never_a_folder(tmp_path):
    (tmp_path / "old.json").write_text("old")
    with atomic_path(tmp_path / "old.json") as tmp:
        assert not tmp.exists() and tmp.parent == tmp_path
        tmp.write_text("new")
    assert (tmp_path / "old.json").read_text() == "new"
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "important.txt").write_text("mine")
    with pytest.raises(UserInputError, match=r"results: is a folder; give the path of a file"), atomic_path(
        tmp_path / "results"
    ) as tmp:
        tmp.write_text("x")
    assert _tree(tmp_path / "results") == {"important.txt": b"mine"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json", "results"]


def test_a_failed_block_leaves_nothing(tmp_path):
    target = tmp_path / "out" / "deeper" / "result.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []  # the folders made for it are gone too


def test_a_marked_folder_of_the_same_kind_is_replaced(tmp_path):
    raw = tmp_path / "raw"
    for content in ("first", "second"):
        with atomic_path(raw, RAW) as tmp:
            assert tmp.is_dir() and list(tmp.iterdir()) == []
            (tmp / "f").write_text(content)
    assert _tree(raw) == {MARKER: b'{"kind": "raw"}\n', "f": b"second"}
    assert [p.name for p in tmp_path.iterdir()] == ["raw"]  # no temporary, no backup left


def test_a_folder_without_the_marker_is_refused_an_empty_one_is_used(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    refusal = rf"mine: is a folder mlpgraph did not write \(no {MARKER} file"
    with pytest.raises(UserInputError, match=refusal), atomic_path(mine, RAW) as tmp:
        (tmp / "f").write_text("x")
    assert _tree(mine) == {"notes.txt": b"keep me"}
    (mine / MARKER).write_text(json.dumps({"kind": PLOTS}))
    _refused("holds mlpgraph's plots output, not raw", Output(mine, RAW))
    (tmp_path / "empty").mkdir()
    with atomic_path(tmp_path / "empty", DEMOS) as tmp:
        (tmp / "a.gif").write_bytes(b"GIF")
    assert marker_kind(tmp_path / "empty") == DEMOS
    (tmp_path / "file").write_text("x")
    _refused("file: is a file, not a folder", Output(tmp_path / "file", RAW))


def test_the_working_directory_its_parents_roots_and_home_are_refused(tmp_path, monkeypatch):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    (work / "user.txt").write_text("mine")
    monkeypatch.chdir(work)
    for path in (".", "", str(work), "..", str(tmp_path), "../.."):
        for kind in (None, RAW):
            _refused("is the working directory or a folder above it", Output(path, kind, "--out"))
    _refused("--out /: is a filesystem root", Output("/", RAW, "--out"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    _refused("is the home directory", Output(tmp_path / "home", RAW))
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    _refused("is the root of a repository", Output(tmp_path / "repo", RAW))
    assert _tree(work) == {"user.txt": b"mine"}


def test_a_path_under_a_plain_file_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("text")
    for kind in (None, RAW):
        under = Output(tmp_path / "notes.txt" / "x" / "y", kind)
        _refused(r"notes.txt/x/y: is under .*notes.txt, which is not a folder", under)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_inputs_twice_given_and_nested_outputs_are_refused(tmp_path):
    (tmp_path / "in.json").write_text("{}")
    _refused("--out .*in.json: is an input of this command", Output(tmp_path / "in.json", option="--out"),
             inputs=[tmp_path / "in.json"])  # fmt: skip
    raw = output_folder(tmp_path / "raw", RAW)  # the project's raw folder, with the user's data.dir inside
    (raw / "user").mkdir()
    _refused("raw: holds the input", Output(raw, RAW), inputs=[raw / "user"])
    (tmp_path / "data").mkdir()
    _refused("is also", tmp_path / "a.npz", tmp_path / "." / "a.npz")
    _refused("is inside the folder output", Output(tmp_path / "plots", PLOTS), tmp_path / "plots" / "r.md")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "data")
    _refused("is a symbolic link", Output(link, RAW))
    assert check_outputs([tmp_path / "a.npz", Output(tmp_path / "p", PLOTS)], inputs=[tmp_path / "in.json", None])


# ------------------------------------------------------------------------------ all or none


def test_several_outputs_are_published_together_or_not_at_all(tmp_path):
    npz, gif = tmp_path / "out.npz", tmp_path / "out.gif"
    npz.write_bytes(b"earlier npz")
    with pytest.raises(RuntimeError), atomic_outputs(npz, gif) as (npz_tmp, _):
        npz_tmp.write_bytes(b"new npz")
        raise RuntimeError("the GIF failed")
    assert _tree(tmp_path) == {"out.npz": b"earlier npz"}
    with atomic_outputs(npz, gif, Output(tmp_path / "plots", PLOTS)) as staged:
        staged[0].write_bytes(b"new npz")
        staged[1].write_bytes(b"new gif")
        staged.path(tmp_path / "plots" / "p.png").write_bytes(b"png")
    assert _tree(tmp_path) == {
        "out.gif": b"new gif", "out.npz": b"new npz", "plots": None,
        f"plots/{MARKER}": b'{"kind": "plots"}\n', "plots/p.png": b"png",
    }  # fmt: skip


def test_a_failed_rename_puts_every_earlier_output_back(tmp_path, monkeypatch):
    first, second = tmp_path / "a.json", tmp_path / "b"
    first.write_text("old a")
    with atomic_path(second, DEMOS) as tmp:
        (tmp / "old.gif").write_text("old b")
    before = _tree(tmp_path)
    real_replace = os.replace

    def replace(src, dst):  # publishing the second output fails; putting its earlier version back works
        if Path(dst) == second and "-new-" in Path(src).name:
            raise OSError("disk gone")
        real_replace(src, dst)

    monkeypatch.setattr(outputs.os, "replace", replace)
    with pytest.raises(OSError, match="disk gone"), atomic_outputs(first, Output(second, DEMOS)) as (a_tmp, b_tmp):
        a_tmp.write_text("new a")
        (b_tmp / "new.gif").write_text("new b")
    assert _tree(tmp_path) == before


def test_an_output_never_written_is_left_alone(tmp_path):
    gif, mp4 = tmp_path / "d.gif", tmp_path / "d.mp4"
    mp4.write_bytes(b"earlier mp4")
    with atomic_outputs(gif, mp4) as (gif_tmp, _):
        gif_tmp.write_bytes(b"gif")  # no ffmpeg: the MP4 is not written
    assert _tree(tmp_path) == {"d.gif": b"gif", "d.mp4": b"earlier mp4"}


def test_output_folder_claims_a_folder_grown_in_place(tmp_path):
    models = output_folder(tmp_path / "models" / "x" / "spatial", CHECKPOINTS)
    (models / "last.pt").write_bytes(b"state")
    assert output_folder(models, CHECKPOINTS) == models and (models / "last.pt").read_bytes() == b"state"
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "thesis.tex").write_text("mine")
    with pytest.raises(UserInputError, match="user: is a folder mlpgraph did not write"):
        output_folder(tmp_path / "user", CHECKPOINTS)
    assert _tree(tmp_path / "user") == {"thesis.tex": b"mine"}


def test_committed_report_folders_carry_their_markers_and_dvc_ignores_the_plots_one():
    assert marker_kind(ROOT / "metrics" / "plots") == PLOTS and marker_kind(ROOT / "metrics" / "demo") == DEMOS
    ignored = (ROOT / ".dvcignore").read_text().splitlines()
    assert f"/metrics/plots/{MARKER}" in ignored  # `dvc plots show` reads every file of metrics/plots


# ------------------------------------------------------------------------------- the commands


@pytest.fixture(scope="module")
def lifting_inputs(tmp_path_factory) -> dict[str, Path]:
    """A tiny single-frame checkpoint and a keypoint file in its layout."""
    import torch

    from mlpgraph.checkpoints import network_entry, save_checkpoint
    from mlpgraph.models import build_model

    folder = tmp_path_factory.mktemp("lift")
    torch.manual_seed(0)
    model = build_model("mlpgraph", layout="h36m16", frames=1, hid_dim=16, spatial_hid_dim=16, channel_hid_dim=16,
                        num_layers=1)  # fmt: skip
    checkpoint = save_checkpoint(folder / "f1.pt", {"model": network_entry("mlpgraph", model.eval())})
    keypoints = np.random.default_rng(0).uniform(100, 900, (6, 16, 2))
    np.savez(folder / "kp.npz", keypoints=keypoints, width=1000.0, height=1000.0)
    return {"checkpoint": checkpoint, "input": folder / "kp.npz"}


def _predict(inputs: dict[str, Path], *args: str | Path) -> int:
    from mlpgraph.cli import main

    argv = ["predict", "--checkpoint", inputs["checkpoint"], "--input", inputs["input"], *args]
    return main([str(word) for word in argv])


def _one_line(capsys, expected: str) -> None:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and expected in err, err


def test_predict_refuses_an_existing_folder_and_paths_under_a_file(tmp_path, lifting_inputs, capsys):
    results = tmp_path / "results"
    results.mkdir()
    (results / "important.txt").write_text("mine")
    (tmp_path / "notes.txt").write_text("notes")
    before = _tree(tmp_path)
    capsys.readouterr()
    assert _predict(lifting_inputs, "--out", results) == 2
    _one_line(capsys, f"mlpgraph predict: error: --out {results}: is a folder; give the path of a file")
    assert _predict(lifting_inputs, "--out", tmp_path / "notes.txt" / "x.npz") == 2
    _one_line(capsys, "which is not a folder")
    assert _predict(lifting_inputs, "--out", tmp_path / "o.npz", "--gif", tmp_path / "notes.txt" / "a.gif") == 2
    _one_line(capsys, f"--gif {tmp_path / 'notes.txt' / 'a.gif'}: is under {tmp_path / 'notes.txt'}")
    assert _predict(lifting_inputs, "--out", lifting_inputs["input"]) == 2
    _one_line(capsys, "is an input of this command")
    assert _tree(tmp_path) == before


def test_a_failing_gif_leaves_no_new_output_and_the_earlier_npz(tmp_path, lifting_inputs, monkeypatch):
    from mlpgraph import animation

    out, gif = tmp_path / "pred.npz", tmp_path / "pred.gif"
    out.write_bytes(b"the user's earlier prediction")

    def broken(*args, **kwargs):
        raise RuntimeError("GIF encoder crashed")

    monkeypatch.setattr(animation, "write_gif", broken)
    with pytest.raises(RuntimeError, match="GIF encoder crashed"):
        _predict(lifting_inputs, "--out", out, "--gif", gif)
    assert _tree(tmp_path) == {"pred.npz": b"the user's earlier prediction"}
    monkeypatch.undo()
    assert _predict(lifting_inputs, "--out", out, "--gif", gif) == 0
    assert np.load(out)["poses_3d"].shape == (6, 16, 3) and gif.read_bytes()[:3] == b"GIF"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.gif", "pred.npz"]


def _stage(script: str, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(ROOT / "stages" / script), *map(str, args)]
    return subprocess.run(command, cwd=cwd, env=tool_env(), capture_output=True, text=True)


@pytest.fixture
def user_folder(tmp_path) -> Path:
    """A working directory with the project's parameters and the user's own files."""
    work = tmp_path / "work"
    shutil.copytree(ROOT / "configs", work / "configs")
    shutil.copy2(ROOT / "params.yaml", work / "params.yaml")
    (work / "thesis.tex").write_text("months of work")
    (work / "data").mkdir()
    (work / "data" / "subject1.csv").write_text("1,2,3\n")
    return work


@pytest.mark.parametrize("out", [".", "..", "data"])
def test_fetch_refuses_the_working_directory_and_folders_it_did_not_write(user_folder, out):
    before = _tree(user_folder.parent)
    proc = _stage("fetch.py", "--params", "params.yaml", "--out", out, cwd=user_folder)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    reason = "is a folder mlpgraph did not write" if out == "data" else "is the working directory or a folder above"
    assert proc.stderr.startswith(f"fetch: error: --out {out}: {reason}"), proc.stderr
    assert _tree(user_folder.parent) == before


def test_stages_check_their_outputs_before_any_work(user_folder):
    before = _tree(user_folder)
    train = ("--experiment", "mlpgraph_gt_f1", "--processed", "p.h5", "--metrics", "m.json", "--curve", "c.json")
    cases = {
        ("train_spatial.py", *train, "--out", "data"): "--out data: is a folder mlpgraph did not write",
        ("report.py", "--metrics", "data", "--out", "r.md", "--plots", "data"): "--plots data: is a folder",
        ("report.py", "--metrics", "metrics", "--out", "r.md", "--plots", "plots", "--demo", "plots"): "is also",
        ("preprocess.py", "--raw", "raw", "--keypoints", "gt", "--out", "thesis.tex/x.h5"): "which is not a folder",
    }
    for args, expected in cases.items():
        proc = _stage(args[0], "--params", "params.yaml", *args[1:], cwd=user_folder)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and expected in proc.stderr, (args, proc.stderr)
    assert _tree(user_folder) == before


def test_dvc_plots_show_ignores_the_plots_marker(tmp_path):
    """The report's plots folder is a DVC plots target; its marker must not be read as a plot."""
    from PIL import Image

    shutil.copy2(ROOT / ".dvcignore", tmp_path / ".dvcignore")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True, env=tool_env())
    subprocess.run(["dvc", "init", "-q", "--force"], cwd=tmp_path, check=True, env=tool_env())
    shutil.copy2(ROOT / ".dvcignore", tmp_path / ".dvcignore")
    with atomic_path(tmp_path / "metrics" / "plots", PLOTS) as tmp:
        Image.new("RGB", (4, 4)).save(tmp / "a.png")
    (tmp_path / "dvc.yaml").write_text("plots:\n  - metrics/plots\n")
    proc = subprocess.run(["dvc", "plots", "show", "--json"], cwd=tmp_path, env=tool_env(), capture_output=True,
                          text=True, check=True)  # fmt: skip
    shown = json.loads(proc.stdout)
    assert not shown.get("errors") and list(shown["data"]) == ["metrics/plots/a.png"], shown
