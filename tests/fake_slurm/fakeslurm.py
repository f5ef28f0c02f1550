"""A fake SLURM for tests: ``sbatch``, ``srun``, ``squeue``, ``sacct``, ``scancel``, ``sinfo``, ``scontrol``,
``sacctmgr`` and ``sshare`` that run every job at once on this machine.

The executables beside this file are three-line wrappers that call :func:`main` with their own
name. Only the standard library is used (any Python >= 3.10 on ``PATH`` as ``python3`` runs them).

State lives in ``$FAKE_SLURM_DIR`` (default ``${TMPDIR:-/tmp}/fake_slurm_<uid>``)::

    next_id                      the last job id handed out (under an fcntl lock)
    jobs/<id>/submit.json        what sbatch was asked: argv, name, comment, output, workdir, and
                                 ``resources``: gpus, gres, mem_mb, mem_per_cpu_mb, time_min,
                                 cpus_per_task, cpus_per_gpu, ntasks, nodes, partition, account, ...
    jobs/<id>/script.sh          the batch script (``--wrap`` becomes ``#!/bin/sh`` + the command)
    jobs/<id>/state.json         PENDING -> RUNNING -> COMPLETED | FAILED | CANCELLED | TIMEOUT,
                                 exit code, start and end times, the job's process group
    jobs/<id>/steps/<n>.json     one per ``srun`` inside the job: argv, gpus, cpus, state, exit code

Array jobs (``--array=1-3``) get one folder per task, ``jobs/<id>_<task>``, and report the
task id ``<id>_<task>`` as their ``JobIdRaw`` (real SLURM gives each task its own raw number).
The job's time limit (``-t``) is enforced (state TIMEOUT); memory and CPU counts are only
recorded. Nothing is queued: every job starts when it is submitted.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

CLUSTER = "fake"
FINISHED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL")
ACTIVE = ("PENDING", "RUNNING")
SHORT_STATES = {"PENDING": "PD", "RUNNING": "R", "COMPLETED": "CD", "FAILED": "F", "CANCELLED": "CA", "TIMEOUT": "TO"}

# sbatch options that take a value, long name -> record key (short aliases below).
SBATCH_VALUE_OPTIONS = {
    "job-name": "name",
    "output": "output",
    "error": "error",
    "comment": "comment",
    "account": "account",
    "partition": "partition",
    "clusters": "clusters",
    "time": "time",
    "constraint": "constraint",
    "qos": "qos",
    "mem": "mem",
    "mem-per-cpu": "mem_per_cpu",
    "mem-per-gpu": "mem_per_gpu",
    "nodes": "nodes",
    "ntasks": "ntasks",
    "ntasks-per-node": "ntasks_per_node",
    "ntasks-per-gpu": "ntasks_per_gpu",
    "cpus-per-task": "cpus_per_task",
    "cpus-per-gpu": "cpus_per_gpu",
    "gres": "gres",
    "gpus": "gpus",
    "gpus-per-node": "gpus_per_node",
    "gpus-per-task": "gpus_per_task",
    "chdir": "workdir",
    "workdir": "workdir",
    "export": "export",
    "array": "array",
    "reservation": "reservation",
    "exclude": "exclude",
    "dependency": "dependency",
    "wrap": "wrap",
    "mail-type": "mail_type",
    "mail-user": "mail_user",
}
SBATCH_FLAGS = {"parsable", "requeue", "no-requeue", "exclusive", "hold", "wait", "test-only"}
SBATCH_SHORT = {
    "J": "job-name",
    "o": "output",
    "e": "error",
    "A": "account",
    "p": "partition",
    "M": "clusters",
    "t": "time",
    "C": "constraint",
    "N": "nodes",
    "n": "ntasks",
    "c": "cpus-per-task",
    "G": "gpus",
    "D": "chdir",
    "a": "array",
    "q": "qos",
    "x": "exclude",
    "d": "dependency",
}
SRUN_VALUE_OPTIONS = {
    "ntasks",
    "cpus-per-task",
    "cpus-per-gpu",
    "gpus",
    "gres",
    "nodes",
    "cpu-bind",
    "job-name",
    "jobid",
    "mem",
    "mem-per-cpu",
    "time",
    "export",
    "output",
    "error",
    "chdir",
}
SRUN_SHORT = {"n": "ntasks", "c": "cpus-per-task", "G": "gpus", "N": "nodes", "J": "job-name", "t": "time"}


class UsageError(Exception):
    """A command line the real tool would reject; printed as ``<tool>: error: ...``, exit status 1."""


# --- state --------------------------------------------------------------------------------


def state_dir() -> Path:
    """The state folder: ``$FAKE_SLURM_DIR``, created if needed."""
    default = Path(os.environ.get("TMPDIR", "/tmp")) / f"fake_slurm_{os.getuid()}"
    path = Path(os.environ.get("FAKE_SLURM_DIR") or default)
    (path / "jobs").mkdir(parents=True, exist_ok=True)
    return path


def _partitions() -> list[str]:
    """The fake cluster's partitions, ``*`` marking the default: ``$FAKE_SLURM_PARTITIONS`` or ``main*,gpu``."""
    return [p for p in os.environ.get("FAKE_SLURM_PARTITIONS", "main*,gpu").split(",") if p]


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _read_json(path: Path) -> dict:
    for _ in range(50):  # a writer replaces files atomically; a missing file may be a new job
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            time.sleep(0.02)
    return json.loads(path.read_text())


