"""What the commands share: consoles, option types and the error printer."""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape  # messages hold [brackets]: pip install 'hebbkit[tune]'

from hebbkit.config.toml import clip
from hebbkit.environment import unknown_variables
from hebbkit.errors import HebbkitError, HebbkitNotice, Terminated

out = Console()
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

RecipeArg = Annotated[
    Path,
    typer.Argument(
        help="recipe TOML file, or the name of a packaged recipe (hebbkit recipes lists them)",
        show_default=False,
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        help="override a recipe value: dotted.path=VALUE (VALUE is TOML; "
        "layers.0.init.name, layers.*.init for every layer)",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
DataRootOption = Annotated[
    Path | None,
    typer.Option("--data-root", help="dataset folder (default: $HEBBKIT_DATA, else ./data)"),
]
DeviceOption = Annotated[
    str | None,
    typer.Option("--device", help="cpu or cuda (default: $HEBBKIT_DEVICE, else cpu)"),
]
PrecisionOption = Annotated[
    str | None,
    typer.Option(
        "--precision",
        help="numerics of the Hebbian phase and the features pass: fp32 (strict float32, "
        "TF32 off on GPUs), bf16 (bfloat16 matrix products, float32 weights and updates), "
        "bf16-auto (bf16 only in layers with fan-in >= 512, where it is faster), tf32 (CUDA "
        "only) or auto (bf16-auto on a CPU with AVX512-BF16 or AMX, else fp32); default: "
        "$HEBBKIT_PRECISION, else auto",
        show_default=False,
    ),
]
OfflineOption = Annotated[
    bool, typer.Option("--offline", help="never download data (also HEBBKIT_OFFLINE=1)")
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")]
TrackOption = Annotated[
    list[str] | None,
    typer.Option(
        "--track",
        help="log to an experiment tracker: NAME[:URI], e.g. mlflow, "
        "mlflow:sqlite:///runs/mlflow.db, tensorboard, tensorboard:runs/tb (repeatable; "
        "default $HEBBKIT_TRACK, comma-separated)",
        show_default=False,
    ),
]
StorageOption = Annotated[
    str | None,
    typer.Option(
        "--storage",
        help="where Ray keeps results and state: a folder every node sees, or a URI "
        "(s3://bucket/path, gs://..., file://...); default: inside --out",
    ),
]
ShipDataOption = Annotated[
    bool | None,
    typer.Option(
        "--ship-data/--no-ship-data",
        help="read the data here and send it to the trials through Ray's object store "
        "(default: on with --address other than local); without it every node reads "
        "--data-root itself, checked before the first trial",
        show_default=False,
    ),
]
MaxRetriesOption = Annotated[
    int,
    typer.Option(
        "--max-retries",
        help="times a trial lost to a dead node or worker is started again (a trial whose "
        "run fails is never retried)",
    ),
]


MaxMemoryOption = Annotated[
    str | None,
    typer.Option(
        "--max-memory",
        help="refuse a run whose estimated peak memory exceeds this, e.g. 8GiB (default: "
        "$HEBBKIT_MAX_MEMORY, else what the machine has free)",
    ),
]

#: The longest error message printed (a message is one paragraph; this bounds a hostile one).
MAX_MESSAGE = 8000
#: Signals that stop a command like Ctrl-C does: timeout, Slurm, Kubernetes and Ray send
#: SIGTERM; a closed terminal sends SIGHUP.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)  # Windows has no SIGHUP


def print_error(error: BaseException) -> None:
    """One paragraph on stderr: the message, then any notes (where partial files went)."""
    text = clip(str(error), MAX_MESSAGE)
    err.print(f"[bold red]Error:[/] {escape(text)}", highlight=False, soft_wrap=True)
    print_notes(error)


def print_notes(error: BaseException) -> None:
    for note in getattr(error, "__notes__", []):
        err.print(note, highlight=False, soft_wrap=True, markup=False)


def print_notice(message: str) -> None:
    err.print(f"[bold yellow]Note:[/] {escape(message)}", highlight=False, soft_wrap=True)


def echo(text: str) -> None:
    """A progress line on stderr, printed as written."""
    err.print(text, highlight=False, markup=False)


def notice_printer(fallback: Callable[..., None]) -> Callable[..., None]:
    """A ``warnings.showwarning`` that prints hebbkit's notices as ``Note:`` lines on stderr
    and hands any other warning to ``fallback``."""

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, HebbkitNotice):
            print_notice(str(message))
        else:
            fallback(message, category, *args, **kwargs)

    return show


def install_notice_printer() -> None:
    """For the whole process (the ``hebbkit`` program): notices as ``Note:`` lines."""
    warnings.simplefilter("default", HebbkitNotice)
    warnings.showwarning = notice_printer(warnings.showwarning)


@contextlib.contextmanager
def stop_signals_as_interrupts() -> Iterator[None]:
    """While a command runs, SIGTERM and SIGHUP raise :class:`~hebbkit.errors.Terminated`
    (a KeyboardInterrupt), so a run stopped by ``timeout`` or a scheduler keeps its files
    as ``<out>.failed-<time>`` exactly as after Ctrl-C. A repeated signal is ignored while
    the first one unwinds, so cleaning up is not cut short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(number: int, frame: Any) -> None:
        signal.signal(number, signal.SIG_IGN)
        raise Terminated(signal.Signals(number).name, 128 + number)

    previous = {number: signal.signal(number, stop) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _os_error(error: OSError) -> HebbkitError:
    """An operating-system error no layer turned into a message: name the path and why."""
    paths = [str(p) for p in (error.filename, error.filename2) if p is not None]
    where = " -> ".join(clip(p, 300) for p in paths) or "a file"
    return HebbkitError(f"Cannot use {where}: {error.strerror or error}.")


def user_errors(command: F) -> F:
    """Turn hebbkit's user errors into a one-paragraph message and exit code 2 (3: diverged);
    print hebbkit's notices (:class:`~hebbkit.errors.HebbkitNotice`) as ``Note:`` lines.
    Ctrl-C exits 130, SIGTERM 143, each after the note saying where partial files went; an
    operating-system error no layer named (a full disk, a read-only folder) exits 2 with the
    path and the reason."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for note in unknown_variables():
            print_notice(note)
        try:
            with warnings.catch_warnings(), stop_signals_as_interrupts():
                warnings.simplefilter("default", HebbkitNotice)  # each distinct notice once
                warnings.showwarning = notice_printer(warnings.showwarning)
                return command(*args, **kwargs)
        except HebbkitError as error:
            print_error(error)
            raise typer.Exit(error.exit_code) from None
        except Terminated as error:
            err.print(f"Stopped by {error.signal_name}.", highlight=False)
            print_notes(error)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt as error:
            err.print("Interrupted.")
            print_notes(error)
            raise typer.Exit(130) from None
        except OSError as error:
            print_error(_os_error(error))
            raise typer.Exit(2) from None
        except MemoryError:
            print_error(
                HebbkitError(
                    "Out of memory. Lower the recipe's channels or batch sizes, or check the "
                    "estimate with hebbkit inspect (--max-memory bounds what a run may plan)."
                )
            )
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]
