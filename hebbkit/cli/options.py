"""What the commands share: consoles, option types and the error printer."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape  # messages hold [brackets]: pip install 'hebbkit[tune]'

from hebbkit.errors import HebbkitError, HebbkitNotice

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


def print_error(error: HebbkitError) -> None:
    """One paragraph on stderr: the message, then any notes (where partial files went)."""
    err.print(f"[bold red]Error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
    for note in getattr(error, "__notes__", []):
        err.print(note, highlight=False, soft_wrap=True)


def echo(text: str) -> None:
    """A progress line on stderr, printed as written."""
    err.print(text, highlight=False, markup=False)


def notice_printer(fallback: Callable[..., None]) -> Callable[..., None]:
    """A ``warnings.showwarning`` that prints hebbkit's notices as ``Note:`` lines on stderr
    and hands any other warning to ``fallback``."""

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, HebbkitNotice):
            err.print(
                f"[bold yellow]Note:[/] {escape(str(message))}", highlight=False, soft_wrap=True
            )
        else:
            fallback(message, category, *args, **kwargs)

    return show


def user_errors(command: F) -> F:
    """Turn hebbkit's user errors into a one-paragraph message and exit code 2 (3: diverged);
    print hebbkit's notices (:class:`~hebbkit.errors.HebbkitNotice`) as ``Note:`` lines."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("default", HebbkitNotice)  # each distinct notice once
                warnings.showwarning = notice_printer(warnings.showwarning)
                return command(*args, **kwargs)
        except HebbkitError as error:
            print_error(error)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            err.print("Interrupted.")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]
