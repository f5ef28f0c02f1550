"""The stage table: Snakemake and DVC run the same stages, and agree afterwards (real tools, tiny data)."""

from __future__ import annotations

import json

import h5py
import pytest

from mlpgraph.workflow import load_stage_table, rule_name
from tests.conftest import E2E_EXPERIMENTS, ROOT, run, set_params

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
    for experiment in E2E_EXPERIMENTS:
        h36m = json.loads((repo / "metrics" / "h36m" / f"{experiment}.json").read_text())
        assert h36m["last_epoch"]["P1"] < h36m["mean_pose_baseline"]["P1"]
        assert h36m["best_on_test"]["selection"] == "best on test (release rule)"
        assert h36m["data"]["label"] == "synthetic Human3.6M (tiny)" and h36m["mlflow_run_id"]
        assert json.loads((repo / "metrics" / "3dhp" / f"{experiment}.json").read_text())["last_epoch"]["pck"] > 0
        assert json.loads((repo / "metrics" / "hard" / f"{experiment}.json").read_text())["last_epoch"]["P1"] > 0
        assert (repo / "models" / experiment / "spatial" / "final.pt").is_file()
    refined = json.loads((repo / "metrics" / "h36m" / "mlpgraph_hr_f243_refine_refine.json").read_text())
    assert {"without_refinement", "refined_gt_root", "refined_estimated_root"} <= set(refined["last_epoch"])
    from mlflow.tracking import MlflowClient

    runs = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}").search_runs(experiment_ids=["1"], max_results=1000)
    stages = {(r.data.tags["stage"], r.data.tags["experiment"]) for r in runs}
    assert ("train_spatial", "semgcn_gt_f1") in stages and ("evaluate_refine", "mlpgraph_hr_f243_refine") in stages
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

    # An evaluation-only parameter reruns exactly the stages that read it, in both engines.
    set_params(repo, **{"evaluate.hard_fraction": 0.1})
    status = run(["dvc", "status"], repo).stdout
    assert "hard_pose_set" in status and "train_spatial" not in status and "evaluate_h36m" not in status
    dry = run(["snakemake", "all", "-n", "--cores", "1"], repo).stdout
    table = dry.split("Job stats:")[1].strip().split("\n\n")[0].splitlines()[2:]
    jobs = {line.split()[0] for line in table}
    assert jobs == {"hard_pose_set", "all", "total"} | {f"hard_poses__{e}" for e in E2E_EXPERIMENTS}, jobs
    repro = run(["dvc", "repro"], repo).stdout
    assert "Running stage 'hard_pose_set'" in repro and "Running stage 'train_spatial" not in repro
    assert _nothing_to_do(repo)
    hard = json.loads((repo / "metrics" / "hard" / "mlpgraph_gt_f1.json").read_text())
    assert hard["last_epoch"]["num_samples"] > 0


def test_snakemake_lint_is_clean():
    out = run(["snakemake", "--lint"], ROOT)
    assert "good condition" in out.stdout + out.stderr


def test_data_param_change_through_snakemake(pipeline_repo):
    """A fetch parameter edited, then Snakemake: fetch and the stages after it rerun, then DVC agrees.

    Limited to the data stages (targets), so the suite stays fast; the whole DAG runs above.
    """
    repo = pipeline_repo
    processed = [f"data/processed/synthetic_{kp}_h36m16.h5" for kp in ("gt", "hr")]
    run(["dvc", "repro", "preprocess@gt", "preprocess@hr"], repo)
    assert "Nothing to be done" in run(["snakemake", *processed, "-n", "--cores", "1"], repo).stdout
    before = (repo / "data" / "raw" / "manifest.json").read_text()
    set_params(repo, **{"data.seed": 1})
    status = run(["dvc", "status", "--with-deps", "preprocess@gt", "preprocess@hr"], repo).stdout
    assert "fetch" in status
    out = run(["snakemake", *processed, "--cores", "2"], repo)
    log = out.stdout + out.stderr
    for rule in ("rule fetch", "rule preprocess__gt", "rule preprocess__hr"):
        assert rule in log
    assert (repo / "data" / "raw" / "manifest.json").read_text() != before
    assert "up to date" in run(["dvc", "status", "--with-deps", "preprocess@gt", "preprocess@hr"], repo).stdout
    assert "Nothing to be done" in run(["snakemake", *processed, "-n", "--cores", "1"], repo).stdout
