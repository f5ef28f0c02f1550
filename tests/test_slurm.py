"""The SLURM profile (profiles/slurm), tested without a cluster.

``tests/fake_slurm/`` stands in for SLURM (``sbatch``, ``srun``, ``sacct``, ``squeue``, ``scancel``,
...): it runs each job on this machine and records what it was asked for. The end-to-end tests run
the real Snakemake and snakemake-executor-plugin-slurm against it, on one experiment's chain
(fetch, preprocess, train, evaluate) of a small copy of the pipeline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from mlpgraph.params import load_params
from mlpgraph.workflow import StageSpec, launch_command, load_stage_table, stage_resources
from tests.conftest import ROOT, make_pipeline_repo, run, set_params, tool_env

FAKE_SLURM = Path(__file__).resolve().parent / "fake_slurm"
PROFILE = ROOT / "profiles" / "slurm" / "config.yaml"
EXPERIMENT = "mlpgraph_gt_f1"
TARGET = f"metrics/h36m/{EXPERIMENT}.json"
CHAIN = {
    "fetch": "fetch",
    "preprocess__gt": "preprocess",
    f"train_spatial__{EXPERIMENT}": "train_spatial",
    f"evaluate_h36m__{EXPERIMENT}": "evaluate_h36m",
}
METRICS = (f"metrics/train/{EXPERIMENT}.json", f"metrics/train/{EXPERIMENT}_curve.json", TARGET)
# The plugin waits 40 s before its first status query by default; then it backs off by 10 s a query.
FAST_POLLING = ("--slurm-init-seconds-before-status-checks", "1")
TIMEOUT_S = 600


# ------------------------------------------------------------------------------ launch_command
def spec(
    name: str, gpu: int, cmd: str = "python stages/train_spatial.py --params params.yaml --experiment x"
) -> StageSpec:
    return StageSpec(name=name, cmd=cmd, deps=(), params=(), outs=(), resources={"threads": 2, "gpu": gpu})


@pytest.mark.parametrize("gpu", [0, 1])
def test_launch_command_is_the_dvc_command_up_to_one_gpu(gpu):
    stage = spec("train_spatial@x", gpu)
    assert launch_command(stage) == stage.cmd


def test_launch_command_runs_multi_gpu_training_under_torchrun():
    assert launch_command(spec("train_spatial@x", 4)) == (
        "torchrun --standalone --nproc-per-node 4 stages/train_spatial.py --params params.yaml --experiment x"
    )
    refine = spec("train_refine@x", 2, "python  stages/train_refine.py --experiment x")
    assert launch_command(refine) == "torchrun --standalone --nproc-per-node 2 stages/train_refine.py --experiment x"
    module = spec("train_spatial@x", 2, "python3 -m mlpgraph.cli train-spatial --experiment x")
    assert (
        launch_command(module)
        == "torchrun --standalone --nproc-per-node 2 -m mlpgraph.cli train-spatial --experiment x"
    )


def test_launch_command_leaves_other_stages_alone():
    evaluate = spec("evaluate_h36m@x", 2, "python stages/evaluate_h36m.py --experiment x")
    assert launch_command(evaluate) == evaluate.cmd


def test_launch_command_refuses_a_command_it_cannot_wrap():
    with pytest.raises(ValueError, match="torchrun"):
        launch_command(spec("train_spatial@x", 2, "bash train.sh"))


def test_params_ask_a_gpu_for_training_only():
    params = load_params(ROOT / "params.yaml")
    for family in ("train_spatial", "train_refine"):
        assert stage_resources(family, params)["gpu"] == 1
    for family in ("fetch", "preprocess", "evaluate_h36m", "evaluate_refine", "evaluate_3dhp", "hard_poses"):
        assert stage_resources(family, params)["gpu"] == 0


# ----------------------------------------------------------------------------------- profile
def test_slurm_profile_keys():
    text = PROFILE.read_text()
    profile = yaml.safe_load(text)
    assert profile["executor"] == "slurm"
    assert profile["rerun-triggers"] == ["mtime"]
    assert profile["printshellcmds"] is True
    assert isinstance(profile["jobs"], int) and profile["jobs"] > 1
    assert profile["latency-wait"] >= 30 and profile["retries"] >= 1
    assert profile["show-failed-logs"] is True
    # partition and account are the user's to set: named in comments, not set
    assert "slurm_partition" in text and "slurm_account" in text
    assert not {"slurm_partition", "slurm_account"} & set(profile["default-resources"])
    assert "snakemake all --profile profiles/slurm" in text


def test_local_profile_does_not_change_slurm_settings():
    """profiles/default (-> local) is read too, as the workflow profile, and wins key by key over
    --profile: any key it shares with the SLURM profile must agree (``cores`` is ignored by the
    cluster executor, which leaves the job count to ``jobs``)."""
    local = yaml.safe_load((ROOT / "profiles" / "local" / "config.yaml").read_text())
    slurm = yaml.safe_load(PROFILE.read_text())
    assert (ROOT / "profiles" / "default").resolve() == (ROOT / "profiles" / "local").resolve()
    for key, value in local.items():
        if key != "cores":
            assert slurm.get(key, value) == value, key


# ------------------------------------------------------------------------------ the fake itself
def fake_env(state: Path) -> dict[str, str]:
    """The tools' environment with the fake SLURM first on PATH and its state in ``state``."""
    env = tool_env()
    env = {k: v for k, v in env.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
    env["PATH"] = f"{FAKE_SLURM}{os.pathsep}{env['PATH']}"
    env["FAKE_SLURM_DIR"] = str(state)
    return env


def fake(tool: str, *args: str, state: Path, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FAKE_SLURM / tool), *args],
        cwd=cwd,
        env=fake_env(state),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def submissions(state: Path) -> list[dict]:
    """Every job the fake sbatch recorded, with its final ``state`` and its ``steps`` (srun calls)."""
    jobs = []
    for job_dir in sorted((state / "jobs").iterdir(), key=lambda p: [int(x) for x in p.name.split("_")]):
        record = json.loads((job_dir / "submit.json").read_text())
        record["state"] = json.loads((job_dir / "state.json").read_text())
        record["steps"] = [json.loads(p.read_text()) for p in sorted((job_dir / "steps").glob("*.json"))]
        jobs.append(record)
    return jobs


