"""Progress display: rich bars on a terminal, nothing when quiet."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

Advance = Callable[[int], None]


class ProgressReporter(Protocol):
    def phase(self, description: str, total: int) -> contextlib.AbstractContextManager[Advance]: ...


class QuietProgress:
    @contextlib.contextmanager
    def phase(self, description: str, total: int) -> Iterator[Advance]:
        yield lambda n: None


class RichProgress:
    """One bar per phase (each Hebbian layer, feature extraction, read-out)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)

    @contextlib.contextmanager
    def phase(self, description: str, total: int) -> Iterator[Advance]:
        columns = (
            TextColumn("[bold]{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=self.console, transient=False) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n: bar.advance(task, n)
