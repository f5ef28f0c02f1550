"""The stage table, read once from ``dvc.yaml`` and handed to Snakemake.

``dvc.yaml`` is the declarative table (stages, ``foreach`` over experiments, commands, deps,
params keys, outs). DVC's own API resolves its templating; :func:`load_stage_table` turns each
resolved stage into a :class:`StageSpec` from which the ``Snakefile`` builds one rule, adding
what only Snakemake has (threads and resources from ``params.yaml``'s ``resources`` section).
Nothing about a stage is written in two places.

What produced the current outputs is recorded in one place too: ``dvc.lock`` (written by
``dvc repro``, and by ``dvc commit`` in the Snakefile's ``onsuccess``). Snakemake compares
files by modification time only; a stage whose command, dependency list or parameter values
differ from its ``dvc.lock`` entry gets its *stamp* (a file under ``.snakemake/mlpgraph-stamps``
that every rule takes as input) touched, so Snakemake reruns exactly what DVC would, and
neither engine's private bookkeeping can disagree with the other's.

Convention: an output path without a file suffix (``data/raw``) is a directory.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlpgraph.errors import UserInputError
from mlpgraph.params import get, load_params, read_yaml

DEFAULT_RESOURCES = {"threads": 1, "mem_mb": 2000, "runtime": 30, "gpu": 0}
# Stage families whose script trains a model; asking for more than one GPU runs them under torchrun.
DISTRIBUTED_FAMILIES = ("train_spatial", "train_refine")
STAMP_DIR = Path(".snakemake") / "mlpgraph-stamps"
DONE_DIR = Path(".snakemake") / "mlpgraph-done"
PARAMS_FILE = "params.yaml"
_MISSING = object()


@dataclass(frozen=True)
class StageSpec:
    """One resolved DVC stage, as both engines see it."""

    name: str  # DVC's address, e.g. "preprocess@gt"
    cmd: str
    deps: tuple[str, ...]  # file and directory dependencies
    params: tuple[str, ...]  # dotted params.yaml keys the stage reads
    outs: tuple[str, ...]  # every output, cached or not (metrics and plots included)
    inputs: tuple[str, ...] = ()  # deps as Snakemake needs them: folders of other stages' outputs expanded
    metrics: tuple[str, ...] = ()
    plots: tuple[str, ...] = ()
    resources: Mapping[str, int] = field(default_factory=dict)

    @property
    def rule_name(self) -> str:
        """A Snakemake-safe rule name: ``preprocess@gt`` -> ``preprocess__gt``."""
        return rule_name(self.name)

    @property
    def family(self) -> str:
        """The stage's name before ``@`` (what ``resources`` entries are keyed by)."""
        return self.name.split("@", 1)[0]


def rule_name(stage_name: str) -> str:
    """Map a DVC stage address onto a valid Snakemake rule name."""
    return re.sub(r"\W", "_", stage_name.replace("@", "__"))


def is_directory_output(path: str) -> bool:
    """Outputs without a suffix are directories (see the module docstring)."""
    return Path(path).suffix == ""


def snakemake_stage_table(root: str | os.PathLike[str], config: Mapping[str, Any]) -> list[StageSpec]:
    """The stage table for the ``Snakefile``; a user mistake ends Snakemake with one line and exit status 2.

    Parameters live in ``params.yaml`` alone (DVC records and compares them there), so values given
    with ``snakemake --config`` are refused rather than silently ignored.
    """
    try:
        if config:
            keys = ", ".join(sorted(config))
            raise UserInputError(
                f"snakemake --config {keys}: parameters are read from params.yaml only; set them there "
                "(or run `dvc exp run -S KEY=VALUE`)"
            )
        return load_stage_table(root)
    except UserInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def check_resources(params: Mapping[str, Any], families: set[str], params_path: Path) -> None:
    """Every ``resources`` entry names ``default`` or a stage family of the table."""
    for name in get(params, "resources", {}) or {}:
        if name != "default" and name not in families:
            raise UserInputError(
                f"{params_path}: resources.{name}: no stage of that name (stages: {', '.join(sorted(families))})"
            )


def stage_resources(family: str, params: Mapping[str, Any]) -> dict[str, int]:
    """Threads and resources for a stage family: defaults, ``resources.default``, then ``resources.<family>``."""
    table = get(params, "resources", {}) or {}
    merged = dict(DEFAULT_RESOURCES)
    for entry in (table.get("default") or {}, table.get(family) or {}):
        merged.update({key: value for key, value in entry.items() if value is not None})
    return {key: int(value) for key, value in merged.items()}


