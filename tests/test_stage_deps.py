"""Caches that cannot go stale: each stage's code deps in dvc.yaml are exactly the code its command can import.

The closure is computed statically from the stage script: every ``import`` anywhere in a module
(functions included, so lazy imports count), followed through ``src/mlpgraph`` and ``stages/``,
with the ``__init__.py`` of every package on the way (Python runs them) and the package data
files a module reads. A module missing from a stage's ``deps`` would let an edit go unseen by
both engines; a module listed but not imported would rerun the stage for nothing.
``python -m tests.test_stage_deps`` rewrites dvc.yaml's code deps to match.
"""

from __future__ import annotations

import ast
import shlex
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest

from mlpgraph import LAZY_ATTRIBUTES
from mlpgraph.workflow import StageSpec, load_stage_table
from tests.conftest import ROOT

SRC = ROOT / "src"
PACKAGE = "mlpgraph"
RESOURCES = SRC / PACKAGE / "resources"


def module_file(name: str) -> Path | None:
    """The file of module ``name`` if it is part of this project (``mlpgraph.*`` or a stage script)."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str:
    relative = path.relative_to(SRC).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def imported_names(path: Path) -> set[str]:
    """Every module name an import statement in ``path`` may load (``from a import b``: ``a`` and ``a.b``).

    The package's lazy attributes (``mlpgraph.LAZY_ATTRIBUTES``: ``mlpgraph.Lifter``) load their
    module where code names them: ``from mlpgraph import Lifter`` or ``mlpgraph.Lifter``.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path) if path.is_relative_to(SRC) else ""
    if path.name != "__init__.py" and package:
        package = package.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
            if base == PACKAGE:
                names.update(LAZY_ATTRIBUTES[alias.name] for alias in node.names if alias.name in LAZY_ATTRIBUTES)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == PACKAGE:
            names.update([LAZY_ATTRIBUTES[node.attr]] if node.attr in LAZY_ATTRIBUTES else [])
    return names


def with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


@cache
def closure(script: Path) -> frozenset[Path]:
    """The project files ``script`` can load: modules, package ``__init__`` files and the data they read."""
    seen: set[Path] = {script}
    todo = [script]
    while todo:
        path = todo.pop()
        for name in imported_names(path):
            for part in with_parents(name):
                found = module_file(part)
                if found is not None and found not in seen:
                    seen.add(found)
                    todo.append(found)
    data = {res for path in seen for res in RESOURCES.glob("*") if res.name in path.read_text()}
    return frozenset(seen | data)


def script_of(stage: StageSpec) -> Path:
    """The Python file a stage's command runs (``python stages/x.py ...``)."""
    words = shlex.split(stage.cmd)
    assert words[0] in ("python", "python3") and words[1].endswith(".py"), stage.cmd
    return ROOT / words[1]


def code_deps(stage: StageSpec) -> set[Path]:
    """The stage's listed deps that are code or package data (under src/ or stages/)."""
    listed = {ROOT / dep for dep in stage.deps}
    return {p for p in listed if p.is_relative_to(SRC) or p.is_relative_to(ROOT / "stages")}


def problems(stage: StageSpec) -> list[str]:
    """What is wrong with the stage's code deps: missing and superfluous files (repository-relative)."""
    needed, listed = closure(script_of(stage)), code_deps(stage)
    missing = sorted(str(p.relative_to(ROOT)) for p in needed - listed)
    extra = sorted(str(p.relative_to(ROOT)) for p in listed - needed)
    return [f"{stage.name}: add to deps: {m}" for m in missing] + [f"{stage.name}: not imported: {e}" for e in extra]


@pytest.fixture(scope="module")
def stages() -> list[StageSpec]:
    return load_stage_table(ROOT)


def test_every_stage_lists_exactly_the_code_it_can_import(stages):
    found = [line for stage in stages for line in problems(stage)]
    assert not found, "\n".join(found)


def test_a_dependency_removed_from_a_stage_is_caught(stages):
    stage = next(s for s in stages if s.name.startswith("train_spatial@"))
    listed = [d for d in stage.deps if d.startswith("src/")]
    for removed in (listed[0], listed[-1]):
        broken = replace(stage, deps=tuple(d for d in stage.deps if d != removed))
        assert f"{stage.name}: add to deps: {removed}" in problems(broken)


def test_the_fixer_restores_a_removed_dependency():
    text = (ROOT / "dvc.yaml").read_text()
    broken = text.replace("      - src/mlpgraph/errors.py\n", "", 1)
    assert broken != text and fixed_dvc_yaml(broken) == fixed_dvc_yaml(text)


def test_the_package_lazy_attribute_counts_where_it_is_named(tmp_path):
    (tmp_path / "uses_from.py").write_text("from mlpgraph import Lifter\n")
    (tmp_path / "uses_attribute.py").write_text("import mlpgraph\n\nlifter = mlpgraph.Lifter\n")
    (tmp_path / "plain.py").write_text("import mlpgraph\n\nversion = mlpgraph.__version__\n")
    assert "mlpgraph.lifter" in imported_names(tmp_path / "uses_from.py")
    assert "mlpgraph.lifter" in imported_names(tmp_path / "uses_attribute.py")
    assert "mlpgraph.lifter" not in imported_names(tmp_path / "plain.py")
    assert SRC / PACKAGE / "lifter.py" not in closure(tmp_path / "plain.py")


def test_lazy_relative_and_package_imports_are_followed(tmp_path):
    names = imported_names(SRC / PACKAGE / "workflow.py")
    assert "mlpgraph.params" in names and "dvc.repo" in names  # the lazy DVC import inside a function
    assert module_file("mlpgraph.data") == SRC / PACKAGE / "data" / "__init__.py"
    assert module_file("numpy") is None


def test_stage_imports_stay_narrow(stages):
    """An edit to the report, the plots or the demo renderer reruns the report only, never a training."""
    by_name = {s.name: s for s in stages}
    report_only = {p for p in closure(script_of(by_name["report"])) if "report" in p.parts or p.stem in ("viz",)}
    for stage in stages:
        if stage.name != "report":
            assert not closure(script_of(stage)) & report_only, stage.name
    torch_free = ("fetch", "preprocess")
    for stage in stages:
        if stage.family in torch_free:
            assert not any("models" in p.parts or "training" in p.parts for p in closure(script_of(stage))), stage.name


def fixed_dvc_yaml(text: str) -> str:
    """``dvc.yaml`` with every deps list's code entries replaced by its stage script's closure.

    A deps list belongs to the stage whose script (``stages/*.py``) it names; entries that are not
    code (data, configs) keep their place ahead of the code.
    """
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        out.append(lines[i])
        if lines[i].strip() != "deps:":
            i += 1
            continue
        i += 1
        block = []
        while i < len(lines) and lines[i].lstrip().startswith("- "):
            block.append(lines[i])
            i += 1
        entries = [line.lstrip()[2:] for line in block]
        indent = block[0][: len(block[0]) - len(block[0].lstrip())] if block else ""
        scripts = [e for e in entries if e.startswith("stages/") and e.endswith(".py")]
        if len(scripts) == 1:
            code = sorted(str(p.relative_to(ROOT)) for p in closure(ROOT / scripts[0]))
            code.sort(key=lambda f: (not f.startswith("stages/"), f))
            others = [e for e in entries if not e.startswith(("src/", "stages/"))]
            entries = others + code
        out.extend(f"{indent}- {entry}" for entry in entries)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    # `python -m tests.test_stage_deps`: rewrite dvc.yaml's code deps to the import closures.
    target = ROOT / "dvc.yaml"
    target.write_text(fixed_dvc_yaml(target.read_text()))
