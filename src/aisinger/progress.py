"""Progress bars for long work.

Bars go to stderr (rich) and are shown only when progress is enabled: the CLI disables them for
``-q`` and when stderr is not a terminal unless ``AISINGER_PROGRESS=1``.  Library users get bars
by default in interactive sessions.  The switch is an environment variable rather than module
state so that worker processes inherit it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

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

    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        for item in iterable:
            yield item
            bar.advance(task)


@contextmanager
def stage_bar(description: str) -> Iterator[Callable[[str, float], None]]:
    """A bar over a job of named stages: yields ``report(stage, fraction_done)`` (fraction in
    [0, 1]), the callback :func:`aisinger.pipelines.cover.cover` and the service's jobs take.  Without
    progress enabled the callback does nothing."""
    if not enabled():
        yield lambda stage, fraction: None
        return

    columns = [TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
               TimeElapsedColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=1.0)

        def report(stage: str, fraction: float) -> None:
            bar.update(task, completed=fraction, description=f"{description}: {stage}")

        yield report
