"""What a command may write, and writing it all or none: the project's output-path policy.

Every writer in the package goes through :func:`atomic_outputs` (or :func:`atomic_path`, or
:func:`output_folder` for a folder grown in place), and every command checks its outputs with
:func:`check_outputs` before it starts any work. The rules:

* An output is a file or a folder of a *kind* (:class:`Output`, :data:`FOLDER_KINDS`).
* Never an output: a filesystem root, the home directory, the working directory or a folder
  above it, the root of a git or DVC repository, a path under something that is not a folder,
  an input of the same command (nor, for a folder output, a folder holding an input), a path
  given for two outputs, or a path inside another output's folder.
* A file output replaces an existing regular file (or a symbolic link, not what it points to);
  an existing folder or special file there is refused.
* A folder output replaces an existing folder only when the folder is empty or holds the
  project's marker of the same kind: the file :data:`MARKER`, ``{"kind": "<kind>"}``, that every
  folder output gets. It holds no time or random value, so stage outputs stay deterministic.
* :func:`atomic_outputs` writes every output under a temporary sibling name and renames them
  into place only when the whole block succeeded; a failure leaves none of the new outputs and
  every earlier file as it was (an output whose temporary was never written is left alone).
* A temporary's name (``.tmp-<name>-<new|old>-<host>-<pid>-*``) names its writer; a killed one's are
  removed by the next write of that output and by :func:`output_folder` (a stale backup of a
  missing output is put back), so nothing half-written is taken for an output or piles up.
  Each refusal is a one-line :class:`~mlpgraph.errors.UserInputError` naming the path.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mlpgraph.errors import UserInputError

log = logging.getLogger(__name__)

MARKER = ".mlpgraph-output"
# The kinds of folder output, one per writer: fetch's raw data, a training stage's checkpoints,
# the report's plots and its demo animations.
RAW, CHECKPOINTS, PLOTS, DEMOS = "raw", "checkpoints", "plots", "demos"
FOLDER_KINDS = (RAW, CHECKPOINTS, PLOTS, DEMOS)

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Output:
    """One output of a command: a file (``kind`` None) or a folder of ``kind``; ``option`` names it in messages."""

    path: Path
    kind: str | None = None
    option: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if self.kind is not None and self.kind not in FOLDER_KINDS:
            raise ValueError(f"unknown folder output kind {self.kind!r}; one of {FOLDER_KINDS}")

    @property
    def is_folder(self) -> bool:
        """True for a folder output."""
        return self.kind is not None

    @property
    def label(self) -> str:
        """The path as the user gave it, after the option that named it."""
        return f"{self.option} {self.path}" if self.option else str(self.path)


def as_output(value: Output | PathLike) -> Output:
    """``value`` itself, or a file output at the path ``value``."""
    return value if isinstance(value, Output) else Output(Path(value))


def marker_text(kind: str) -> str:
    """The content of a folder output's :data:`MARKER` file."""
    return json.dumps({"kind": kind}) + "\n"


def marker_kind(folder: PathLike) -> str | None:
    """The kind named by ``folder``'s marker, or None when it has no readable marker."""
    path = Path(folder) / MARKER
    if path.is_symlink() or not path.is_file():
        return None
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    kind = content.get("kind") if isinstance(content, dict) else None
    return kind if isinstance(kind, str) else None


def _absolute(path: PathLike) -> Path:
    """``path`` made absolute with its folder's symbolic links resolved (the last part as written)."""
    absolute = Path(os.path.abspath(path))
    return absolute.parent.resolve() / absolute.name if absolute.name else absolute


def _protected(where: Path) -> str | None:
    """Why the absolute ``where`` may never be written, if it is a place no command may replace."""
    if where.parent == where:
        return "is a filesystem root"
    with contextlib.suppress(OSError):
        cwd = Path.cwd().resolve()
        if where == cwd or where in cwd.parents:
            return "is the working directory or a folder above it"
    with contextlib.suppress(RuntimeError, KeyError, OSError):
        if where == Path.home().resolve():
            return "is the home directory"
    if (where / ".git").exists() or (where / ".dvc").is_dir():
        return "is the root of a repository"
    return None


def _blocked_parent(path: Path) -> str | None:
    """Why ``path``'s folder cannot be made: its nearest existing ancestor is no writable folder."""
    for parent in path.parents:
        if os.path.lexists(parent):
            if not parent.is_dir():
                return f"is under {parent}, which is not a folder"
            if not os.access(parent, os.W_OK | os.X_OK):
                return f"cannot be written: {parent} is not writable"
            return None
    return None