def load_stage_table(root: str | os.PathLike[str] = ".") -> list[StageSpec]:
    """Every stage of ``root/dvc.yaml``, resolved by DVC, in file order."""
    from dvc.repo import Repo  # imported here: DVC is heavy and only the engines need it

    root = Path(root).resolve()
    params = load_params(root / "params.yaml")
    with Repo(os.fspath(root)) as repo:
        stages = list(repo.index.stages)
        specs = []
        for stage in stages:
            files, keys = [], []
            for dep in stage.deps:
                if hasattr(dep, "params"):
                    keys.extend(dep.params or [])
                else:
                    files.append(_relative(dep.def_path, root, stage.wdir))
            outs = tuple(_relative(out.def_path, root, stage.wdir) for out in stage.outs)
            family = stage.name.split("@", 1)[0]
            specs.append(
                StageSpec(
                    # The name, not ``addressing``: that one is prefixed with ``<path>/dvc.yaml:``
                    # when the working directory is not the repository's.
                    name=stage.name,
                    cmd=stage.cmd if isinstance(stage.cmd, str) else " && ".join(stage.cmd),
                    deps=tuple(files),
                    params=tuple(keys),
                    outs=outs,
                    metrics=tuple(o for o, out in zip(outs, stage.outs, strict=True) if out.metric),
                    plots=tuple(o for o, out in zip(outs, stage.outs, strict=True) if out.plot),
                    resources=stage_resources(family, params),
                )
            )
    # Every stage of the table, also those a foreach leaves empty (no refinement experiments, say).
    families = set(read_yaml(root / "dvc.yaml").get("stages") or {}) | {spec.family for spec in specs}
    check_resources(params, families, root / PARAMS_FILE)
    outputs = [out for spec in specs for out in spec.outs]
    return [replace(spec, inputs=expand_folders(spec.deps, outputs)) for spec in specs]


def expand_folders(deps: tuple[str, ...], outputs: list[str]) -> tuple[str, ...]:
    """``deps`` with each folder that holds other stages' outputs replaced by those outputs.

    DVC links a stage that depends on a folder (``metrics/h36m``) to every stage writing inside
    it; Snakemake links rules through files, so it is given the files themselves.
    """
    expanded: list[str] = []
    for dep in deps:
        inside = [out for out in outputs if out.startswith(dep.rstrip("/") + "/")]
        expanded.extend(inside or [dep])
    return tuple(expanded)


def _relative(path: str, root: Path, wdir: str) -> str:
    full = (Path(wdir) / path).resolve()
    return os.path.relpath(full, root)


def launch_command(spec: StageSpec) -> str:
    """The shell command Snakemake runs for a stage.

    The ``dvc.yaml`` command, except for a training stage (:data:`DISTRIBUTED_FAMILIES`) that asks
    for more than one GPU (``resources.<family>.gpu`` in ``params.yaml``): its ``python <script> ...``
    (or ``python -m <module> ...``) then runs as ``torchrun --standalone --nproc-per-node <gpu>
    <script> ...``, one process per GPU of the node. Only Snakemake's shell line changes: DVC
    records and compares the ``dvc.yaml`` command.
    """
    gpus = int(spec.resources.get("gpu", 0))
    if spec.family not in DISTRIBUTED_FAMILIES or gpus <= 1:
        return spec.cmd
    match = re.match(r"python3?\s+(-m\s+)?", spec.cmd)
    if match is None:
        raise ValueError(
            f"stage {spec.name} asks for {gpus} GPUs but its command does not start with `python`, "
            f"so it cannot run under torchrun: {spec.cmd}"
        )
    module = "-m " if match.group(1) else ""
    return f"torchrun --standalone --nproc-per-node {gpus} {module}{spec.cmd[match.end() :]}"


def done_marker(spec: StageSpec) -> Path:
    """The file a rule touches after its command succeeded (relative to the workflow root).

    Snakemake's ``onsuccess`` / ``onerror`` handlers record exactly these stages in ``dvc.lock``
    (:func:`commit_completed`): stages that did not run in this invocation are never committed,
    so a stage whose parameters changed but which was not a target stays stale for DVC too.
    """
    return DONE_DIR / spec.rule_name


