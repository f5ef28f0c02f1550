"""Progress bars for long work: shown on an interactive terminal, quiet otherwise and under CI."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress_disabled() -> bool:
    """True when stderr is not a TTY or the ``CI`` environment variable is set."""
    return bool(os.environ.get("CI")) or not sys.stderr.isatty()


def progress(iterable: Iterable[T], **kwargs: Any) -> Iterable[T]:
    """``tqdm(iterable)`` that respects :func:`progress_disabled`."""
    return tqdm(iterable, disable=progress_disabled(), **kwargs)