def wait_finished(state: Path, cwd: Path, ids: list[str], timeout: float = 30) -> dict[str, str]:
    """Poll the fake sacct (as the plugin does) until every job in ``ids`` has left PENDING/RUNNING."""
    deadline = time.time() + timeout
    while True:
        out = fake("sacct", "-X", "--parsable2", "--noheader", "--format=JobIdRaw,State", state=state, cwd=cwd)
        states = dict(line.split("|") for line in out.stdout.splitlines())
        if all(states.get(i, "PENDING") not in ("PENDING", "RUNNING") for i in ids) or time.time() > deadline:
            return states
        time.sleep(0.2)


@pytest.fixture
def fake_state(tmp_path: Path):
    """A fresh fake-SLURM state folder; jobs still running at the end of the test are cancelled."""
    state = tmp_path / "fake_slurm_state"
    yield state
    if (state / "jobs").is_dir():
        active = [j["job_id"] for j in submissions(state) if j["state"]["state"] in ("PENDING", "RUNNING")]
        if active:
            fake("scancel", *active, state=state, cwd=tmp_path)


def test_fake_sbatch_runs_records_and_reports(tmp_path, fake_state):
    (tmp_path / "logs").mkdir()
    common = ["--parsable", "--job-name", "run-1", "--output", "logs/%j.log", "--export=ALL", "--comment", "rule_a"]
    ok = fake(
        "sbatch",
        *common,
        "-t",
        "5",
        "--mem",
        "1000",
        "--ntasks=1",
        "--cpus-per-task=2",
        "-D",
        str(tmp_path),
        "--wrap=echo job $SLURM_JOB_ID; srun -n1 --cpus-per-task=2 --nodes=1 sh -c 'echo step $SLURM_STEP_ID'",
        state=fake_state,
        cwd=tmp_path,
    )
    failing = fake(
        "sbatch", *common, "--gpus=1", "--wrap=srun -n1 --gpus=1 sh -c 'exit 3'", state=fake_state, cwd=tmp_path
    )
    too_big = fake("sbatch", *common, "--wrap=srun --gpus=1 true", state=fake_state, cwd=tmp_path)
    sleeper = fake(
        "sbatch", *common, "/dev/stdin", stdin="#!/bin/sh\n#SBATCH -t 10\nsleep 60\n", state=fake_state, cwd=tmp_path
    )
    ids = [p.stdout.strip() for p in (ok, failing, too_big, sleeper)]
    assert all(i.isdigit() for i in ids), [ok.stderr, failing.stderr, too_big.stderr, sleeper.stderr]
    assert fake("scancel", ids[3], state=fake_state, cwd=tmp_path).returncode == 0
    states = wait_finished(fake_state, tmp_path, ids)
    assert [states[i] for i in ids[:3]] == ["COMPLETED", "FAILED", "FAILED"]
    assert states[ids[3]].startswith("CANCELLED")
    assert (tmp_path / "logs" / f"{ids[0]}.log").read_text() == f"job {ids[0]}\nstep 0\n"
    assert "Unable to create step" in (tmp_path / "logs" / f"{ids[2]}.log").read_text()
    jobs = {j["job_id"]: j for j in submissions(fake_state)}
    first = jobs[ids[0]]
    assert (
        first["resources"].items() >= {"gpus": 0, "mem_mb": 1000, "time_min": 5, "cpus_per_task": 2, "cpus": 2}.items()
    )
    assert first["comment"] == "rule_a" and first["workdir"] == str(tmp_path)
    assert [s["state"] for s in first["steps"]] == ["COMPLETED"]
    assert jobs[ids[1]]["resources"]["gpus"] == 1 and jobs[ids[1]]["state"]["exit_code"] == 3
    assert jobs[ids[3]]["resources"]["time_min"] == 10  # from the #SBATCH line
    queue = fake(
        "squeue", "--format=%i|%T", "--states=all", "--noheader", "--name", "run-1", state=fake_state, cwd=tmp_path
    )
    assert queue.stdout.split() == [
        f"{i}|{s}" for i, s in zip(ids, ["COMPLETED", "FAILED", "FAILED", "CANCELLED"], strict=True)
    ]
    assert [(s["gpus"], s["state"], s["exit_code"]) for s in jobs[ids[1]]["steps"]] == [(1, "FAILED", 3)]
    reason = fake("sacct", "-j", f"{ids[1]}.0", "--format=Reason", "--noheader", state=fake_state, cwd=tmp_path)
    assert reason.stdout.split() == ["NonZeroExitCode"]
    rejected = fake("sbatch", "--frobnicate", "--wrap=true", state=fake_state, cwd=tmp_path)
    assert rejected.returncode == 1 and "unrecognized option '--frobnicate'" in rejected.stderr