def _update_state(job_dir: Path, **changes) -> dict:
    with _locked(job_dir / ".lock"):
        state = _read_json(job_dir / "state.json")
        state.update(changes)
        _write_json(job_dir / "state.json", state)
    return state


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _next_job_id(root: Path) -> int:
    with _locked(root / "next_id.lock"):
        counter = root / "next_id"
        job_id = int(counter.read_text()) + 1 if counter.exists() else 1000
        counter.write_text(str(job_id))
    return job_id


def all_jobs(root: Path | None = None) -> list[tuple[str, dict, dict]]:
    """Every job of the state folder as (job id, submit record, state), in submission order."""
    root = root or state_dir()
    jobs = []
    for job_dir in (root / "jobs").iterdir():
        if (job_dir / "submit.json").exists() and (job_dir / "state.json").exists():
            jobs.append((job_dir.name, _read_json(job_dir / "submit.json"), _read_json(job_dir / "state.json")))
    return sorted(jobs, key=lambda job: _id_key(job[0]))


def _id_key(job_id: str) -> tuple[int, int]:
    main, _, task = job_id.partition("_")
    return int(main), int(task or 0)


# --- option parsing -----------------------------------------------------------------------


def _parse_options(
    args: list[str], value_options, flags, short: dict[str, str]
) -> tuple[dict[str, str | bool], list[str]]:
    """Parse leading options (``--opt=v``, ``--opt v``, ``-o v``, ``-ov``, flags); return them and the rest.

    Unknown options are refused, as the real tools do, so a plugin that starts passing a new one
    fails loudly here instead of being half-understood.
    """
    options: dict[str, str | bool] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return options, args[i + 1 :]
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if name in flags and not eq:
                options[name] = True
            elif name in value_options:
                if not eq:
                    i += 1
                    if i >= len(args):
                        raise UsageError(f"option '--{name}' requires an argument")
                    value = args[i]
                options[name] = value
            else:
                raise UsageError(f"unrecognized option '--{name}'")
        elif arg.startswith("-") and len(arg) > 1:
            letter, value = arg[1], arg[2:]
            if letter not in short:
                raise UsageError(f"invalid option -- '{letter}'")
            if short[letter] in flags:
                options[short[letter]] = True
                if value:  # bundled flags: -hs
                    args = [*args[: i + 1], f"-{value}", *args[i + 1 :]]
                i += 1
                continue
            if not value:
                i += 1
                if i >= len(args):
                    raise UsageError(f"option requires an argument -- '{letter}'")
                value = args[i]
            options[short[letter]] = value.lstrip("=")
        else:
            return options, args[i:]
        i += 1
    return options, []


def parse_time_minutes(value: str) -> float:
    """SLURM's time formats (``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``) in minutes."""
    days, _, rest = value.partition("-") if "-" in value else ("0", "", value)
    parts = [float(p) for p in rest.split(":")]
    if "-" in value:
        hours, minutes, seconds = [*parts, 0, 0][:3]
    elif len(parts) == 3:
        hours, minutes, seconds = parts
    elif len(parts) == 2:
        hours, minutes, seconds = 0, parts[0], parts[1]
    else:
        hours, minutes, seconds = 0, parts[0], 0
    return float(days) * 1440 + hours * 60 + minutes + seconds / 60