def completed_stages(specs: list[StageSpec], root: str | os.PathLike[str] = ".") -> list[str]:
    """Stages whose command succeeded since the last commit and whose outputs all exist."""
    root = Path(root)
    return [
        s.name
        for s in specs
        if (root / done_marker(s)).exists() and s.outs and all((root / o).exists() for o in s.outs)
    ]


def commit_targets(specs: list[StageSpec], names: list[str]) -> list[str]:
    """The fewest ``dvc commit`` targets naming exactly the stages ``names``.

    ``dvc.yaml`` when they are the whole table, a family's name (``train_spatial``) when they hold
    all of its stages, else the stage names. DVC reads and rewrites ``dvc.lock`` once per target,
    seconds each at this table's size, so 62 stage names cost minutes where one file name costs one read.
    """
    chosen = set(names)
    if chosen == {s.name for s in specs if s.outs}:
        return ["dvc.yaml"]
    targets: list[str] = []
    for family in dict.fromkeys(s.family for s in specs):
        members = [s.name for s in specs if s.family == family]
        if "@" in members[0] and set(members) <= chosen:
            targets.append(family)
        else:
            targets.extend(m for m in members if m in chosen)
    return targets


def commit_completed(specs: list[StageSpec], root: str | os.PathLike[str] = ".") -> list[str]:
    """Record the stages that ran in ``dvc.lock`` (``dvc commit --force --no-relink``), then drop their markers.

    ``--no-relink`` keeps the workspace files as they are: relinking would rewrite them and make
    outputs look newer than what was built from them. Returns the committed stage names.
    """
    root = Path(root)
    names = completed_stages(specs, root)
    if names:
        targets = commit_targets(specs, names)
        subprocess.run(["dvc", "commit", "--force", "--no-relink", "--quiet", *targets], cwd=root, check=True)
        by_name = {s.name: s for s in specs}
        for name in names:
            (root / done_marker(by_name[name])).unlink(missing_ok=True)
    return names


def stale_reasons(specs: list[StageSpec], root: str | os.PathLike[str] = ".") -> dict[str, str]:
    """Stages whose ``dvc.lock`` entry no longer matches the table: name -> reason.

    Compared as DVC does: the command, the set of dependency paths, and each params key's value
    in ``params.yaml`` (the preset file is a file dependency, judged by its time stamp).
    Stages without a lock entry are left to Snakemake's own judgement (missing or older outputs).
    """
    root = Path(root)
    lock_path = root / "dvc.lock"
    locked = (read_yaml(lock_path).get("stages") or {}) if lock_path.is_file() else {}
    raw_params = read_yaml(root / PARAMS_FILE)
    reasons = {}
    for spec in specs:
        entry = locked.get(spec.name)
        if entry is None:
            continue
        locked_values = (entry.get("params") or {}).get(PARAMS_FILE) or {}
        changed = [k for k in spec.params if locked_values.get(k, _MISSING) != get(raw_params, k, _MISSING)]
        if entry.get("cmd") != spec.cmd:
            reasons[spec.name] = "command changed"
        elif {d["path"] for d in entry.get("deps") or []} != set(spec.deps):
            reasons[spec.name] = "dependency list changed"
        elif changed:
            reasons[spec.name] = f"params changed: {', '.join(changed)}"
    return reasons


def refresh_stamps(specs: list[StageSpec], root: str | os.PathLike[str] = ".") -> dict[str, Path]:
    """Date the stale stages' stamps now and every other stamp 1970 (creating them as needed).

    Dating the up-to-date stamps back on every read means an edit that is undone before anything
    ran (or a dry run in between) leaves no rerun behind. Returns stage name -> stamp path
    (relative to ``root``), the extra input of each rule.
    """
    root = Path(root)
    (root / STAMP_DIR).mkdir(parents=True, exist_ok=True)
    stale = stale_reasons(specs, root)
    stamps = {}
    for spec in specs:
        stamp = STAMP_DIR / spec.rule_name
        full = root / stamp
        reason = stale.get(spec.name, "")
        if not full.exists() or full.read_text().strip() != reason:
            full.write_text(reason + "\n" if reason else "")
        when = time.time() if reason else 0
        os.utime(full, (when, when))
        stamps[spec.name] = stamp
    return stamps