def _existing_problem(output: Output) -> str | None:
    """Why what already is at ``output.path`` may not be replaced, if anything is there."""
    path = output.path
    if not os.path.lexists(path):
        return None
    if not output.is_folder:
        if path.is_dir():
            return "is a folder; give the path of a file to write"
        return None if path.is_symlink() or path.is_file() else "is not a regular file"
    if path.is_symlink():
        return "is a symbolic link; give a folder"
    if not path.is_dir():
        return "is a file, not a folder"
    found = marker_kind(path)
    try:
        empty = not any(path.iterdir())
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if found == output.kind or empty:
        return None
    if found is None:
        return f"is a folder mlpgraph did not write (no {MARKER} file in it); name a new folder or remove this one"
    return f"holds mlpgraph's {found} output, not {output.kind}; name another folder"


def output_problem(output: Output) -> str | None:
    """Why ``output`` may not be written (see the module docstring), or None."""
    return _protected(_absolute(output.path)) or _blocked_parent(output.path) or _existing_problem(output)


def _overlap(outputs: Sequence[Output], inputs: Sequence[Path]) -> str | None:
    """The first output given twice, inside a folder output, or on (or holding) an input."""
    where = [_absolute(out.path) for out in outputs]
    for i, out in enumerate(outputs):
        for j in range(i):
            if where[i] == where[j]:
                return f"{out.label}: is also {outputs[j].label}"
            for outer, inner, inner_label in ((j, i, out.label), (i, j, outputs[j].label)):
                if outputs[outer].is_folder and where[inner].is_relative_to(where[outer]):
                    return f"{inner_label}: is inside the folder output {outputs[outer].label}"
        for source in inputs:
            places = {_absolute(source), Path(os.path.realpath(source))}
            if where[i] in places:
                return f"{out.label}: is an input of this command"
            if out.is_folder and any(place.is_relative_to(where[i]) for place in places):
                return f"{out.label}: holds the input {source}"
    return None


def check_outputs(outputs: Iterable[Output | PathLike], inputs: Iterable[PathLike | None] = ()) -> list[Output]:
    """Refuse (:class:`UserInputError`, one line) outputs the policy forbids; returns them as :class:`Output`\\ s.

    ``inputs`` are the paths the command reads (None entries are skipped).
    """
    outs = [as_output(value) for value in outputs]
    for out in outs:
        problem = output_problem(out)
        if problem is not None:
            raise UserInputError(f"{out.label}: {problem}")
    problem = _overlap(outs, [Path(p) for p in inputs if p is not None])
    if problem is not None:
        raise UserInputError(problem)
    return outs


@dataclass(frozen=True)
class Staged:
    """The temporary paths an :func:`atomic_outputs` block writes, in the order of its outputs."""

    outputs: tuple[Output, ...]
    temps: tuple[Path, ...]

    def __iter__(self) -> Iterator[Path]:
        return iter(self.temps)

    def __len__(self) -> int:
        return len(self.temps)

    def __getitem__(self, index: int) -> Path:
        return self.temps[index]

    def path(self, final: PathLike) -> Path:
        """Where ``final`` (an output, or a path inside a folder output) is written until it is published."""
        final = Path(final)
        for out, tmp in zip(self.outputs, self.temps, strict=True):
            if final == out.path:
                return tmp
            if out.is_folder and final.is_relative_to(out.path):
                return tmp / final.relative_to(out.path)
        raise ValueError(f"{final} is not one of the outputs being written ({[str(o.path) for o in self.outputs]})")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _host_tag() -> str:
    """A short, file-name-safe tag of this machine (temporaries on a shared file system stay apart)."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


_TEMP_NAME = re.compile(r"^\.tmp-(?P<name>.+)-(?P<role>new|old)-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[^-]+$")


def _sibling(path: Path, role: str) -> Path:
    """A fresh, unused name beside ``path`` (nothing is created there), naming this host and process."""
    fd, name = tempfile.mkstemp(prefix=f".tmp-{path.name}-{role}-{_host_tag()}-{os.getpid()}-", dir=path.parent)
    os.close(fd)
    Path(name).unlink()
    return Path(name)


def _writer_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs (one of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass
    return True


def stale_temporaries(folder: PathLike, name: str | None = None) -> list[Path]:
    """The temporaries in ``folder`` (of the output ``name``, or of any) whose writer on this host is gone."""
    stale = []
    with contextlib.suppress(OSError):
        for entry in sorted(Path(folder).iterdir()):
            found = _TEMP_NAME.match(entry.name)
            if found is None or (name is not None and found["name"] != name) or found["host"] != _host_tag():
                continue
            if int(found["pid"]) != os.getpid() and not _writer_alive(int(found["pid"])):
                stale.append(entry)
    return stale


def remove_stale_temporaries(folder: PathLike, name: str | None = None) -> list[Path]:
    """Remove :func:`stale_temporaries`; a stale backup of an output that is missing is put back first."""
    removed = []
    for entry in stale_temporaries(folder, name):
        found = _TEMP_NAME.match(entry.name)
        final = entry.parent / found["name"]  # type: ignore[index]
        try:
            if found["role"] == "old" and not os.path.lexists(final):  # type: ignore[index]
                os.replace(entry, final)
                log.warning("put back %s, set aside by a writer that was killed", final)
                continue
            _remove(entry)
            removed.append(entry)
        except OSError as exc:
            log.warning("could not remove the stale temporary %s: %s", entry, exc)
    if removed:
        log.info("removed %d stale temporaries of killed writers in %s", len(removed), folder)
    return removed


def _make_parents(path: Path) -> list[Path]:
    """Create ``path``'s missing folders; returns those created, outermost first."""
    created = [parent for parent in reversed(path.parents) if not os.path.lexists(parent)]
    for folder in created:
        folder.mkdir(exist_ok=True)
    return created


