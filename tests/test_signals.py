"""Ctrl-C is never lost: held while third-party code that swallows it runs, and the exit code
the CLI chose (130) survives CPython's ``python -m`` quirk."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hebbkit.runs.signals import signals_held


@pytest.fixture(autouse=True)
def python_default_sigint() -> Iterator[None]:
    """Python's own Ctrl-C handler for each test: earlier tests in the session (Ray, for one)
    may leave another handler installed."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def swallowing(seconds_of_work: int = 10**6) -> None:
    """Third-party code that catches everything, as torch's optional imports do."""
    try:
        signal.raise_signal(signal.SIGINT)
        for _ in range(seconds_of_work):
            pass
    except BaseException:
        pass


def test_a_signal_inside_the_block_arrives_when_it_ends() -> None:
    reached_end_of_block = False
    with pytest.raises(KeyboardInterrupt), signals_held():
        swallowing()
        reached_end_of_block = True
    assert reached_end_of_block
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_without_the_block_the_same_code_loses_the_signal() -> None:
    swallowing()  # the control: nothing is raised, Ctrl-C is gone


def test_only_the_first_of_several_signals_is_delivered_and_handlers_come_back() -> None:
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda number, frame: seen.append(number))
    try:
        with signals_held():
            signal.raise_signal(signal.SIGTERM)
            signal.raise_signal(signal.SIGTERM)
        assert seen == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_no_signal_no_effect() -> None:
    with signals_held():
        value = 1 + 1
    assert value == 2


def test_off_the_main_thread_it_does_nothing() -> None:
    errors: list[BaseException] = []

    def body() -> None:
        try:
            with signals_held():
                pass
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert errors == []


PROBE = """
    import sys
    import hebbkit.__main__ as entry

    def interrupted_inside_exec():
        try:  # a Ctrl-C that lands while exec runs source text (dataclasses does this)
            exec("import signal\\nsignal.raise_signal(signal.SIGINT)\\nfor _ in range(10**6): pass")
        except KeyboardInterrupt:
            raise SystemExit(130)

    entry.main = interrupted_inside_exec
    if sys.argv[1] == "entry":
        entry.run_as_module()
    else:
        interrupted_inside_exec()
"""


@pytest.mark.parametrize("how", ["entry", "bare"])
def test_python_dash_m_exits_130_after_a_caught_interrupt(tmp_path: Path, how: str) -> None:
    (tmp_path / "probe.py").write_text(textwrap.dedent(PROBE))
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "probe", how],
        cwd=tmp_path,
        env={"PYTHONPATH": f"{tmp_path}:{root}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if how == "entry":
        assert done.returncode == 130, done.stderr
    else:  # the quirk itself, where this CPython has it (3.10-3.12): killed by SIGINT
        assert done.returncode in (130, -signal.SIGINT), done.stderr
