"""Drive a Ray cluster from a child process, so that losing the cluster can be reported.

When the head of a cluster dies, Ray ends every process connected to it from its C++ core
(``Failed to connect to GCS ... The program will terminate``): no Python code runs, nothing
can be said. The work that talks to the cluster therefore runs in a child process; this
process waits for it and, if it dies without an answer, raises the error the caller words.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from hebbkit.errors import HebbkitError

T = TypeVar("T")

#: the pipe to the parent while running in a child of :func:`run_in_child`
_parent: Connection | None = None


class ChildLost(Exception):
    """The child ended without an answer (killed, or ended by Ray)."""

    def __init__(self, exit_code: int | None, notes: dict[str, Any]) -> None:
        super().__init__(f"exit code {exit_code}")
        self.exit_code = exit_code
        #: what the child told the parent before it was lost (see :func:`tell_parent`)
        self.notes = notes


def tell_parent(key: str, value: Any) -> None:
    """Let the waiting parent know ``key`` (e.g. the cluster's address once connected)."""
    if _parent is not None:
        _parent.send(("note", (key, value)))


def run_in_child(target: Callable[..., T], *args: Any) -> T:
    """``target(*args)`` in a fresh Python; its result, or its :class:`HebbkitError`.

    Ctrl-C here is passed on to the child once per press (the child has its own process
    group, so that the terminal's signal does not reach it twice). Raises
    :class:`ChildLost` when the child dies without answering.
    """
    # A child that Ray ends leaves its semaphores to the resource tracker, which cleans them
    # up and warns about it: noise after hebbkit's own message.
    quiet = "ignore::UserWarning:multiprocessing.resource_tracker"
    if quiet not in sys.warnoptions:
        sys.warnoptions.append(quiet)
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child_main, args=(sender, target, args), daemon=False)
    notes: dict[str, Any] = {}
    with _forwarding_signals(lambda number: child.pid and os.kill(child.pid, number)):
        child.start()
        sender.close()
        answer = None
        while answer is None:
            try:
                kind, value = receiver.recv()
            except EOFError:
                break
            except InterruptedError:  # pragma: no cover - Python retries recv itself
                continue
            if kind == "note":
                notes[value[0]] = value[1]
            else:
                answer = (kind, value)
        child.join()
    if answer is None:
        raise ChildLost(child.exitcode, notes)
    kind, value = answer
    if kind == "result":
        return value
    if kind == "error":
        raise value
    if kind == "interrupted":
        raise KeyboardInterrupt
    raise RuntimeError(f"The Ray driver process failed:\n{value}")


def _child_main(parent: Connection, target: Callable[..., Any], args: tuple[Any, ...]) -> None:
    global _parent
    _parent = parent
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    try:
        parent.send(("result", target(*args)))
    except HebbkitError as error:
        parent.send(("error", error))
    except KeyboardInterrupt:
        parent.send(("interrupted", None))
    except BaseException:
        parent.send(("crash", traceback.format_exc()))
    finally:
        parent.close()


@contextlib.contextmanager
def _forwarding_signals(forward: Callable[[int], Any]) -> Iterator[None]:
    numbers = (signal.SIGINT, signal.SIGTERM)
    saved = {number: signal.getsignal(number) for number in numbers}

    def handler(number: int, frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            forward(number)

    try:
        for number in numbers:
            signal.signal(number, handler)
    except ValueError:  # not the main thread: signals stay as they are
        saved = {}
    try:
        yield
    finally:
        for number, previous in saved.items():
            signal.signal(number, previous)
