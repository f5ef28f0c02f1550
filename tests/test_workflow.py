"""The stage table: Snakemake and DVC run the same stages, and agree afterwards (real tools, tiny data)."""

from __future__ import annotations

import json

import h5py
import pytest

from mlpgraph.workflow import load_stage_table, rule_name
from tests.conftest import ROOT, run, set_params

pytestmark = pytest.mark.slow


def test_stage_table_resolves_from_dvc_yaml():
    specs = {spec.name: spec for spec in load_stage_table(ROOT)}
    assert {"fetch", "preprocess@gt", "preprocess@hr"} <= set(specs)
    assert specs["fetch"].outs == ("data/raw",)
    assert "data/raw" in specs["preprocess@gt"].deps
    assert specs["preprocess@gt"].outs == ("data/processed/synthetic_gt_h36m16.h5",)
    assert "data.test_subjects" in specs["preprocess@gt"].params
    assert specs["preprocess@hr"].params == specs["preprocess@gt"].params
    assert specs["fetch"].resources["threads"] >= 1
    assert rule_name("preprocess@gt") == "preprocess__gt"


def test_snakemake_lists_one_rule_per_dvc_stage():
    rules = run(["snakemake", "--list-rules"], ROOT).stdout.split()
    expected = {rule_name(spec.name) for spec in load_stage_table(ROOT)}
    assert expected | {"all"} == set(rules)


def _nothing_to_do(repo) -> bool:
    out = run(["snakemake", "all", "-n", "--cores", "1"], repo)
    return "Nothing to be done" in out.stdout + out.stderr


def test_snakemake_all_then_engines_agree(pipeline_repo):
    repo = pipeline_repo
    run(["snakemake", "all", "--cores", "2"], repo)
    for kp in ("gt", "hr"):
        path = repo / "data" / "processed" / f"synthetic_{kp}_h36m16.h5"
        with h5py.File(path) as f:
            assert f.attrs["complete"] and f["poses_2d"].shape[1:] == (16, 2)
    manifest = json.loads((repo / "data" / "raw" / "manifest.json").read_text())
    assert set(manifest["files"]) >= {
        "data_3d_h36m.npz",
        "data_2d_h36m_gt.npz",
        "data_2d_h36m_hr.npz",
        "cameras.json",
    }

    assert "up to date" in run(["dvc", "status"], repo).stdout
    assert _nothing_to_do(repo)
    repro = run(["dvc", "repro"], repo).stdout
    assert "didn't change" in repro or "up to date" in repro
    assert "Running stage" not in repro

    # An evaluation-side data parameter touches preprocess only, not fetch.
    set_params(
        repo,
        **{
            "data.test_subjects": ["S11"],
            "data.train_subjects": ["S1", "S5", "S6", "S7", "S8", "S9"],
        },
    )
    status = run(["dvc", "status"], repo).stdout
    assert "preprocess@gt" in status and "preprocess@hr" in status and "fetch:" not in status
    dry = run(["snakemake", "all", "-n", "--cores", "1"], repo).stdout
    assert "preprocess__gt" in dry and "fetch" not in dry.replace("fetch.py", "")
    repro = run(["dvc", "repro"], repo).stdout
    assert "Running stage 'preprocess@gt'" in repro and "Running stage 'fetch'" not in repro
    assert _nothing_to_do(repo)
    with h5py.File(repo / "data" / "processed" / "synthetic_gt_h36m16.h5") as f:
        assert json.loads(f.attrs["test_subjects"]) == ["S11"]


def test_snakemake_lint_is_clean():
    out = run(["snakemake", "--lint"], ROOT)
    assert "good condition" in out.stdout + out.stderr


def test_data_param_change_through_snakemake(pipeline_repo):
    """A fetch parameter edited, then `snakemake all`: fetch and everything after it rerun, then DVC agrees."""
    repo = pipeline_repo
    run(["dvc", "repro"], repo)
    assert _nothing_to_do(repo)
    before = (repo / "data" / "raw" / "manifest.json").read_text()
    set_params(repo, **{"data.seed": 1})
    assert "fetch" in run(["dvc", "status"], repo).stdout
    out = run(["snakemake", "all", "--cores", "2"], repo)
    log = out.stdout + out.stderr
    for rule in ("rule fetch", "rule preprocess__gt", "rule preprocess__hr"):
        assert rule in log
    assert (repo / "data" / "raw" / "manifest.json").read_text() != before
    assert "up to date" in run(["dvc", "status"], repo).stdout
    assert _nothing_to_do(repo)
