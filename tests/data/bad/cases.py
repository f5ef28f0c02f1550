"""The bad-input corpus: every case's file, entry point, what is wrong and the expected message fragment.

The table is ``cases.tsv``; README.md is written from it (``make_corpus.py``); tests/test_bad_inputs.py runs every row.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


class Case(NamedTuple):
    """One corpus file (or output path) and what its entry point must say about it."""

    file: str
    entry: str
    problem: str
    fragment: str


CKPT = "mlpgraph predict --checkpoint"
INPUT = "mlpgraph predict --input"
OUT = "mlpgraph predict --out"
RELEASE = "mlpgraph import-release --weights"
RAW3D = "stages/preprocess.py --raw (as data_3d_h36m.npz)"
RAW2D = "stages/preprocess.py --raw (as data_2d_h36m_gt.npz)"
CAMS = "stages/preprocess.py --raw (as cameras.json)"
PARAMS = "stages/fetch.py --params"
PROCESSED = "mlpgraph.data.preprocess.load_processed"

ENTRIES = {"CKPT": CKPT, "INPUT": INPUT, "OUT": OUT, "RELEASE": RELEASE, "RAW3D": RAW3D, "RAW2D": RAW2D,
           "CAMS": CAMS, "PARAMS": PARAMS, "PROCESSED": PROCESSED}  # fmt: skip


TABLE = Path(__file__).with_name("cases.tsv")


def read_cases(path: Path = TABLE) -> list[Case]:
    """The rows of ``cases.tsv``: file, entry point (a key of :data:`ENTRIES`), problem, fragment."""
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    return [Case(file, ENTRIES[entry], problem, fragment) for file, entry, problem, fragment in rows]


CASES = read_cases()


def readme_text() -> str:
    """README.md: what the corpus is, how it is made and tested, and the table of cases."""
    lines = [
        "# Bad-input corpus",
        "",
        "Small crafted files that every reader and command must refuse with **one line on stderr, exit",
        "status 2, no traceback and nothing written** (`tests/test_bad_inputs.py` runs each through its",
        "entry point). `make_corpus.py` writes them deterministically (`python tests/data/bad/make_corpus.py`);",
        "a test checks it regenerates exactly the committed bytes. Generated from `cases.tsv` (read by",
        "`cases.py`): edit that table, not this file.",
        "",
        "Entry points: `mlpgraph predict` / `import-release` run in-process through `mlpgraph.cli.main`;",
        "the stage scripts through `run_command` with their own parser and `main` (MLflow tracking",
        "stubbed out); raw files are copied into an otherwise valid raw folder under the name shown;",
        "params files beside a copy of `configs/`; processed files through `load_processed` (what",
        "every training and evaluation stage calls first).",
        "",
        f"{len(CASES)} cases.",
        "",
        "| file | entry point | what is wrong | expected message fragment |",
        "|---|---|---|---|",
    ]
    for case in CASES:
        fragment = case.fragment.replace("|", "\\|")
        lines.append(f"| `{case.file}` | {case.entry} | {case.problem} | `{fragment}` |")
    return "\n".join(lines) + "\n"
