"""The results file of every ``bench/*.py``: refused before any work if it would clobber, written atomically."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from mlpgraph.errors import UserInputError
from mlpgraph.outputs import Output, atomic_path, check_outputs

log = logging.getLogger("bench")


def refuse_bad_out(parser: argparse.ArgumentParser, out: Path, inputs: tuple[Path, ...] = ()) -> None:
    """Exit 2 with one line (``parser.error``) when ``--out`` breaks the output policy; before any work."""
    try:
        check_outputs([Output(out, option="--out")], inputs=[p for p in inputs if p is not None])
    except UserInputError as exc:
        parser.error(str(exc))


def write_results(out: Path, results: dict[str, Any]) -> None:
    """``results`` as indented JSON at ``out``, atomically."""
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(results, indent=2) + "\n")
    log.info("wrote %s", out)
