"""Holding stop signals while third-party code that would swallow them runs."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

#: Ctrl-C, and the signals the CLI turns into a KeyboardInterrupt (timeout, Slurm, a closed
#: terminal); Windows has only SIGINT and SIGTERM.
HELD_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Receive stop signals inside the block but deliver the first one only when it ends.

    For third-party code that catches every exception: torch's first
    ``use_deterministic_algorithms`` call imports ``torch._inductor`` and, from it, triton,
    and a Ctrl-C landing in that second of imports is swallowed there, so the run went on to
    the end. Off the main thread (where Python delivers no signals) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(number: int, frame: Any) -> None:
        received.append(number)

    saved = {number: signal.signal(number, hold) for number in HELD_SIGNALS}
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)
        if received:
            signal.raise_signal(received[0])  # now with the handler the command had