def _set_aside(final: Path) -> Path | None:
    """Keep what is at ``final`` under a backup name: a hard link beside a file, the folder itself renamed."""
    if not os.path.lexists(final):
        return None
    backup = _sibling(final, "old")
    if final.is_file() and not final.is_symlink():
        try:
            os.link(final, backup)  # the file stays in place until the new one atomically replaces it
            return backup
        except OSError:
            pass
    os.replace(final, backup)
    return backup


def _roll_back(done: list[tuple[Path, Path | None, bool]]) -> None:
    """Undo :func:`_publish`'s renames: remove what was published, put every backup back."""
    for final, backup, published in reversed(done):
        try:
            if published:
                _remove(final)
            if backup is not None:
                if published or not os.path.lexists(final):
                    os.replace(backup, final)
                else:
                    backup.unlink()  # a hard link beside the untouched original
        except OSError as exc:
            log.error("could not restore %s (its earlier version is kept as %s): %s", final, backup, exc)


def _publish(outputs: Sequence[Output], temps: Sequence[Path]) -> None:
    """Rename each written temporary onto its output: all of them, or (rolled back) none."""
    check_outputs(outputs)  # again: something may have appeared at an output while the block ran
    pending = [(out, tmp) for out, tmp in zip(outputs, temps, strict=True) if os.path.lexists(tmp)]
    for out, tmp in pending:
        if out.kind is not None:
            (tmp / MARKER).write_text(marker_text(out.kind))
    done: list[tuple[Path, Path | None, bool]] = []
    try:
        for out, tmp in pending:
            done.append((out.path, _set_aside(out.path), False))
            os.replace(tmp, out.path)
            done[-1] = (*done[-1][:2], True)
    except BaseException:
        _roll_back(done)
        raise
    for _, backup, _ in done:
        if backup is not None:
            _remove(backup)


@contextlib.contextmanager
def atomic_outputs(*outputs: Output | PathLike) -> Iterator[Staged]:
    """Yield a temporary path beside each output; rename them all into place only if the block succeeds.

    A file output's temporary does not exist yet; a folder output's is an empty folder, given its
    marker when published. The outputs are checked (:func:`check_outputs`) on entry and again
    before publishing. On failure every temporary and every folder created for them is removed.
    """
    outs = check_outputs(outputs)
    created: list[Path] = []
    temps: list[Path] = []
    try:
        for out in outs:
            created += _make_parents(out.path)
            remove_stale_temporaries(out.path.parent, out.path.name)
            temps.append(_sibling(out.path, "new"))
            if out.is_folder:
                temps[-1].mkdir()
        yield Staged(tuple(outs), tuple(temps))
        _publish(outs, temps)
    except BaseException:
        for tmp in temps:
            _remove(tmp)
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


@contextlib.contextmanager
def atomic_path(path: PathLike, kind: str | None = None) -> Iterator[Path]:
    """:func:`atomic_outputs` for one output: a file, or a folder of ``kind``."""
    with atomic_outputs(Output(Path(path), kind)) as (tmp,):
        yield tmp


def output_folder(path: PathLike, kind: str) -> Path:
    """Claim a folder output written in place (a training run's checkpoints): checked, created, marked.

    The stale temporaries of a killed earlier writer inside it are removed.
    """
    out = check_outputs([Output(Path(path), kind)])[0]
    out.path.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out.path)
    if marker_kind(out.path) != kind:
        (out.path / MARKER).write_text(marker_text(kind))
    return out.path
