"""``bench/scale.py``: every stage gets a row (time, memory, disk) at the tiny scale; bad output paths are refused."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, tool_env

SCRIPT = ROOT / "bench" / "scale.py"
EXPERIMENTS = ("mlpgraph_gt_f1", "mlpgraph_gt_f243_refine")
TIMED_ROWS = (
    "fetch",
    "preprocess@gt",
    "preprocess@hr",
    *(f"train_spatial@{name}" for name in EXPERIMENTS),
    *(f"evaluate_h36m@{name}" for name in EXPERIMENTS),
    "hard_pose_set",
    *(f"hard_poses@{name}" for name in EXPERIMENTS),
    "summarise@pretrained_gt_f1",
)
# Rows that write data (the others write metrics files and MLflow records only).
DATA_ROWS = ("fetch", "preprocess@gt", "preprocess@hr", *(f"train_spatial@{name}" for name in EXPERIMENTS))


def bench(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = tool_env()
    env["PYTHONPATH"] = str(ROOT / "src")
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True)


@pytest.mark.slow
def test_tiny_run_has_every_stage_row(tmp_path: Path) -> None:
    out, markdown = tmp_path / "metrics" / "scale.json", tmp_path / "metrics" / "scale.md"
    # --max-stage-s 0: the probed stages (evaluation, hard-pose set) are extrapolated, not rerun whole.
    proc = bench(
        tmp_path,
        *("--scale", "tiny", "--train-steps", "2", "--warmup-steps", "1", "--eval-samples", "128"),
        *("--hard-candidates", "16", "--max-stage-s", "0", "--out", str(out), "--markdown", str(markdown)),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["complete"] and results["scale"] == "tiny"
    rows = {row["stage"]: row for row in results["rows"]}
    assert list(rows) == [*TIMED_ROWS, "report"]
    for stage in TIMED_ROWS:
        row = rows[stage]
        assert row["wall_s"] > 0 and row["peak_rss_mb"] > 50 and row["cpu_s"] > 0, stage
        assert row["disk_bytes"] >= 0, stage
    for stage in DATA_ROWS:
        assert rows[stage]["disk_bytes"] > 100_000, stage
    assert rows["hard_pose_set"]["disk_bytes"] > 0  # the stand-in set
    for name in EXPERIMENTS:
        assert rows[f"train_spatial@{name}"]["extrapolated"] and rows[f"evaluate_h36m@{name}"]["extrapolated"]
        assert not rows[f"hard_poses@{name}"]["extrapolated"]
        epoch = rows[f"train_spatial@{name}"]["probe"]
        assert epoch["epoch_s_extrapolated"] == pytest.approx(epoch["train_samples"] / epoch["samples_per_s"])
    assert rows["hard_pose_set"]["extrapolated"] and not rows["fetch"]["extrapolated"]
    assert rows["report"]["timed"] is False
    table = markdown.read_text()
    for stage in [*TIMED_ROWS, "report", "**total**"]:
        assert f"| {stage} |" in table, stage
    assert table in proc.stdout
    assert not (tmp_path / ".bench-scale").exists()  # the work folder and its parent are removed


def test_refuses_an_output_path_it_would_clobber(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    monkeypatch.chdir(tmp_path)
    scale = importlib.import_module("scale")
    (tmp_path / "taken").mkdir()
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "someone's.txt").write_text("keep me\n")
    cases = [
        (["--out", "taken"], "--out taken: is a folder"),
        (["--markdown", "same.json", "--out", "same.json"], "is also --out"),
        (["--workdir", "work", "--out", "o.json", "--markdown", "o.md"], "--workdir work: exists and is not an empty"),
        (["--workdir", "new", "--out", "new/o.json", "--markdown", "o.md"], "--out new/o.json: is inside --workdir"),
        (["--stages", "train", "--out", "o.json", "--markdown", "o.md"], "--stages train: needs preprocess"),
        (["--train-steps", "0"], "--train-steps: must be at least 1, got 0"),
    ]
    for args, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            scale.parse_args(["--scale", "tiny", *args])
        assert exit_info.value.code == 2, args
        assert message in capsys.readouterr().err.splitlines()[-1], args
    assert (tmp_path / "work" / "someone's.txt").read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken", "work"]


@pytest.mark.parametrize(("option", "expected"), [([], "auto"), (["--compile", "false"], False)])
def test_compile_option_sets_the_work_folders_params(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: list[str], expected: object
) -> None:
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    monkeypatch.chdir(tmp_path)
    scale = importlib.import_module("scale")
    args = scale.parse_args(["--scale", "tiny", "--workdir", "work", *option])
    folder = scale.work_folder(args)
    params = yaml.safe_load((folder.root / "params.yaml").read_text())
    assert params["train"]["compile"] == expected and params["preset"] == "tiny"
    # A kept folder reused with the option gets it too.
    again = scale.work_folder(scale.parse_args(["--scale", "tiny", "--workdir", "work", "--compile", "true"]))
    assert yaml.safe_load((again.root / "params.yaml").read_text())["train"]["compile"] is True
