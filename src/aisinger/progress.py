"""Progress bars for long work.

Bars go to stderr (rich) and are shown only when progress is enabled: the CLI disables them for
``-q`` and when stderr is not a terminal unless ``AISINGER_PROGRESS=1``.  Library users get bars
by default in interactive sessions.  The switch is an environment variable rather than module
state so that worker processes inherit it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

ENV_PROGRESS = "AISINGER_PROGRESS"


def enabled() -> bool:
    """Whether progress bars are shown (``AISINGER_PROGRESS`` = 1/0, else: stderr is a TTY)."""
    env = os.environ.get(ENV_PROGRESS)
    if env is not None:
        return env not in ("0", "", "false", "no")
    return sys.stderr.isatty()


def track(iterable: Iterable[T], total: int | None = None, description: str = "") -> Iterator[T]:
    """Iterate over ``iterable`` with a progress bar (elapsed, ETA) when progress is enabled."""
    if not enabled():
        yield from iterable
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)
    from rich.console import Console

    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        for item in iterable:
            yield item
            bar.advance(task)
