"""bench/gpu.py: its CPU dry run writes the JSON the GPU run will, and without a GPU it says how to run it."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu.py"
NO_CUDA = "no CUDA device: run on a GPU machine, or pass --device cpu for a dry run"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread: the test shares the machine's cores
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True)


def _main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """``bench/gpu.py``'s ``main(args)`` in this process (bench/ on the path, as when run as a script)."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    return importlib.import_module("gpu").main(list(args))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_without_cuda_it_says_how_to_run_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    assert _main(monkeypatch, "--out", str(tmp_path / "bench_gpu.json")) == 2
    captured = capsys.readouterr()
    assert captured.err == NO_CUDA + "\n" and captured.out == ""
    assert not (tmp_path / "bench_gpu.json").exists()


def test_cuda_graphs_need_a_cuda_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    assert _main(monkeypatch, "--device", "cpu", "--cuda-graphs", "--out", str(tmp_path / "bench_gpu.json")) == 2
    assert capsys.readouterr().err == "--cuda-graphs needs a CUDA device, not cpu\n"


@pytest.mark.slow  # about 10 s on an idle 2-core machine, 30 s on a busy one
def test_cpu_dry_run_writes_every_field(tmp_path: Path) -> None:
    out = tmp_path / "metrics" / "bench_gpu.json"
    args = ("--device", "cpu", "--samples", "4096", "--steps", "3", "--batch-size", "32", "--warmup-steps", "1")
    proc = _run(*args, "--inference-batches", "32", "--min-seconds", "0", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text())
    assert results["dry_run"] is True
    assert results["device"] == "cpu"
    assert results["peaks"]["measured_matmul_flops_per_s"] > 0
    assert results["peaks"]["nominal_bf16_dense_flops_per_s"] is None  # a CPU is not in the datasheet table

    models = results["models"]
    assert set(models) == {"mlpgraph_f1", "mlpgraph_f243"}
    assert models["mlpgraph_f243"]["frames"] == 243
    for costs in models.values():
        # forward + backward: the backward of each product is about two more products
        assert 2.0 < costs["train_flops_per_sample"] / costs["forward_flops_per_sample"] < 3.5
    # the goal's "about 0.95 PFLOP": the release's arithmetic over 1.56 M samples, counted here
    assert models["mlpgraph_f243"]["release_epoch_pflop_full_scale"] == pytest.approx(0.95, rel=0.02)

    rows = results["training"]
    assert [(row["model"], row["variant"]) for row in rows] == [("mlpgraph_f1", "eager"), ("mlpgraph_f243", "eager")]
    for row in rows:
        assert row["losses_finite"] is True
        assert row["timed_steps"] == 3 and row["warmup_steps"] == 1
        assert row["epoch_basis"] == "extrapolated from 3 steps"
        assert row["epoch_s"] == pytest.approx(4096 / row["samples_per_s"])
        assert row["full_scale_epoch_s"] == pytest.approx(1_560_000 / row["samples_per_s"])
        assert row["achieved_flops_per_s"] == pytest.approx(
            models[row["model"]]["train_flops_per_sample"] * row["samples_per_s"]
        )
        assert row["fraction_of_nominal_peak"] is None
        assert row["peak_memory_bytes"] is None  # no CUDA memory to report on a CPU
        assert row["compile"] is False and row["graph_breaks"] == 0

    assert [(row["model"], row["batch"], row["path"]) for row in results["inference"]] == [
        ("mlpgraph_f1", 32, "folded"),
        ("mlpgraph_f243", 32, "folded"),
    ]
    goal = results["goal"]
    assert goal["model"] == "mlpgraph_f243" and goal["seconds"] == 10.0 and goal["met"] is False
    assert "extrapolated" in goal["basis"]
    assert "goal: a full 243-frame epoch" in proc.stdout and "dry run on a CPU" in proc.stdout
