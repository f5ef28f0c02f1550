"""``bench/scale.py``'s stages: each run as a process of its own in the work folder, measured, and recorded as a row.

:class:`ScaleBench` runs a command (a stage script, or a ``bench/scale_worker.py`` probe) and
measures its wall time, peak RSS (``ru_maxrss`` from ``os.wait4``), CPU time and the files it
created or rewrote in the work folder; after every row it rewrites the JSON and Markdown outputs.
One ``run_<stage>`` function per stage of ``bench/scale.py --stages`` (see its docstring for
which are run whole and which are timed on a part and extrapolated).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

import mlpgraph
from machine import machine_info
from mlpgraph.outputs import atomic_path
from mlpgraph.params import load_params
from mlpgraph.paths import ArtifactLayout
from mlpgraph.results import Skipped, write_record
from scale_table import format_markdown

log = logging.getLogger("bench.scale")

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().parent / "scale_worker.py"
STAGES = ("fetch", "preprocess", "train", "evaluate", "hard_pose_set", "hard_poses", "summarise", "report")
# What each stage reads from an earlier one (run it too, or reuse a kept --workdir that has it).
NEEDS = {
    "preprocess": ("fetch",),
    "train": ("preprocess",),
    "evaluate": ("train",),
    "hard_pose_set": ("preprocess",),
    "hard_poses": ("train", "hard_pose_set"),
}
# The two networks timed: at `full` these are the paper's MLP-Graph, 1 frame (C = 128) and
# 243 frames (C = S = 384, D = 768); smaller presets scale them down.
EXPERIMENTS = ("mlpgraph_gt_f1", "mlpgraph_gt_f243_refine")
# The experiment summarise runs for: a pretrained one without its release folder, whose three
# evaluation files are skip records (summarise reads three small JSON files at any scale).
SUMMARISED = "pretrained_gt_f1"
WORKDIR_MARKER = ".bench-scale-workdir"
RESULTS_DIR = ".bench-results"  # the probes' JSON results: not counted as disk written


class StageFailedError(RuntimeError):
    """A stage's process exited with a non-zero status."""


