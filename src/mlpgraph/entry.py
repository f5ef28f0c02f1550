"""What every command-line entry point shares: logging, and user mistakes as one line with exit status 2.

A :class:`~mlpgraph.errors.UserInputError` becomes one line on stderr and exit status 2, without a
traceback; anything else is a bug and keeps its traceback (exit status 1). Under ``torchrun`` with
several processes, ranks > 0 log warnings and errors only, tagged with their rank, so the output
reads as one run's.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from mlpgraph.errors import UserInputError

EXIT_USER_ERROR = 2


def launch_rank() -> int:
    """This process's rank when ``torchrun`` started several (``RANK``), else 0; read without importing torch."""
    try:
        return int(os.environ.get("RANK") or 0) if int(os.environ.get("WORLD_SIZE") or 1) > 1 else 0
    except ValueError:
        return 0  # mlpgraph.distributed reports malformed variables as a user error


def setup_logging(verbose: bool = False) -> str:
    """Log to stderr (debug when ``verbose``; ranks > 0 warnings only); returns the rank tag for messages."""
    rank = launch_rank()
    tag = f" [rank {rank}]" if rank else ""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO if rank == 0 else logging.WARNING,
        format=f"%(asctime)s %(levelname)s{tag} %(name)s: %(message)s",
    )
    return tag


def run_command(
    name: str,
    parser: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace], None],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse ``argv`` with ``parser`` and run ``body``; returns the exit status (0, or 2 for a user mistake)."""
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    tag = setup_logging(args.verbose)
    try:
        body(args)
    except UserInputError as exc:
        print(f"{name}{tag}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


def stage_parser(description: str, experiment: bool = True) -> argparse.ArgumentParser:
    """The arguments every stage takes: ``--params`` (and ``--experiment`` for the per-experiment stages)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    if experiment:
        parser.add_argument("--experiment", required=True, help="experiment name in params.yaml's 'experiments'")
    return parser