def parse_mem_mb(value: str) -> int:
    """``16000``, ``16G``, ``500M``: megabytes (SLURM's default unit)."""
    match = re.fullmatch(r"(\d+)([KMGT]?)B?", value.strip(), re.IGNORECASE)
    if not match:
        raise UsageError(f"invalid memory specification '{value}'")
    factor = {"": 1, "K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}[match.group(2).upper()]
    return int(int(match.group(1)) * factor)


def count_gpus(options: dict) -> int:
    """GPUs asked for by ``--gpus=[type:]N`` or ``--gres=gpu[:type]:N`` (0 when neither)."""
    total = 0
    if options.get("gpus"):
        total += int(str(options["gpus"]).rsplit(":", 1)[-1])
    for gres in str(options.get("gres") or "").split(","):
        fields = gres.split(":")
        if fields[0] == "gpu":
            total += int(fields[-1]) if len(fields) > 1 and fields[-1].isdigit() else 1
    return total


def _resources(options: dict) -> dict:
    """The record of what the submission asks of the cluster (what tests assert)."""
    gpus = count_gpus(options)
    cpus_per_task = int(options.get("cpus-per-task") or 0) or None
    cpus_per_gpu = int(options.get("cpus-per-gpu") or 0) or None
    ntasks = int(options.get("ntasks") or 1)
    cpus = cpus_per_gpu * gpus if cpus_per_gpu and gpus else (cpus_per_task or 1) * ntasks
    return {
        "gpus": gpus,
        "gres": options.get("gres"),
        "gpus_flag": options.get("gpus"),
        "mem_mb": parse_mem_mb(options["mem"]) if options.get("mem") else None,
        "mem_per_cpu_mb": parse_mem_mb(options["mem-per-cpu"]) if options.get("mem-per-cpu") else None,
        "time": options.get("time"),
        "time_min": parse_time_minutes(options["time"]) if options.get("time") else None,
        "cpus_per_task": cpus_per_task,
        "cpus_per_gpu": cpus_per_gpu,
        "cpus": cpus,
        "ntasks": int(options["ntasks"]) if options.get("ntasks") else None,
        "ntasks_per_gpu": int(options["ntasks-per-gpu"]) if options.get("ntasks-per-gpu") else None,
        "nodes": options.get("nodes"),
        "partition": options.get("partition"),
        "account": options.get("account"),
        "qos": options.get("qos"),
        "constraint": options.get("constraint"),
        "clusters": options.get("clusters"),
    }


def _script_directives(script: str) -> list[str]:
    """``#SBATCH`` lines at the top of a batch script, as command-line arguments."""
    args = []
    for line in script.splitlines()[1:]:
        if line.startswith("#SBATCH"):
            args.extend(shlex.split(line[len("#SBATCH") :]))
        elif line.strip() and not line.startswith("#"):
            break
    return args


def _array_tasks(spec: str) -> list[int]:
    """``1-3``, ``1,4,7``, ``0-9:2`` (a ``%limit`` suffix is ignored)."""
    tasks = []
    for part in spec.split("%", 1)[0].split(","):
        span, _, step = part.partition(":")
        first, _, last = span.partition("-")
        tasks.extend(range(int(first), int(last or first) + 1, int(step or 1)))
    return tasks


# --- sbatch -------------------------------------------------------------------------------


def sbatch(args: list[str]) -> int:
    """Record the submission, start the job (or each array task) in the background, print its id."""
    options, rest = _parse_options(args, SBATCH_VALUE_OPTIONS, SBATCH_FLAGS, SBATCH_SHORT)
    if options.get("wrap") is not None:
        if rest:
            raise UsageError("script arguments not permitted with --wrap option")
        script, script_args = f"#!/bin/sh\n# This script was created by sbatch --wrap.\n\n{options['wrap']}\n", []
    elif rest:
        path, script_args = rest[0], rest[1:]
        script = sys.stdin.read() if path in ("-", "/dev/stdin") else Path(path).read_text()
    elif not sys.stdin.isatty():
        script, script_args = sys.stdin.read(), []
    else:
        raise UsageError("no batch script given (a file, stdin or --wrap)")
    if not script.startswith("#!"):
        raise UsageError(
            "This does not look like a batch script.  The first line must start with #! followed by "
            "the path to an interpreter."
        )
    directives, _ = _parse_options(_script_directives(script), SBATCH_VALUE_OPTIONS, SBATCH_FLAGS, SBATCH_SHORT)
    options = {**directives, **options}
    if options.get("test-only"):
        print("sbatch: Job would be submitted (fake, --test-only)", file=sys.stderr)
        return 0
    if options.get("export") not in (None, "ALL") and not str(options["export"]).startswith(("ALL,", "NONE")):
        raise UsageError(f"fake sbatch supports --export=ALL|NONE[,VAR=value...], not '{options['export']}'")
    resources = _resources(options)  # validates numbers before anything is recorded
    if resources["partition"] and resources["partition"] not in [p.rstrip("*") for p in _partitions()]:
        raise UsageError("Batch job submission failed: Invalid partition name specified")
    accounts = [a for a in os.environ.get("FAKE_SLURM_ACCOUNTS", "").split(",") if a]
    if resources["account"] and accounts and resources["account"] not in accounts:
        raise UsageError("Batch job submission failed: Invalid account or account/partition combination specified")
    root = state_dir()
    job_id = _next_job_id(root)
    workdir = os.path.abspath(str(options.get("workdir") or os.getcwd()))
    record = {
        "job_id": str(job_id),
        "argv": ["sbatch", *args],
        "name": options.get("job-name") or (Path(rest[0]).name if rest else "wrap"),
        "comment": options.get("comment"),
        "output": options.get("output"),
        "error": options.get("error"),
        "workdir": workdir,
        "submit_dir": os.getcwd(),
        "export": options.get("export") or "ALL",
        "wrap": options.get("wrap"),
        "script_args": script_args,
        "parsable": bool(options.get("parsable")),
        "flags": sorted(k for k, v in options.items() if v is True),
        "resources": resources,
        "user": getpass.getuser(),
        "submit_time": time.time(),
    }
    tasks = _array_tasks(str(options["array"])) if options.get("array") else [None]
    environment = _job_environment(dict(os.environ), record)
    for task in tasks:
        job_key = str(job_id) if task is None else f"{job_id}_{task}"
        job_dir = root / "jobs" / job_key
        job_dir.mkdir(parents=True)
        (job_dir / "steps").mkdir()
        (job_dir / "script.sh").write_text(script)
        (job_dir / "script.sh").chmod(0o755)
        env = dict(environment)
        if task is not None:
            env.update(
                SLURM_ARRAY_JOB_ID=str(job_id),
                SLURM_ARRAY_TASK_ID=str(task),
                SLURM_ARRAY_TASK_MIN=str(min(tasks)),
                SLURM_ARRAY_TASK_MAX=str(max(tasks)),
                SLURM_ARRAY_TASK_COUNT=str(len(tasks)),
                SLURM_ARRAY_TASK_STEP="1",
            )
        _write_json(
            job_dir / "submit.json", {**record, "job_id": job_key, "array_job_id": str(job_id), "array_task_id": task}
        )
        _write_json(job_dir / "env.json", env)
        _write_json(
            job_dir / "state.json",
            {
                "state": "PENDING",
                "exit_code": None,
                "signal": 0,
                "start": None,
                "end": None,
                "pgid": None,
                "reason": "None",
            },
        )
        subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "_run", str(job_dir)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
    print(
        f"{job_id};{CLUSTER}"
        if options.get("clusters") and options.get("parsable")
        else str(job_id)
        if options.get("parsable")
        else f"Submitted batch job {job_id}"
    )
    return 0


def _job_environment(env: dict[str, str], record: dict) -> dict[str, str]:
    """The job's environment: the submitter's (``--export=ALL``) plus what SLURM sets in a job."""
    export = record["export"]
    if export.startswith("NONE"):
        env = {k: v for k, v in env.items() if k in ("HOME", "USER", "LOGNAME", "PATH", "TMPDIR")}
    for assignment in export.split(",")[1:]:
        key, _, value = assignment.partition("=")
        env[key] = value
    res = record["resources"]
    env.update(
        SLURM_JOB_ID=record["job_id"],
        SLURM_JOBID=record["job_id"],
        SLURM_JOB_NAME=record["name"],
        SLURM_SUBMIT_DIR=record["submit_dir"],
        SLURM_SUBMIT_HOST=socket.gethostname(),
        SLURM_CLUSTER_NAME=CLUSTER,
        SLURM_JOB_NODELIST=socket.gethostname(),
        SLURM_NODELIST=socket.gethostname(),
        SLURM_JOB_NUM_NODES="1",
        SLURM_NNODES="1",
        SLURM_NTASKS=str(res["ntasks"] or 1),
        SLURM_CPUS_ON_NODE=str(res["cpus"]),
        SLURM_JOB_PARTITION=res["partition"] or "",
        SLURM_JOB_ACCOUNT=res["account"] or "",
        FAKE_SLURM_DIR=str(state_dir()),
    )
    if res["cpus_per_task"]:
        env["SLURM_CPUS_PER_TASK"] = str(res["cpus_per_task"])
    if res["mem_mb"]:
        env["SLURM_MEM_PER_NODE"] = str(res["mem_mb"])
    if res["gpus"]:  # real SLURM also sets CUDA_VISIBLE_DEVICES; the fake has no GPUs to give
        env["SLURM_GPUS"] = str(res["gpus_flag"] or res["gpus"])
        env["SLURM_GPUS_ON_NODE"] = str(res["gpus"])
    if record["comment"]:
        env["SLURM_JOB_COMMENT"] = record["comment"]
    return env


def _log_path(pattern: str, env: dict[str, str], record: dict) -> Path:
    """Expand sbatch's filename patterns (%j %A %a %x %u %N %%) relative to the job's working directory."""
    values = {
        "j": env["SLURM_JOB_ID"],
        "A": env.get("SLURM_ARRAY_JOB_ID", record["job_id"]),
        "a": env.get("SLURM_ARRAY_TASK_ID", "4294967294"),
        "x": record["name"],
        "u": record["user"],
        "N": socket.gethostname(),
        "%": "%",
    }
    path = re.sub(r"%(\d*)([jAaxuN%])", lambda m: values[m.group(2)].zfill(int(m.group(1) or 0)), pattern)
    return Path(record["workdir"]) / path


def _run(job_dir_arg: str) -> int:
    """Run one job (the background half of sbatch): its script, its log, its final state."""
    job_dir = Path(job_dir_arg)
    record = _read_json(job_dir / "submit.json")
    env = _read_json(job_dir / "env.json")
    task = record.get("array_task_id")
    if task is not None:  # each task has its own job id in real SLURM; the fake numbers it <id>_<task>
        env["SLURM_JOB_ID"] = env["SLURM_JOBID"] = record["job_id"]
    default_log = "slurm-%A_%a.out" if task is not None else "slurm-%j.out"
    try:
        out_path = _log_path(record["output"] or default_log, env, record)
        err_path = _log_path(record["error"], env, record) if record["error"] else out_path
        out = open(out_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        err = out if err_path == out_path else open(err_path, "ab")  # noqa: SIM115
    except OSError as exc:  # real SLURM fails the job silently when the log cannot be opened
        _update_state(
            job_dir, state="FAILED", exit_code=1, start=time.time(), end=time.time(), reason=f"cannot open log: {exc}"
        )
        return 1
    time_limit = record["resources"]["time_min"]
    with _locked(job_dir / ".lock"):
        state = _read_json(job_dir / "state.json")
        if state["state"] != "PENDING":  # cancelled before it started
            return 0
        proc = subprocess.Popen(
            ["/bin/sh", str(job_dir / "script.sh"), *record["script_args"]],
            cwd=record["workdir"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        state.update(state="RUNNING", start=time.time(), pgid=proc.pid)
        _write_json(job_dir / "state.json", state)
    timed_out = False
    try:
        code = proc.wait(timeout=time_limit * 60 if time_limit else None)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc.pid)
        code = proc.wait()
    finally:
        out.close()
        if err is not out:
            err.close()
    with _locked(job_dir / ".lock"):
        state = _read_json(job_dir / "state.json")
        if state["state"] == "CANCELLED":
            final = "CANCELLED"
        elif timed_out:
            final = "TIMEOUT"
        else:
            final = "COMPLETED" if code == 0 else "FAILED"
        state.update(
            state=final,
            end=time.time(),
            exit_code=max(code, 0),
            signal=max(-code, 0),
            reason="NonZeroExitCode" if final == "FAILED" else state["reason"],
        )
        _write_json(job_dir / "state.json", state)
    return 0


def _kill_group(pgid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
        time.sleep(0.5)


# --- srun (a job step inside a job) -------------------------------------------------------


def srun(args: list[str]) -> int:
    """Run a job step: check it fits the job's allocation, record it, run the command, record its end."""
    options, command = _parse_options(args, SRUN_VALUE_OPTIONS, {"exclusive", "overlap", "unbuffered"}, SRUN_SHORT)
    if not command:
        raise UsageError("no command given")
    job_id = os.environ.get("SLURM_JOB_ID")
    job_dir = state_dir() / "jobs" / str(job_id)
    if not job_id or not (job_dir / "submit.json").exists():
        raise UsageError("the fake srun runs job steps inside fake sbatch jobs only (SLURM_JOB_ID is not one)")
    allocated = _read_json(job_dir / "submit.json")["resources"]
    gpus = count_gpus(options)
    cpus = int(options.get("cpus-per-task") or 1) * int(options.get("ntasks") or 1)
    if gpus > allocated["gpus"] or cpus > allocated["cpus"]:
        raise UsageError(
            f"Unable to create step for job {job_id}: step asks for {gpus} GPU(s) and {cpus} CPU(s), the "
            f"allocation has {allocated['gpus']} GPU(s) and {allocated['cpus']} CPU(s)"
        )
    with _locked(job_dir / ".lock"):
        step = len(list((job_dir / "steps").glob("*.json")))
        step_file = job_dir / "steps" / f"{step}.json"
        record = {
            "step": step,
            "argv": ["srun", *args],
            "command": command,
            "gpus": gpus,
            "cpus": cpus,
            "state": "RUNNING",
            "exit_code": None,
            "start": time.time(),
            "end": None,
        }
        _write_json(step_file, record)
    env = dict(
        os.environ,
        SLURM_STEP_ID=str(step),
        SLURM_STEPID=str(step),
        SLURM_PROCID="0",
        SLURM_LOCALID="0",
        SLURM_NTASKS=str(options.get("ntasks") or 1),
    )
    if options.get("cpus-per-task"):
        env["SLURM_CPUS_PER_TASK"] = str(options["cpus-per-task"])
    try:
        code = subprocess.call(command, env=env)
    except FileNotFoundError:
        print(f"slurmstepd: error: execve(): {command[0]}: No such file or directory", file=sys.stderr)
        code = 2
    record.update(state="COMPLETED" if code == 0 else "FAILED", exit_code=code, end=time.time())
    _write_json(step_file, record)
    return code


# --- queries --------------------------------------------------------------------------------


def _elapsed(state: dict) -> str:
    if not state["start"]:
        return "00:00:00"
    seconds = int((state["end"] or time.time()) - state["start"])
    days, seconds = divmod(seconds, 86400)
    text = f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return f"{days}-{text}" if days else text


def _timestamp(value: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(value)) if value else "Unknown"


def _job_field(field: str, job_id: str, record: dict, state: dict) -> str:
    res = record["resources"]
    tres = f"cpu={res['cpus']},mem={res['mem_mb'] or 0}M,node=1" + (f",gres/gpu={res['gpus']}" if res["gpus"] else "")
    values = {
        "jobidraw": job_id,
        "jobid": job_id,
        "jobname": record["name"],
        "state": state["state"] + (f" by {os.getuid()}" if state["state"] == "CANCELLED" else ""),
        "exitcode": f"{state['exit_code'] or 0}:{state.get('signal') or 0}",
        "reason": state.get("reason") or "None",
        "partition": res["partition"] or "",
        "account": res["account"] or "",
        "user": record["user"],
        "nodelist": socket.gethostname() if state["start"] else "None assigned",
        "alloccpus": str(res["cpus"]),
        "ncpus": str(res["cpus"]),
        "nnodes": "1",
        "reqmem": f"{res['mem_mb']}M" if res["mem_mb"] else "0",
        "reqtres": tres,
        "alloctres": tres if state["start"] else "",
        "timelimit": res["time"] or "UNLIMITED",
        "elapsed": _elapsed(state),
        "submit": _timestamp(record["submit_time"]),
        "start": _timestamp(state["start"]),
        "end": _timestamp(state["end"]),
        "comment": record["comment"] or "",
        "workdir": record["workdir"],
        "cluster": CLUSTER,
    }
    if field not in values:
        raise UsageError(f'Invalid field requested: "{field}"')
    return values[field]


def _step_field(field: str, job_id: str, record: dict, state: dict, step: dict) -> str:
    values = {
        "jobidraw": f"{job_id}.{step['step']}",
        "jobid": f"{job_id}.{step['step']}",
        "jobname": os.path.basename(step["command"][0]),
        "state": step["state"],
        "exitcode": f"{step['exit_code'] or 0}:0",
        "reason": "NonZeroExitCode" if step["state"] == "FAILED" else "None",
        "elapsed": _elapsed(step),
        "nodelist": socket.gethostname(),
        "alloccpus": str(step["cpus"]),
        "ncpus": str(step["cpus"]),
        "start": _timestamp(step["start"]),
        "end": _timestamp(step["end"]),
    }
    return values[field] if field in values else _job_field(field, job_id, record, state)


def _format_rows(rows: list[list[str]], fields: list[str], options: dict) -> None:
    if options.get("parsable2") or options.get("parsable"):
        trailing = "|" if options.get("parsable") and not options.get("parsable2") else ""
        lines = ["|".join(row) + trailing for row in rows]
        header = "|".join(fields) + trailing
    else:
        widths = [max([10, len(f), *(len(r[i]) for r in rows)]) for i, f in enumerate(fields)]
        lines = [" ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
        header = " ".join(f.ljust(w) for f, w in zip(fields, widths, strict=True))
        if not options.get("noheader"):
            header += "\n" + " ".join("-" * w for w in widths)
    if not options.get("noheader"):
        print(header)
    for line in lines:
        print(line)


def sacct(args: list[str]) -> int:
    """Accounting: one line per job (``-X``: no steps) of the state folder, ``-j``/``--name``/``-u`` filtered."""
    value_options = {
        "format",
        "jobs",
        "name",
        "starttime",
        "endtime",
        "clusters",
        "user",
        "state",
        "partition",
        "account",
    }
    flags = {"parsable", "parsable2", "noheader", "allocations", "allusers", "long", "brief"}
    short = {
        "o": "format",
        "j": "jobs",
        "S": "starttime",
        "E": "endtime",
        "M": "clusters",
        "u": "user",
        "s": "state",
        "r": "partition",
        "A": "account",
    }
    args = [a for arg in args for a in (["-n", "-u"] if arg == "-nu" else [arg])]  # the plugin's `sacct -nu ...`
    args = [
        {
            "-X": "--allocations",
            "-P": "--parsable2",
            "-p": "--parsable",
            "-n": "--noheader",
            "-a": "--allusers",
            "-b": "--brief",
            "-l": "--long",
        }.get(a, a)
        for a in args
    ]
    options, _rest = _parse_options(args, value_options, flags, short)  # extra words are ignored
    fields = [
        re.sub(r"%-?\d+$", "", f).strip()
        for f in str(options.get("format") or "JobID,JobName,Partition,Account,AllocCPUS,State,ExitCode").split(",")
        if f.strip()
    ]
    wanted = [w for w in str(options.get("jobs") or "").split(",") if w]
    names = set(str(options["name"]).split(",")) if options.get("name") else None
    user = options.get("user") or (None if options.get("allusers") or wanted else getpass.getuser())
    rows = []
    for job_id, record, state in all_jobs():
        if names is not None and record["name"] not in names:
            continue
        if user is not None and record["user"] != user:
            continue
        steps = sorted(((Path(state_dir()) / "jobs" / job_id / "steps").glob("*.json")), key=lambda p: int(p.stem))
        if wanted:
            for want in wanted:
                if want in (job_id, record.get("array_job_id")):
                    rows.append([_job_field(f.lower(), job_id, record, state) for f in fields])
                    if not options.get("allocations"):
                        rows.extend(
                            [_step_field(f.lower(), job_id, record, state, _read_json(p)) for f in fields]
                            for p in steps
                        )
                elif want.startswith(job_id + "."):
                    for p in steps:
                        if want == f"{job_id}.{p.stem}":
                            rows.append([_step_field(f.lower(), job_id, record, state, _read_json(p)) for f in fields])
            continue
        rows.append([_job_field(f.lower(), job_id, record, state) for f in fields])
        if not options.get("allocations"):
            rows.extend([_step_field(f.lower(), job_id, record, state, _read_json(p)) for f in fields] for p in steps)
    _format_rows(rows, fields, options)
    return 0


def squeue(args: list[str]) -> int:
    """The queue: pending and running jobs (``--states=all``: every job), ``--format`` with %i %j %T %t ..."""
    value_options = {"format", "states", "name", "jobs", "user", "partition", "clusters", "Format"}
    short = {
        "o": "format",
        "t": "states",
        "n": "name",
        "j": "jobs",
        "u": "user",
        "p": "partition",
        "M": "clusters",
        "O": "Format",
    }
    args = ["--noheader" if a == "-h" else "--me" if a == "--me" else a for a in args]
    options, _ = _parse_options(args, value_options, {"noheader", "me", "all"}, short)
    fmt = str(options.get("format") or "%.18i %.9P %.8j %.8u %.2t %.10M %.6D %R")
    states = str(options.get("states") or "PENDING,RUNNING").upper().split(",")
    names = set(str(options["name"]).split(",")) if options.get("name") else None
    wanted = set(str(options["jobs"]).split(",")) if options.get("jobs") else None
    codes = {
        "i": lambda j, r, s: j,
        "A": lambda j, r, s: r.get("array_job_id") or j,
        "j": lambda j, r, s: r["name"],
        "T": lambda j, r, s: s["state"],
        "t": lambda j, r, s: SHORT_STATES.get(s["state"], s["state"][:2]),
        "P": lambda j, r, s: r["resources"]["partition"] or "",
        "u": lambda j, r, s: r["user"],
        "M": lambda j, r, s: _elapsed(s),
        "D": lambda j, r, s: "1",
        "C": lambda j, r, s: str(r["resources"]["cpus"]),
        "b": lambda j, r, s: f"gpu:{r['resources']['gpus']}" if r["resources"]["gpus"] else "N/A",
        "R": lambda j, r, s: socket.gethostname() if s["start"] else "(None)",
        "k": lambda j, r, s: r["comment"] or "",
    }

    def render(job_id, record, state):
        def one(match):
            if match.group(3) not in codes:
                raise UsageError(f"unknown format code %{match.group(3)}")
            value = codes[match.group(3)](job_id, record, state)
            width = int(match.group(2) or 0)
            return value.rjust(width) if match.group(1) == "." else value.ljust(width)

        return re.sub(r"%(\.?)(\d*)([A-Za-z])", one, fmt)

    headers = {
        "i": "JOBID",
        "A": "ARRAY_JOB_ID",
        "j": "NAME",
        "T": "STATE",
        "t": "ST",
        "P": "PARTITION",
        "u": "USER",
        "M": "TIME",
        "D": "NODES",
        "C": "CPUS",
        "b": "TRES_PER_NODE",
        "R": "NODELIST(REASON)",
        "k": "COMMENT",
    }
    if not options.get("noheader"):
        print(
            re.sub(
                r"%(\.?)(\d*)([A-Za-z])",
                lambda m: (
                    headers.get(m.group(3), m.group(3)).rjust(int(m.group(2) or 0))
                    if m.group(1)
                    else headers.get(m.group(3), m.group(3)).ljust(int(m.group(2) or 0))
                ),
                fmt,
            )
        )
    for job_id, record, state in all_jobs():
        if "ALL" not in states and state["state"] not in states:
            continue
        if names is not None and record["name"] not in names:
            continue
        if wanted is not None and job_id not in wanted and record.get("array_job_id") not in wanted:
            continue
        print(render(job_id, record, state))
    return 0


def scancel(args: list[str]) -> int:
    """Cancel jobs by id (``<id>`` cancels every task of an array), or all of ``-u <user>``'s / ``--name``'s."""
    options, ids = _parse_options(
        args,
        {"clusters", "user", "name", "signal"},
        {"quiet"},
        {"M": "clusters", "u": "user", "n": "name", "s": "signal", "Q": "quiet"},
    )
    jobs = all_jobs()
    if options.get("user") or options.get("name"):
        ids = [
            j
            for j, r, _ in jobs
            if r["user"] == options.get("user", r["user"]) and r["name"] == options.get("name", r["name"])
        ]
    if not ids:
        raise UsageError("No job identification provided")
    known = {j: r for j, r, _ in jobs}
    status = 0
    for wanted in ids:
        matches = [j for j, r in known.items() if wanted in (j, r.get("array_job_id"))]
        if not matches:
            print(f"scancel: error: Kill job error on job id {wanted}: Invalid job id specified", file=sys.stderr)
            status = 1
        for job_id in matches:
            _cancel(state_dir() / "jobs" / job_id)
    return status


def _cancel(job_dir: Path) -> None:
    with _locked(job_dir / ".lock"):
        state = _read_json(job_dir / "state.json")
        if state["state"] not in ACTIVE:
            return
        was_running = state["state"] == "RUNNING"
        state.update(state="CANCELLED", reason="None")
        if not was_running:
            state["end"] = time.time()
        _write_json(job_dir / "state.json", state)
    if was_running and state["pgid"]:
        _kill_group(state["pgid"])


def sinfo(args: list[str]) -> int:
    """Partitions from ``$FAKE_SLURM_PARTITIONS`` (default ``main*,gpu``; ``*`` marks the default)."""
    options, _ = _parse_options(
        args,
        {"format", "partition"},
        {"noheader", "summarize"},
        {"o": "format", "p": "partition", "h": "noheader", "s": "summarize"},
    )
    partitions = _partitions()
    fmt = str(options.get("format") or "%P %a %l %D %t %N")
    node = socket.gethostname()
    codes = {
        "P": None,
        "R": None,
        "a": "up",
        "l": "infinite",
        "D": "1",
        "t": "idle",
        "T": "idle",
        "N": node,
        "c": str(os.cpu_count() or 1),
        "G": "gpu:0",
    }
    header = {
        "P": "PARTITION",
        "R": "PARTITION",
        "a": "AVAIL",
        "l": "TIMELIMIT",
        "D": "NODES",
        "t": "STATE",
        "T": "STATE",
        "N": "NODELIST",
        "c": "CPUS",
        "G": "GRES",
    }

    def render(partition, head):
        def one(match):
            code = match.group(1)
            if code not in codes:
                raise UsageError(f"unknown format code %{code}")
            if head:
                return header[code]
            if code in ("P", "R"):
                return partition if code == "P" else partition.rstrip("*")
            return codes[code]

        return re.sub(r"%\.?\d*([A-Za-z])", one, fmt)

    if not options.get("noheader"):
        print(render("", True))
    for partition in partitions:
        print(render(partition, False))
    return 0


def scontrol(args: list[str]) -> int:
    """``scontrol show config`` (MaxArraySize, MinJobAge), ``show partition``, ``show job <id>``."""
    if args[:2] == ["show", "config"]:
        print(f"Configuration data as of {_timestamp(time.time())}")
        print(f"ClusterName             = {CLUSTER}")
        print("MaxArraySize            = 1001")
        print("MaxJobCount             = 10000")
        print("MinJobAge               = 300 sec")
        print("SLURM_VERSION           = 23.02.0-fake")
        return 0
    if args[:2] == ["show", "partition"]:
        for partition in _partitions():
            default = "YES" if partition.endswith("*") else "NO"
            print(
                f"PartitionName={partition.rstrip('*')}\n   Default={default} MaxTime=UNLIMITED MaxNodes=1 "
                f"State=UP TotalCPUs={os.cpu_count()} TotalNodes=1\n"
            )
        return 0
    if args[:2] == ["show", "job"] and len(args) == 3:
        for job_id, record, state in all_jobs():
            if job_id == args[2]:
                res = record["resources"]
                print(
                    f"JobId={job_id} JobName={record['name']}\n   JobState={state['state']} "
                    f"ExitCode={state['exit_code'] or 0}:0 Partition={res['partition']}\n"
                    f"   NumCPUs={res['cpus']} TimeLimit={res['time']} TRES=mem={res['mem_mb']}M,"
                    f"gres/gpu={res['gpus']}\n   WorkDir={record['workdir']} StdOut={record['output']}"
                )
                return 0
        raise UsageError(f"Invalid job id specified: {args[2]}")
    raise UsageError(f"the fake scontrol knows only 'show config|partition|job <id>', not {' '.join(args)!r}")


def sacctmgr(args: list[str]) -> int:
    """The user's accounts: ``$FAKE_SLURM_ACCOUNTS`` (comma-separated; none by default)."""
    for account in filter(None, os.environ.get("FAKE_SLURM_ACCOUNTS", "").split(",")):
        print(account)
    return 0


TOOLS = {
    "sbatch": sbatch,
    "srun": srun,
    "sacct": sacct,
    "squeue": squeue,
    "scancel": scancel,
    "sinfo": sinfo,
    "scontrol": scontrol,
    "sacctmgr": sacctmgr,
    "sshare": sacctmgr,
}


def main(tool: str, args: list[str]) -> int:
    """Entry point of each executable: run ``tool`` with ``args``; usage errors exit 1 like SLURM's tools."""
    try:
        return TOOLS[tool](args)
    except UsageError as exc:
        print(f"{tool}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["_run"]:
        sys.exit(_run(sys.argv[2]))
    sys.exit(main(sys.argv[1], sys.argv[2:]))