def tree_state(root: Path) -> dict[str, tuple[int, int, int]]:
    """(size, mtime_ns, inode) of every file under ``root`` but the probes' results."""
    state: dict[str, tuple[int, int, int]] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not (folder == str(root) and d == RESULTS_DIR)]
        for name in files:
            path = os.path.join(folder, name)
            try:
                st = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                continue
            state[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return state


def written_files(before: dict[str, tuple[int, int, int]], after: dict[str, tuple[int, int, int]]) -> dict[str, int]:
    """Bytes written per file between the two states: a new or replaced file whole, one grown in place its growth.

    A file changed in place (same inode: MLflow's SQLite store) counts the bytes it grew by.
    """
    written: dict[str, int] = {}
    for path, (size, mtime, inode) in after.items():
        old = before.get(path)
        if old is None or old[2] != inode:
            written[path] = size
        elif old[1] != mtime or old[0] != size:
            written[path] = max(0, size - old[0])
    return written


class ScaleBench:
    """The work folder, the stages' processes and the rows measured so far (written after every row)."""

    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.args = args
        self.root = root
        self.layout = ArtifactLayout(Path("."))
        self.params = load_params(root / "params.yaml")
        self.env = child_env(root, args.threads)
        self.results: dict[str, Any] = {
            "scale": args.scale,
            "command": "python " + shlex.join(["bench/scale.py", *sys.argv[1:]]),
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
            "machine": machine_info(["cuda"] if torch.cuda.is_available() else ["cpu"]),
            "settings": {key: getattr(args, key) for key in SETTINGS},
            "disk_free_gb_before": shutil.disk_usage(root).free / 1e9,
            "load_average_before": os.getloadavg(),
            "data": {"epochs": self.params["train"]["epochs"]},
            "rows": [],
            "complete": False,
        }

    def processed(self, keypoints: str) -> str:
        data = self.params["data"]
        return str(self.layout.processed(data["name"], keypoints, data["layout"]))

    def run(self, argv: list[str], result: Path | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run ``python argv`` in the work folder: (its usage: wall, peak RSS, CPU, disk; the probe's result)."""
        before = tree_state(self.root)
        log.info("running %s", shlex.join(argv))
        began = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *argv], cwd=self.root, env=self.env)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # interrupted: the stage must not outlive the work folder
            proc.terminate()
            proc.wait()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - began
        if proc.returncode != 0:
            raise StageFailedError(f"{shlex.join(argv)} exited with status {proc.returncode}")
        written = written_files(before, tree_state(self.root))
        measured = {
            "process_wall_s": wall,
            "peak_rss_mb": usage.ru_maxrss / 1024,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "disk_bytes": sum(written.values()),
            "files_written": written,
        }
        probe = json.loads((self.root / result).read_text()) if result is not None else {}
        return measured, probe

    def stage(self, script: str, *options: str) -> dict[str, Any]:
        """Run ``stages/<script>.py`` with ``options``: its usage."""
        return self.run([str(REPO / "stages" / f"{script}.py"), "--params", "params.yaml", *options])[0]

    def probe(self, command: str, *options: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run ``scale_worker.py command`` with ``options``: (its usage, its result)."""
        result = Path(RESULTS_DIR) / f"{command}-{len(self.results['rows'])}.json"
        argv = [str(WORKER), command, "--params", "params.yaml", "--result", str(result), *options]
        return self.run(argv, result)

    def record(self, stage: str, how: str, measured: dict[str, Any], wall_s: float | None = None, **extra: Any) -> None:
        """Add a row (``wall_s`` given: extrapolated, else the process's wall time) and write the outputs."""
        row = {
            "stage": stage,
            "how": how,
            "extrapolated": wall_s is not None,
            "wall_s": measured["process_wall_s"] if wall_s is None else wall_s,
            **measured,
            **extra,
        }
        self.results["rows"].append(row)
        log.info("%s: %.1f s%s, peak RSS %.0f MB", stage, row["wall_s"], " (extrapolated)" * row["extrapolated"],
                 row["peak_rss_mb"])
        self.write()

    def write(self) -> None:
        """The JSON and Markdown outputs as they stand (with the machine's load average now)."""
        self.results["load_average_now"] = os.getloadavg()
        with atomic_path(self.args.out) as tmp:
            tmp.write_text(json.dumps(self.results, indent=2) + "\n")
        with atomic_path(self.args.markdown) as tmp:
            tmp.write_text(format_markdown(self.results))


SETTINGS = ("train_steps", "warmup_steps", "eval_samples", "hard_candidates", "max_stage_s", "threads")


def child_env(root: Path, threads: int | None) -> dict[str, str]:
    """The stages' environment: this mlpgraph first on the path, MLflow records in the work folder, ``threads``."""
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    source = str(Path(mlpgraph.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    return env


def run_fetch(bench: ScaleBench) -> None:
    bench.record("fetch", "real stage", bench.stage("fetch", "--out", str(bench.layout.raw())))


def run_preprocess(bench: ScaleBench) -> None:
    for keypoints in bench.params["data"]["keypoints"]:
        options = ["--raw", str(bench.layout.raw()), "--keypoints", keypoints, "--out", bench.processed(keypoints)]
        bench.record(f"preprocess@{keypoints}", "real stage", bench.stage("preprocess", *options))


def run_train(bench: ScaleBench) -> None:
    args = bench.args
    for name in EXPERIMENTS:
        measured, probe = bench.probe(
            "train",
            *("--experiment", name, "--processed", bench.processed("gt"), "--models", str(bench.layout.models(name))),
            *("--steps", str(args.train_steps), "--warmup", str(args.warmup_steps)),
        )
        bench.results["data"].update(train_samples=probe["train_samples"], joints=probe["joints"])
        config = probe["model_config"]
        compiled = ", compiled" if probe["compiled"] else ""
        how = (
            f"T={config.get('frames', 1)}, C={config.get('hid_dim')} ({probe['precision']}{compiled}): "
            f"{probe['steps']} steps of batch {probe['batch_size']} timed ({probe['samples_per_s']:,.0f} samples/s, "
            f"after {probe['warmup_steps']} warm-up steps, {probe['warmup_s']:.1f} s), one epoch extrapolated; "
            "disk: final.pt + best.pt"
        )
        wall = probe["setup_s"] + probe["warmup_s"] + probe["epoch_s_extrapolated"]
        bench.record(f"train_spatial@{name}", how, measured, wall, probe=probe)


def run_evaluate(bench: ScaleBench) -> None:
    for name in EXPERIMENTS:
        models = str(bench.layout.models(name))
        options = ["--experiment", name, "--processed", bench.processed("gt"), "--models", models]
        measured, probe = bench.probe("evaluate", *options, "--samples", str(bench.args.eval_samples))
        bench.results["data"]["test_samples"] = probe["test_samples"]
        stage = f"evaluate_h36m@{name}"
        if probe["stage_s_extrapolated"] <= bench.args.max_stage_s:
            out = str(bench.layout.metrics().h36m(name))
            whole = bench.stage("evaluate_h36m", "--experiment", name, "--processed", bench.processed("gt"),
                                "--models", str(bench.layout.models(name)), "--out", out)
            bench.record(stage, "real stage, whole test split", whole, probe={**probe, "usage": measured})
        else:
            how = (
                f"{probe['samples_timed']:,} of {probe['test_samples']:,} test poses timed "
                f"({probe['poses_per_s']:,.0f} poses/s with flips), whole split extrapolated"
            )
            bench.record(stage, how, measured, probe["stage_s_extrapolated"], probe=probe)


def run_hard_pose_set(bench: ScaleBench) -> None:
    out = str(bench.layout.hard_poses())
    options = ["--processed", bench.processed("gt"), "--candidates", str(bench.args.hard_candidates), "--out", out]
    measured, probe = bench.probe("hard_pose_set", *options)
    if probe["stage_s_extrapolated"] <= bench.args.max_stage_s:
        whole = bench.stage("hard_pose_set", "--raw", str(bench.layout.raw()), "--processed", bench.processed("gt"),
                            "--out", out)
        bench.record("hard_pose_set", "real stage, every candidate", whole, probe={**probe, "usage": measured})
    else:
        how = (
            f"search timed for {probe['candidates_timed']:,} of {probe['candidates']:,} candidates x "
            f"{probe['train_samples']:,} training poses, extrapolated; a stand-in set of its size written"
        )
        bench.record("hard_pose_set", how, measured, probe["stage_s_extrapolated"], probe=probe)


def run_hard_poses(bench: ScaleBench) -> None:
    for name in EXPERIMENTS:
        out = str(bench.layout.metrics().hard(name))
        measured = bench.stage("hard_poses", "--experiment", name, "--processed", bench.processed("gt"),
                               "--models", str(bench.layout.models(name)), "--hard", str(bench.layout.hard_poses()),
                               "--out", out)
        bench.record(f"hard_poses@{name}", "real stage, whole set", measured)


def run_summarise(bench: ScaleBench) -> None:
    inputs = bench.root / "skip-records"
    reason = "bench/scale.py: summarise timed on skip records"
    argv = [str(REPO / "stages" / "summarise.py"), "--experiment", SUMMARISED]
    for option in ("h36m", "dhp", "hard"):
        path = inputs / f"{option}.json"
        write_record(path, Skipped(experiment=SUMMARISED, model="mlpgraph", reason=reason, mlflow_run_id=None))
        argv += [f"--{option}", str(path.relative_to(bench.root))]
    argv += ["--out", str(bench.layout.metrics().summary(SUMMARISED))]
    how = "real stage on skip records (it reads three small JSON files at any scale)"
    bench.record(f"summarise@{SUMMARISED}", how, bench.run(argv)[0])


def run_report(bench: ScaleBench) -> None:
    bench.results["rows"].append(
        {
            "stage": "report",
            "how": "not timed: it reads every experiment's evaluation records and renders demos from trained "
            "models, which this benchmark does not produce",
            "timed": False,
        }
    )
    bench.write()


RUNNERS = {
    "fetch": run_fetch,
    "preprocess": run_preprocess,
    "train": run_train,
    "evaluate": run_evaluate,
    "hard_pose_set": run_hard_pose_set,
    "hard_poses": run_hard_poses,
    "summarise": run_summarise,
    "report": run_report,
}
