"""Shared fixtures: a throw-away copy of the pipeline as its own git + DVC repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PIPELINE_FILES = (
    "Snakefile",
    "dvc.yaml",
    "params.yaml",
    "envs",
    "configs",
    "stages",
    "src",
    "profiles",
    ".dvcignore",
    "tests/data/real_mocap",
    "docs/snakemake_report.rst",
)
BIN = Path(sys.executable).parent


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test-fast``, or ``make test PYTEST_ARGS="-n 2"``) each worker, and
    every tool it starts (Snakemake, DVC, the stages), runs torch on one thread: the workers share
    the cores, and OpenMP threads contending for a core cost far more than they give."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


def tool_env() -> dict[str, str]:
    """The environment for running the venv's tools (snakemake, dvc, mlpgraph) as subprocesses."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.setdefault("GIT_AUTHOR_NAME", "test")
    env.setdefault("GIT_AUTHOR_EMAIL", "test@example.com")
    env.setdefault("GIT_COMMITTER_NAME", "test")
    env.setdefault("GIT_COMMITTER_EMAIL", "test@example.com")
    return env


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command in ``cwd``; on failure show its output in the assertion message."""
    proc = subprocess.run(cmd, cwd=cwd, env=tool_env(), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def set_params(repo: Path, **dotted: object) -> None:
    """Edit ``repo/params.yaml`` in place: ``set_params(repo, **{"data.seed": 3})``."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for key, value in dotted.items():
        node = params
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


# The experiments the end-to-end tests run: one of each stage kind (single-frame MLP-Graph, a
# temporal MLP-Graph with refinement on detected keypoints, a graph baseline), so every stage
# of the table runs while the suite stays within its time budget.
E2E_EXPERIMENTS = ("mlpgraph_gt_f1", "mlpgraph_hr_f243_refine", "semgcn_gt_f1")


def make_pipeline_repo(parent: Path, experiments: tuple[str, ...] = E2E_EXPERIMENTS, preset: str = "tiny") -> Path:
    """A copy of the pipeline (stage table, params, stages, sources) as a fresh git + DVC repo in
    ``parent/repo`` at ``preset``, keeping only ``experiments`` (and their refinement entries)."""
    repo = parent / "repo"
    repo.mkdir()
    for name in PIPELINE_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(
                src,
                repo / name,
                symlinks=True,
                ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
            )
        else:
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / name)
    shutil.copy2(ROOT / ".gitignore", repo / ".gitignore")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    set_params(
        repo,
        preset=preset,
        experiments={name: params["experiments"][name] for name in experiments},
        refinement={name: spec for name, spec in params["refinement"].items() if name in experiments},
    )
    run(["git", "init", "-q"], repo)
    run(["dvc", "init", "-q"], repo)
    shutil.copy2(ROOT / ".dvc" / "config", repo / ".dvc" / "config")  # the project's default local remote
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "pipeline"], repo)
    return repo


@pytest.fixture
def pipeline_repo(tmp_path: Path) -> Path:
    """:func:`make_pipeline_repo` at preset tiny with the experiments of ``E2E_EXPERIMENTS``."""
    return make_pipeline_repo(tmp_path)