# ------------------------------------------------------------------------------ end to end
def small_repo(parent: Path) -> Path:
    """A pipeline copy with one experiment, sized so that its chain runs in seconds on one core.

    One training and one test subject, one epoch, one thread per stage (two threads per job on 2
    shared cores were several times slower than one), gt keypoints only.
    """
    parent.mkdir(parents=True, exist_ok=True)
    repo = make_pipeline_repo(parent, experiments=(EXPERIMENT,))
    tiny = repo / "configs" / "tiny.yaml"
    config = yaml.safe_load(tiny.read_text())
    config["train"]["epochs"] = 1
    tiny.write_text(yaml.safe_dump(config, sort_keys=False))
    params = yaml.safe_load((repo / "params.yaml").read_text())
    resources = {family: {**values, "threads": 1} for family, values in params["resources"].items()}
    set_params(
        repo,
        resources=resources,
        **{"data.keypoints": ["gt"], "data.train_subjects": ["S1"], "data.test_subjects": ["S9"]},
    )
    run(["git", "commit", "-qam", "small"], repo)
    return repo


def snakemake(repo: Path, *args: str, env: dict[str, str], timeout: float = TIMEOUT_S):
    """Run the venv's snakemake in ``repo``; returns (exit status, stdout + stderr)."""
    try:
        proc = subprocess.run(["snakemake", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"snakemake {' '.join(args)} ran past {timeout} s\n{exc.stdout}\n{exc.stderr}") from exc
    return proc.returncode, proc.stdout + proc.stderr


def volatile(key: str) -> bool:
    """Fields that differ between two identical runs: timings and run ids."""
    return "time" in key.lower() or "seconds" in key.lower() or key == "mlflow_run_id"


def stable(value):
    """``value`` without its volatile fields, at any depth."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if not volatile(k)}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


@pytest.mark.slow
def test_chain_through_fake_slurm_equals_local_run(tmp_path, fake_state, monkeypatch):
    """One experiment's chain through the SLURM profile: every job goes through sbatch with the
    stage's resources (a GPU for training, none for the rest), and the metrics are the local run's."""
    repo = small_repo(tmp_path / "slurm")
    local = Path(shutil.copytree(repo.parent, tmp_path / "local", symlinks=True)) / repo.name
    # The local reference runs meanwhile (the SLURM run mostly waits between status queries).
    local_log = (tmp_path / "local.log").open("w")
    local_run = subprocess.Popen(
        ["snakemake", TARGET, "--cores", "2", "--profile", "profiles/local"],
        cwd=local,
        env=tool_env(),
        stdout=local_log,
        stderr=subprocess.STDOUT,
    )
    try:
        code, log = snakemake(repo, TARGET, "--profile", "profiles/slurm", *FAST_POLLING, env=fake_env(fake_state))
    finally:
        local_code = local_run.wait(timeout=TIMEOUT_S)
        local_log.close()
    assert code == 0, log
    assert local_code == 0, (tmp_path / "local.log").read_text()

    # Every job went through sbatch (none ran on the submitting machine), each once, and its
    # srun step asked for what the allocation had.
    assert "localrule" not in log
    jobs = {j["comment"].removeprefix("rule_"): j for j in submissions(fake_state)}
    assert set(jobs) == set(CHAIN) and len(submissions(fake_state)) == len(CHAIN), list(jobs)
    params = load_params(repo / "params.yaml")
    for rule, family in CHAIN.items():
        job, want = jobs[rule], stage_resources(family, params)
        res = job["resources"]
        assert job["state"]["state"] == "COMPLETED" and job["workdir"] == str(repo), job
        assert (res["cpus_per_task"], res["mem_mb"], res["time_min"]) == (
            want["threads"],
            want["mem_mb"],
            want["runtime"],
        ), (rule, res)
        assert res["gpus"] == want["gpu"] == (1 if family == "train_spatial" else 0), (rule, res)
        assert ("--gpus=1" in job["argv"]) == (family == "train_spatial") and res["gres"] is None, job["argv"]
        assert [step["gpus"] for step in job["steps"]] == [want["gpu"]], job["steps"]
        assert f"SLURM jobid {job['job_id']}" in log

    # The same numbers as the local run, field by field (timings and run ids aside).
    for path in METRICS:
        ours, theirs = (json.loads((r / path).read_text()) for r in (repo, local))
        assert stable(ours) == stable(theirs), path
    assert stable(ours)["last_epoch"]["P1"] > 0  # the comparison was of the numbers themselves
    assert (repo / "models" / EXPERIMENT / "spatial" / "final.pt").is_file()

    # Snakemake's onsuccess recorded the chain in dvc.lock; both engines agree it is done.
    stage = f"evaluate_h36m@{EXPERIMENT}"
    assert "up to date" in run(["dvc", "status", "--with-deps", stage], repo).stdout
    assert "Nothing to be done" in snakemake(repo, TARGET, "-n", env=fake_env(fake_state))[1]
    locked = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    assert set(locked) == {"fetch", "preprocess@gt", f"train_spatial@{EXPERIMENT}", stage}
    monkeypatch.chdir(repo)  # DVC names the stages relative to the working directory
    assert {s.name: s.cmd for s in load_stage_table(repo) if s.name in locked} == {
        name: entry["cmd"] for name, entry in locked.items()
    }


@pytest.mark.slow
def test_failed_job_fails_the_run_with_its_log(tmp_path, fake_state):
    """A stage that fails on the cluster: snakemake exits non-zero and prints the stage's log, SLURM's
    job log and its path (kept for failed jobs).

    ``--retries 0``: the profile resubmits a failed job once, and the plugin's status queries back
    off after a failure, which would add most of a minute here.
    """
    repo = small_repo(tmp_path)
    set_params(repo, **{"data.source": "files", "data.dir": str(tmp_path / "no-such-data")})
    args = ("data/raw", "--profile", "profiles/slurm", "--retries", "0", *FAST_POLLING)
    code, log = snakemake(repo, *args, env=fake_env(fake_state))
    assert code != 0, log
    jobs = submissions(fake_state)
    assert [(j["comment"], j["state"]["state"]) for j in jobs] == [("rule_fetch", "FAILED")]
    assert "SLURM status is: 'FAILED'" in log
    assert "Error in rule fetch" in log and "logs/fetch.log" in log
    assert "no-such-data" in (repo / "logs" / "fetch.log").read_text()
    assert "no-such-data" in log.split("Error in rule fetch", 1)[1]  # show-failed-logs printed it
    slurm_log = repo / ".snakemake" / "slurm_logs" / "rule_fetch" / f"{jobs[-1]['job_id']}.log"
    assert slurm_log.is_file() and str(slurm_log) in log  # kept for the failed job, path reported
    assert "Error in rule fetch" in slurm_log.read_text()


@pytest.mark.slow
def test_multi_gpu_training_runs_under_torchrun(tmp_path, monkeypatch):
    """gpu: 2 for training: Snakemake's shell line is torchrun's, DVC's command stays the dvc.yaml one."""
    repo = small_repo(tmp_path)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    set_params(repo, **{"resources.train_spatial": {**params["resources"]["train_spatial"], "gpu": 2}})
    code, log = snakemake(repo, TARGET, "-n", "--profile", "profiles/slurm", env=fake_env(tmp_path / "state"))
    assert code == 0, log
    train = log.split(f"rule train_spatial__{EXPERIMENT}:", 1)[1].split("\n\n", 1)[0]
    assert "gpu=2" in train
    torchrun = "(torchrun --standalone --nproc-per-node 2 stages/train_spatial.py --params params.yaml"
    assert f"{torchrun} --experiment {EXPERIMENT} " in train
    evaluate = log.split(f"rule evaluate_h36m__{EXPERIMENT}:", 1)[1].split("\n\n", 1)[0]
    assert "gpu=0" in evaluate and "(python stages/evaluate_h36m.py" in evaluate
    monkeypatch.chdir(repo)  # DVC names the stages relative to the working directory
    specs = {s.name: s for s in load_stage_table(repo)}
    assert specs[f"train_spatial@{EXPERIMENT}"].cmd.startswith("python stages/train_spatial.py")
