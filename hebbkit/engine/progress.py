"""Progress of a run as it goes: rich bars on a terminal, plain log lines in a job log.

A reporter shows each phase (a Hebbian layer's epoch, feature extraction, a read-out epoch)
and the metrics row recorded at its end: loss and accuracies beside a read-out epoch's bar,
filter statistics beside a Hebbian epoch's. Where stderr is not a terminal (a Slurm or Ray job
log, ``2> file``) :class:`LogProgress` writes one line per phase and one at least every
30 seconds of a long phase, flushed at once, so that ``tail -f`` shows a run that is alive.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

Advance = Callable[[int], None]

#: Seconds between two lines of a long phase in a log.
LOG_INTERVAL = 30.0


class ProgressReporter(Protocol):
    def phase(self, description: str, total: int) -> contextlib.AbstractContextManager[Advance]:
        """A phase of ``total`` items; the context yields ``advance(n)``."""
        ...

    def metrics(self, row: Mapping[str, Any]) -> None:
        """A metrics row was recorded (inside a phase, or right after the phase it ends)."""
        ...

    def log(self, text: str) -> None:
        """A line of its own, e.g. where the run folder is."""
        ...

    def close(self) -> None:
        """The run is over: finish what is still shown."""
        ...


def row_text(row: Mapping[str, Any]) -> str:
    """The numbers of a metrics row worth reading while a run goes ('' if none)."""
    phase = row.get("phase")
    parts: list[str] = []
    if phase == "readout":
        if "train_loss" in row:
            parts.append(f"loss {row['train_loss']:.4f}")
        for key, label in (
            ("train_running_accuracy", "train"),
            ("validation_accuracy", "validation"),
            ("test_accuracy", "test"),
        ):
            if isinstance(row.get(key), (int, float)):
                parts.append(f"{label} {100 * row[key]:.2f}%")
    elif phase in ("hebbian", "hebbian_trace"):
        if "distinct_filters" in row:
            parts.append(f"distinct filters {row['distinct_filters']}")
        if "mean_norm" in row:
            parts.append(f"mean norm {row['mean_norm']:.3g}")
        if "dead_neurons" in row:
            parts.append(f"dead {row['dead_neurons']}")
        if isinstance(row.get("effective_winners"), (int, float)):
            parts.append(f"effective winners {row['effective_winners']:.1f}")
    return " · ".join(parts)


def _ends_phase(row: Mapping[str, Any]) -> bool:
    # the row recorded right after a phase: a read-out epoch's or a Hebbian epoch's
    return row.get("phase") in ("readout", "hebbian")


class QuietProgress:
    """No bars; lines of their own still go to stderr."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream

    @contextlib.contextmanager
    def phase(self, description: str, total: int) -> Iterator[Advance]:
        yield lambda n: None

    def metrics(self, row: Mapping[str, Any]) -> None:
        pass

    def log(self, text: str) -> None:
        stream = self.stream or sys.stderr
        print(text, file=stream, flush=True)

    def close(self) -> None:
        pass


class RichProgress:
    """One bar per phase, with the metrics of its end beside it (for a terminal)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        #: the last phase's bar, kept live until its metrics row arrives
        self._open: tuple[Progress, TaskID] | None = None

    @contextlib.contextmanager
    def phase(self, description: str, total: int) -> Iterator[Advance]:
        self.close()
        columns = (
            TextColumn("[bold]{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[stats]}"),
        )
        bar = Progress(*columns, console=self.console, transient=False)
        task = bar.add_task(description, total=total, stats="")
        bar.start()
        self._open = (bar, task)
        finished = False
        try:
            yield lambda n: bar.advance(task, n)
            finished = True
        finally:
            if not finished:
                self.close()

    def metrics(self, row: Mapping[str, Any]) -> None:
        text = row_text(row)
        if self._open is not None and text:
            bar, task = self._open
            bar.update(task, stats=text)
        if _ends_phase(row):
            self.close()

    def log(self, text: str) -> None:
        self.close()
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def close(self) -> None:
        if self._open is not None:
            self._open[0].stop()
            self._open = None


class LogProgress:
    """Plain lines for a log file: one per phase (with its metrics), and one at least every
    ``interval`` seconds while a phase runs."""

    def __init__(
        self,
        stream: IO[str] | None = None,
        interval: float = LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.interval = interval
        self.clock = clock
        #: the last phase's closing line, written once its metrics row arrives (or soon after)
        self._pending: str | None = None
        #: the numbers of the last row recorded inside the running phase (diagnostics)
        self._stats = ""

    def _write(self, text: str) -> None:
        stream = self.stream or sys.stderr
        stamp = time.strftime("%H:%M:%S")
        print(f"[{stamp}] {text}", file=stream, flush=True)

    @contextlib.contextmanager
    def phase(self, description: str, total: int) -> Iterator[Advance]:
        self.close()
        started = last = self.clock()
        done = 0
        self._stats = ""

        def advance(n: int) -> None:
            nonlocal done, last
            done += n
            now = self.clock()
            if now - last >= self.interval:
                last = now
                stats = f" · {self._stats}" if self._stats else ""
                self._write(f"{description}: {_progress(done, total, now - started)}{stats}")

        yield advance
        seconds = self.clock() - started
        rate = f", {done / seconds:,.0f}/s" if seconds > 0 else ""
        self._pending = f"{description}: {done:,} in {_duration(seconds)}{rate}"

    def metrics(self, row: Mapping[str, Any]) -> None:
        text = row_text(row)
        if not _ends_phase(row):
            self._stats = text  # shown with the running phase's next line
            return
        if self._pending is not None and text:
            self._pending += f" · {text}"
        self.close()

    def log(self, text: str) -> None:
        self.close()
        self._write(text)

    def close(self) -> None:
        if self._pending is not None:
            line, self._pending = self._pending, None
            self._write(line)


def _progress(done: int, total: int, seconds: float) -> str:
    share = done / total if total else 1.0
    text = f"{done:,}/{total:,} ({100 * share:.0f}%)"
    if seconds > 0 and done:
        rate = done / seconds
        text += f", {rate:,.0f}/s, {_duration((total - done) / rate)} left"
    return text


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def make_progress(quiet: bool = False, console: Console | None = None) -> ProgressReporter:
    """Bars where ``console`` (default: stderr) is a terminal or a notebook, plain lines in
    a log, nothing but lines of their own with ``quiet``."""
    console = console or Console(stderr=True)
    if quiet:
        return QuietProgress(console.file)
    if console.is_terminal or console.is_jupyter:
        return RichProgress(console)
    return LogProgress(console.file)
