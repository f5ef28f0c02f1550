"""The stage table: Snakemake and DVC run the same stages, and agree afterwards (real tools, tiny data).

The tests after ``tiny_run`` share one repository in which ``snakemake all`` has run the whole
tiny DAG once; each of them leaves it as it found it (both engines clean), so they run in order.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import h5py
import pytest
import torch
import yaml
from PIL import Image

from mlpgraph.workflow import commit_targets, load_stage_table, rule_name
from tests.conftest import ROOT, make_pipeline_repo, run, set_params

pytestmark = pytest.mark.slow


# ------------------------------------------------------------------------------ parsing helpers
def dvc_edges(repo: Path) -> set[tuple[str, str]]:
    """The DAG as DVC's own ``dvc dag --dot`` prints it, as (upstream, downstream) stage names."""
    dot = run(["dvc", "dag", "--dot"], repo).stdout
    return set(re.findall(r'"([^"]+)" -> "([^"]+)"', dot))


def snakemake_edges(repo: Path) -> set[tuple[str, str]]:
    """Snakemake's job DAG (``snakemake --dag``) as (upstream, downstream) rule names, without ``all``."""
    dot = run(["snakemake", "all", "--dag", "--cores", "1"], repo).stdout
    labels = dict(re.findall(r'^\s*(\d+)\[label = "([^"]+)"', dot, flags=re.MULTILINE))
    edges = {(labels[a], labels[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, flags=re.MULTILINE)}
    return {(a, b) for a, b in edges if "all" not in (a, b)}


def dry_run_jobs(repo: Path, *targets: str, forceall: bool = False) -> dict[str, dict[str, object]]:
    """Every job of a Snakemake dry run: rule name -> its input and output file lists and shell command."""
    cmd = ["snakemake", *(targets or ("all",)), "-n", "--cores", "1", *(["--forceall"] if forceall else [])]
    out = run(cmd, repo).stdout
    jobs: dict[str, dict[str, object]] = {}
    for block in re.split(r"\n(?=\[[^\]]+\]\n(?:local)?rule )", out):
        match = re.search(r"^(?:local)?rule (\S+):$", block, flags=re.MULTILINE)
        if match is None or match.group(1) == "all":
            continue
        fields = dict(re.findall(r"^    (input|output): (.*)$", block, flags=re.MULTILINE))
        shell = re.search(r"^Shell command: (.*)$", block, flags=re.MULTILINE)
        jobs[match.group(1)] = {
            "input": fields.get("input", "").split(", ") if fields.get("input") else [],
            "output": fields.get("output", "").split(", ") if fields.get("output") else [],
            "shell": shell.group(1) if shell else "",
        }
    return jobs


def dvc_stale_stages(repo: Path) -> set[str]:
    """Stages that ``dvc status`` reports as changed."""
    status = json.loads(run(["dvc", "status", "--json"], repo).stdout or "{}")
    return set(status)


def snakemake_pending(repo: Path) -> set[str]:
    """Rules (bar ``all``) that ``snakemake all -n`` would run."""
    return set(dry_run_jobs(repo))


def nothing_to_do(repo: Path) -> bool:
    out = run(["snakemake", "all", "-n", "--cores", "1"], repo)
    return "Nothing to be done" in out.stdout + out.stderr


def assert_clean(repo: Path) -> None:
    """Both engines agree that everything is up to date."""
    assert dvc_stale_stages(repo) == set(), run(["dvc", "status"], repo).stdout
    assert nothing_to_do(repo), snakemake_pending(repo)


# ------------------------------------------------------------------------- the table, no run
def test_stage_table_resolves_from_dvc_yaml():
    specs = {spec.name: spec for spec in load_stage_table(ROOT)}
    assert {"fetch", "preprocess@gt", "preprocess@hr"} <= set(specs)
    assert specs["fetch"].outs == ("data/raw",)
    assert "data/raw" in specs["preprocess@gt"].deps
    assert specs["preprocess@gt"].outs == ("data/processed/synthetic_gt_h36m16.h5",)
    assert specs["preprocess@gt"].params == ("data",)  # its file records the whole data section
    assert specs["preprocess@hr"].params == specs["preprocess@gt"].params
    assert specs["fetch"].resources["threads"] >= 1
    assert rule_name("preprocess@gt") == "preprocess__gt"
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for family in ("train_spatial", "evaluate_h36m", "evaluate_3dhp", "hard_poses", "summarise"):
        assert {f"{family}@{e}" for e in params["experiments"]} <= set(specs), family
    for family in ("train_refine", "evaluate_refine", "evaluate_real_refine"):
        assert {f"{family}@{e}" for e in params["refinement"]} <= set(specs), family


def expand_targets(specs, targets: list[str]) -> set[str]:
    """The stages ``dvc commit TARGETS`` commits: dvc.yaml is every stage, a family name its stages."""
    stages = set()
    for target in targets:
        if target == "dvc.yaml":
            stages |= {s.name for s in specs}
        else:
            stages |= {s.name for s in specs if s.name == target or s.name.startswith(target + "@")}
    return stages


def test_commit_targets_name_exactly_the_stages_that_ran_in_few_words():
    specs = load_stage_table(ROOT)
    everything = [s.name for s in specs]
    assert commit_targets(specs, everything) == ["dvc.yaml"]
    all_but_report = [n for n in everything if n != "report"]
    targets = commit_targets(specs, all_but_report)
    assert "train_spatial" in targets and "report" not in targets and len(targets) == len(set(targets)) < 15
    assert expand_targets(specs, targets) == set(all_but_report)
    some = ["train_spatial@mlpgraph_gt_f1", *(n for n in everything if n.startswith("evaluate_h36m@")), "fetch"]
    targets = commit_targets(specs, some)
    assert sorted(targets) == sorted(["fetch", "train_spatial@mlpgraph_gt_f1", "evaluate_h36m"])
    assert expand_targets(specs, targets) == set(some)


def test_snakemake_lists_one_rule_per_dvc_stage():
    rules = run(["snakemake", "--list-rules"], ROOT).stdout.split()
    expected = {rule_name(spec.name) for spec in load_stage_table(ROOT)}
    assert expected | {"all"} == set(rules)


def test_engines_see_the_same_stages_inputs_outputs_and_graph(pipeline_repo):
    """DVC's resolved stages against what Snakemake plans (dry run), and ``dvc dag`` against ``snakemake --dag``."""
    repo = pipeline_repo
    specs = {rule_name(spec.name): spec for spec in load_stage_table(repo)}
    jobs = dry_run_jobs(repo, forceall=True)
    assert set(jobs) == set(specs)
    for name, spec in specs.items():
        job = jobs[name]
        stamp = f".snakemake/mlpgraph-stamps/{name}"
        assert set(job["input"]) == set(spec.inputs) | {stamp}, name
        assert set(job["output"]) == set(spec.outs), name
        assert spec.cmd in job["shell"], name
    dvc = {(rule_name(a), rule_name(b)) for a, b in dvc_edges(repo)}
    assert dvc and dvc == snakemake_edges(repo)


def test_snakemake_lint_is_clean():
    out = run(["snakemake", "--lint"], ROOT)
    assert "good condition" in out.stdout + out.stderr


# ------------------------------------------------------------------- one tiny run, many checks
PRETRAINED = ("pretrained_gt_f1", "pretrained_hr_f243_refine")
# The shared run's trained experiments: a temporal MLP-Graph with refinement on detected 2D and a
# graph baseline (the single-frame MLP-Graph goes through the SLURM test's chain instead).
TRAINED = ("mlpgraph_hr_f243_refine", "semgcn_gt_f1")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pipeline repository at preset tiny after one ``snakemake all``.

    Besides ``TRAINED``: ``pretrained_hr_f243_refine`` imports release-format weights (the
    9-frame reference vectors' state dicts, saved as the release saves them: lifting network and
    refinement) and ``pretrained_gt_f1`` has no release folder, so its stages skip.
    """
    repo = make_pipeline_repo(tmp_path_factory.mktemp("tiny"), experiments=(*TRAINED, *PRETRAINED))
    release = repo / "release"
    release.mkdir()
    reference = torch.load(ROOT / "tests" / "data" / "reference" / "stmlpgraph_f9_z64_l2.pt", weights_only=True)
    torch.save(reference["state_dict"], release / "hr_f243.pth")
    torch.save(reference["refine_state_dict"], release / "hr_f243_refine.pth")
    set_params(
        repo,
        **{
            "experiments.pretrained_hr_f243_refine.pretrained.dir": str(release),
            "experiments.pretrained_hr_f243_refine.model_args.frames": 9,
        },
    )
    run(["git", "commit", "-qam", "release folder"], repo)
    run(["snakemake", "all", "--cores", "2"], repo)
    return repo


def test_snakemake_all_writes_every_output(tiny_run):
    repo = tiny_run
    for kp in ("gt", "hr"):
        path = repo / "data" / "processed" / f"synthetic_{kp}_h36m16.h5"
        with h5py.File(path) as f:
            assert f.attrs["complete"] and f["poses_2d"].shape[1:] == (16, 2)
    for experiment in TRAINED:
        h36m = json.loads((repo / "metrics" / "h36m" / f"{experiment}.json").read_text())
        assert h36m["last_epoch"]["P1"] < h36m["mean_pose_baseline"]["P1"]
        assert h36m["best_on_test"]["selection"] == "best on test (release rule)"
        assert h36m["data"]["label"] == "synthetic Human3.6M (tiny)" and h36m["mlflow_run_id"]
        assert json.loads((repo / "metrics" / "3dhp" / f"{experiment}.json").read_text())["last_epoch"]["PCK"] > 0
        assert json.loads((repo / "metrics" / "hard" / f"{experiment}.json").read_text())["last_epoch"]["P1"] > 0
        assert (repo / "models" / experiment / "spatial" / "final.pt").is_file()
        summary = json.loads((repo / "metrics" / "summary" / f"{experiment}.json").read_text())
        assert summary["P1_last"] == h36m["last_epoch"]["P1"] and summary["PCK_last"] > 0 and summary["available"]
    refined = json.loads((repo / "metrics" / "h36m" / "mlpgraph_hr_f243_refine_refine.json").read_text())
    assert {"without_refinement", "refined_gt_root", "refined_estimated_root"} <= set(refined["last_epoch"])
    manifest = json.loads((repo / "data" / "raw" / "manifest.json").read_text())
    assert set(manifest["files"]) >= {"data_3d_h36m.npz", "data_2d_h36m_gt.npz", "data_2d_h36m_hr.npz", "cameras.json"}
    report = (repo / "metrics" / "results.md").read_text()
    for experiment in TRAINED:
        p1 = json.loads((repo / "metrics" / "h36m" / f"{experiment}.json").read_text())["last_epoch"]["P1"]
        assert f"`{experiment}`" in report and f"{p1:.1f}" in report
    assert {p.name for p in (repo / "metrics" / "plots").glob("*.png")} >= {"h36m_p1_per_action.png"}
    # One demo per temporal experiment with figures: S9 Walking's 80 tiny frames, every 2nd.
    demos = {p.name: p for p in (repo / "metrics" / "demo").glob("*.gif")}
    assert set(demos) == {"mlpgraph_hr_f243_refine.gif", "pretrained_hr_f243_refine.gif"}
    with Image.open(demos["mlpgraph_hr_f243_refine.gif"]) as gif:
        assert gif.n_frames == 40 and gif.size == (720, 360)
    assert "![mlpgraph_hr_f243_refine demo](demo/mlpgraph_hr_f243_refine.gif)" in report
    assert "## Real people" in report
    for experiment in TRAINED:
        real = json.loads((repo / "metrics" / "real" / f"{experiment}.json").read_text())
        assert f"{real['last_epoch']['P1']:.1f}" in report.split("## Real people")[1]
    page = (repo / "metrics" / "results.html").read_text()
    assert "data:image/gif;base64," in page and "data:image/png;base64," in page and "<h2>Real people" in page


def test_pretrained_experiments_import_or_skip(tiny_run):
    """Release weights go through the same evaluation stages; without a release folder the stages skip."""
    repo = tiny_run
    train = json.loads((repo / "metrics" / "train" / "pretrained_hr_f243_refine.json").read_text())
    assert train["available"] and train["source"] == "MLP-Graph release" and train["parameters"] == 86_883
    h36m = json.loads((repo / "metrics" / "h36m" / "pretrained_hr_f243_refine.json").read_text())
    assert h36m["parameters"] == 86_883 and h36m["frames"] == 9 and h36m["last_epoch"]["P1"] > 0
    assert h36m["last_epoch"]["P1"] == h36m["best_on_test"]["P1"]
    refined = json.loads((repo / "metrics" / "h36m" / "pretrained_hr_f243_refine_refine.json").read_text())
    assert refined["last_epoch"]["refined_estimated_root"]["P1"] > 0
    assert json.loads((repo / "metrics" / "train" / "pretrained_hr_f243_refine_refine.json").read_text())["available"]
    for kind in ("h36m", "3dhp", "hard", "train"):
        skipped = json.loads((repo / "metrics" / kind / "pretrained_gt_f1.json").read_text())
        assert skipped["available"] is False and "pretrained.dir is not set" in skipped["reason"]
    summary = json.loads((repo / "metrics" / "summary" / "pretrained_gt_f1.json").read_text())
    assert summary == {"experiment": "pretrained_gt_f1", "available": False}
    report = (repo / "metrics" / "results.md").read_text()
    assert "MLP-Graph (released weights)" in report
    assert "- `pretrained_gt_f1`: experiments.pretrained_gt_f1.pretrained.dir is not set" in report


def test_mlflow_has_one_run_per_stage_of_the_dag(tiny_run):
    """Every job of ``snakemake all`` is one MLflow run tagged with its stage and experiment (``mlflow ui``)."""
    from mlflow.tracking import MlflowClient

    repo = tiny_run
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("mlpgraph")
    runs = client.search_runs(experiment_ids=[experiment.experiment_id], max_results=1000)
    tagged = {r.data.tags["dvc_stage"] for r in runs}
    assert tagged == {spec.name for spec in load_stage_table(repo)}
    assert len(runs) == len(tagged)
    for r in runs:
        assert r.info.status == "FINISHED" and r.data.tags["git_commit"] != "unknown"
        assert r.data.tags["data_fingerprint"] or r.data.tags.get("available") == "False", r.info.run_name
    train = next(r for r in runs if r.data.tags["dvc_stage"] == "train_spatial@semgcn_gt_f1")
    assert "recipe.lr" in train.data.params and len(client.get_metric_history(train.info.run_id, "P1")) == 2
    # The model registry: one registered model per training run's experiment, its version from that run.
    trained = {r.data.tags["dvc_stage"] for r in runs if r.data.tags["dvc_stage"].startswith("train_")}
    trained = {name for name in trained if not name.split("@")[1].startswith("pretrained_")}
    registered = {m.name for m in client.search_registered_models()}
    expected = {
        exp if stage == "train_spatial" else f"{exp}.{stage}" for stage, exp in (n.split("@") for n in trained)
    }
    assert registered == expected
    for name in registered:
        experiment, _, stage = name.partition(".")
        versions = client.search_model_versions(f"name='{name}'")
        assert versions and {client.get_run(v.run_id).data.tags["dvc_stage"] for v in versions} == {
            f"{stage or 'train_spatial'}@{experiment}"
        }


def test_snakemake_report_is_one_html_file_with_the_results(tiny_run, tmp_path):
    """``snakemake --report``: one self-contained HTML holding the results page (tables, plots, demos)."""
    out = tmp_path / "report.html"
    run(["snakemake", "--report", str(out), "--cores", "1"], tiny_run)
    text = out.read_text()
    assert "results.html" in text and "h36m_p1_per_action.png" in text and len(text) > 100_000
    assert_clean(tiny_run)


def test_engines_agree_after_snakemake(tiny_run):
    repo = tiny_run
    assert_clean(repo)
    repro = run(["dvc", "repro"], repo).stdout
    assert "Running stage" not in repro
    # {revision: {"data": {file: {"data": {...}}}}}, the workspace's revision named "workspace" or ""
    metrics = next(iter(json.loads(run(["dvc", "metrics", "show", "--json"], repo).stdout).values()))["data"]
    assert set(metrics) == {f"metrics/summary/{e}.json" for e in (*TRAINED, *PRETRAINED)}  # the flat summaries
    for experiment in TRAINED:
        summary = metrics[f"metrics/summary/{experiment}.json"]["data"]
        assert {"P1_last", "P2_last", "P1_best", "PCK_last", "AUC_last", "P1_hard_last"} <= set(summary)
    columns = run(["dvc", "exp", "show", "--csv"], repo).stdout.splitlines()[0].split(",")
    metric_columns = [c for c in columns if c.startswith("metrics/") and ":" in c]  # FILE:KEY; deps are paths
    # One column per key of each summary file, nothing from the detail files (they gave 1,098). The
    # whole table also has a column per params key and per dependency path.
    summaries = [repo / "metrics" / "summary" / f"{e}.json" for e in (*TRAINED, *PRETRAINED)]
    expected = {f"{p.relative_to(repo)}:{key}" for p in summaries for key in json.loads(p.read_text())}
    assert set(metric_columns) == expected and len(expected) < 40, metric_columns
    plots = json.loads(run(["dvc", "plots", "show", "--json"], repo).stdout)
    assert not plots.get("errors"), plots.get("errors")
    curve = "metrics/train/semgcn_gt_f1_curve.json"
    assert {"epoch", "P1", "loss"} <= set(plots["data"][curve][0]["content"]["data"]["values"][0])


def test_evaluation_param_through_dvc_exp_run(tiny_run):
    """``dvc exp run -S`` on an evaluation-only key reruns exactly the stages downstream of it; Snakemake agrees."""
    repo = tiny_run
    experiments = (*TRAINED, *PRETRAINED)
    downstream = {"hard_pose_set", "report"} | {f"{s}@{e}" for e in experiments for s in ("hard_poses", "summarise")}
    set_params(repo, **{"evaluate.hard_fraction": 0.1})
    assert dvc_stale_stages(repo) == {"hard_pose_set"}
    assert snakemake_pending(repo) == {rule_name(s) for s in downstream}
    set_params(repo, **{"evaluate.hard_fraction": 0.05})
    assert_clean(repo)
    out = run(["dvc", "exp", "run", "-S", "evaluate.hard_fraction=0.1"], repo).stdout
    ran = set(re.findall(r"Running stage '([^']+)'", out))
    assert ran == downstream, out
    assert yaml.safe_load((repo / "params.yaml").read_text())["evaluate"]["hard_fraction"] == 0.1
    assert_clean(repo)


def test_training_param_of_one_experiment_through_snakemake(tiny_run):
    """A training parameter of one experiment reruns its chain only, in both engines; afterwards DVC is clean."""
    repo = tiny_run
    before = json.loads((repo / "metrics" / "h36m" / "mlpgraph_hr_f243_refine.json").read_text())
    set_params(repo, **{"experiments.semgcn_gt_f1.model_args.dropout": 0.1})
    families = ("train_spatial", "evaluate_h36m", "evaluate_3dhp", "evaluate_real", "hard_poses")
    chain = {f"{family}@semgcn_gt_f1" for family in (*families, "summarise")} | {"report"}
    # Its readers: the experiment's stages (each reads experiments.semgcn_gt_f1) and the report.
    assert dvc_stale_stages(repo) == {f"{family}@semgcn_gt_f1" for family in families} | {"report"}
    assert snakemake_pending(repo) == {rule_name(s) for s in chain}
    log = run(["snakemake", "all", "--cores", "2"], repo)
    ran = set(re.findall(r"^(?:local)?rule (\S+):$", log.stdout + log.stderr, flags=re.MULTILINE)) - {"all"}
    assert ran == {rule_name(s) for s in chain}
    assert json.loads((repo / "metrics" / "h36m" / "mlpgraph_hr_f243_refine.json").read_text()) == before
    assert_clean(repo)


def test_data_param_reaches_every_stage_in_both_engines(tiny_run):
    """A data parameter (the generator's seed) makes both engines plan the whole DAG; undone, nothing."""
    repo = tiny_run
    set_params(repo, **{"data.seed": 1})
    readers = {spec.name for spec in load_stage_table(repo) if {"data", "data.seed"} & set(spec.params)}
    assert "fetch" in readers and dvc_stale_stages(repo) == readers
    assert snakemake_pending(repo) == {rule_name(spec.name) for spec in load_stage_table(repo)}
    status = run(["dvc", "status", "--with-deps", "report"], repo).stdout
    assert "fetch" in status
    set_params(repo, **{"data.seed": 0})
    assert_clean(repo)


def test_push_delete_pull_round_trip(tiny_run):
    """The default local remote: push, lose the cache and every cached output, pull, and both engines are clean."""
    repo = tiny_run
    assert "dvc-remote" in run(["dvc", "remote", "list"], repo).stdout
    run(["dvc", "push"], repo)
    checkpoint = repo / "models" / "semgcn_gt_f1" / "spatial" / "final.pt"
    original = checkpoint.read_bytes()
    shutil.rmtree(repo / ".dvc" / "cache")
    for folder in ("data", "models"):
        shutil.rmtree(repo / folder)
    assert dvc_stale_stages(repo)
    run(["dvc", "pull"], repo)
    assert checkpoint.read_bytes() == original
    assert dvc_stale_stages(repo) == set()
    # Pulled files are new on disk; Snakemake judges by time stamps, so mark the outputs as current.
    run(["snakemake", "all", "--touch", "--cores", "1"], repo)
    assert_clean(repo)


def test_a_value_in_params_yaml_wins_over_the_preset(tiny_run):
    """``train.epochs: 1`` in params.yaml under preset tiny (whose epochs is 2): the stage trains one epoch.

    Last in the module: it leaves the shared run with a retrained experiment.
    """
    repo = tiny_run
    set_params(repo, **{"train.epochs": 1})
    stale = dvc_stale_stages(repo)
    assert "train_spatial@semgcn_gt_f1" in stale and "fetch" not in stale and "hard_pose_set" not in stale
    run(["dvc", "repro", "train_spatial@semgcn_gt_f1"], repo)
    summary = json.loads((repo / "metrics" / "train" / "semgcn_gt_f1.json").read_text())
    curve = json.loads((repo / "metrics" / "train" / "semgcn_gt_f1_curve.json").read_text())
    assert summary["epochs"] == 1 and summary["recipe"]["epochs"] == 1 and len(curve["history"]) == 1


def test_params_mistakes_stop_both_engines_with_one_line(pipeline_repo):
    """An unknown key, a wrong type, a --config value: one line and exit 2 from Snakemake; DVC's stage refuses too."""
    repo = pipeline_repo
    set_params(repo, **{"train.l1_wieght": 0.1})
    proc = run(["snakemake", "-n", "--cores", "1"], repo, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = f"error: {repo / 'params.yaml'}: train.l1_wieght: unknown key (did you mean 'l1_weight'?)"
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run(["dvc", "repro", "fetch"], repo, check=False)
    assert proc.returncode != 0 and "train.l1_wieght: unknown key" in proc.stdout + proc.stderr
    assert not (repo / "data" / "raw").exists()
    set_params(repo, **{"train": yaml.safe_load((ROOT / "params.yaml").read_text())["train"] | {"epochs": "ten"}})
    proc = run(["snakemake", "-n", "--cores", "1"], repo, check=False)
    assert proc.returncode == 2 and "train.epochs: input should be a valid integer, got 'ten'" in proc.stderr
    set_params(repo, **{"train.epochs": None})
    proc = run(["snakemake", "-n", "--cores", "1", "--config", "preset=full"], repo, check=False)
    assert proc.returncode == 2 and "--config preset: parameters are read from params.yaml only" in proc.stderr
