"""The ``hebbkit`` command line (typer)."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape  # messages hold [brackets]: pip install 'hebbkit[tune]'
from rich.table import Table

from hebbkit.errors import HebbkitError
from hebbkit.scaffold import TEMPLATES, write_plugin

app = typer.Typer(
    name="hebbkit",
    help="Biologically plausible, feedback-free learning: SoftHebb networks from TOML recipes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
recipe_app = typer.Typer(help="Show or validate a recipe.", no_args_is_help=True)
app.add_typer(recipe_app, name="recipe")

out = Console()
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

RecipeArg = Annotated[Path, typer.Argument(help="recipe TOML file", show_default=False)]
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


def user_errors(command: F) -> F:
    """Turn hebbkit's user errors into a one-paragraph message and exit code 2 (3: diverged)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except HebbkitError as error:
            err.print(f"[bold red]Error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
            for note in getattr(error, "__notes__", []):
                err.print(note, highlight=False, soft_wrap=True)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            err.print("Interrupted.")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _registry():
    from hebbkit.plugins import get_registry

    return get_registry()


def _load(recipe: Path, overrides: list[str] | None):
    from hebbkit.recipe import load_recipe

    return load_recipe(recipe, overrides or [], registry=_registry())


@app.command()
@user_errors
def run(
    recipe: RecipeArg,
    overrides: SetOption = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="run folder (default runs/<recipe name>/<timestamp>)"),
    ] = None,
    data_root: DataRootOption = None,
    device: DeviceOption = None,
    offline: OfflineOption = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace --out if it exists, once the run succeeded")
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Train and evaluate one recipe; write its run folder."""
    from hebbkit import data
    from hebbkit.experiment import Machine, resolve_device, run_recipe
    from hebbkit.progress import QuietProgress, RichProgress
    from hebbkit.results import default_run_folder

    spec = _load(recipe, overrides)
    machine = Machine(
        data_root=data.data_root(data_root),
        device=resolve_device(device),
        offline=data.offline(offline),
    )
    runs_root = Path(os.environ.get("HEBBKIT_RUNS", "runs"))
    folder = (out_dir or default_run_folder(runs_root, spec.name)).resolve()
    progress = QuietProgress() if quiet else RichProgress(err)
    summary = run_recipe(spec, folder, _registry(), machine, overwrite=overwrite, progress=progress)
    _print_summary(summary, folder)


def _print_summary(summary: dict[str, Any], folder: Path) -> None:
    table = Table(title=f"{summary['recipe']} (seed {summary['seed']})", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for key in ("test_accuracy", "validation_accuracy", "train_accuracy"):
        if key in summary:
            table.add_row(key.replace("_", " "), f"{100 * summary[key]:.2f}%")
    for phase, seconds in summary["seconds"].items():
        table.add_row(f"seconds: {phase}", f"{seconds:.1f}")
    for index, rate in enumerate(summary["hebbian_images_per_second"]):
        table.add_row(f"Hebbian layer {index} images/s", f"{rate:.0f}")
    table.add_row("peak memory", f"{summary['peak_rss_bytes'] / 1024**3:.2f} GiB")
    out.print(table)
    out.print(f"Run folder: {folder}")


@app.command()
@user_errors
def inspect(recipe: RecipeArg, overrides: SetOption = None, as_json: JsonOption = False) -> None:
    """Per Hebbian layer after initialisation: shape, non-zeros, distinct filters, norms, rate."""
    from hebbkit.inspection import describe_layers
    from hebbkit.network import HebbianNetwork

    spec = _load(recipe, overrides)
    source = _registry().get("dataset", spec.data.dataset.name)
    in_channels = getattr(source.build(spec.data.dataset), "channels", None) or _channels_of(spec)
    rows = describe_layers(HebbianNetwork.from_recipe(spec, in_channels, _registry()))
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title=f"{spec.name}: Hebbian layers after initialisation")
    columns = [
        "layer",
        "init",
        "shape",
        "parameters",
        "nonzero_weights",
        "distinct_filters",
        "mean_norm",
        "initial_lr",
    ]
    for column in columns:
        table.add_column(column.replace("_", " "), justify="right")
    for row in rows:
        table.add_row(*[_cell(row[column]) for column in columns])
    out.print(table)


def _channels_of(spec: Any) -> int:
    """Input channels of the recipe's dataset, from the first test image."""
    from hebbkit import data

    source = _registry().get("dataset", spec.data.dataset.name).build(spec.data.dataset)
    images = source.load(data.data_root(None), train=False, download=not data.offline())
    return images.images.shape[1]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "×".join(map(str, value))
    return str(value)


@app.command()
@user_errors
def plugins(as_json: JsonOption = False) -> None:
    """Every registered component with its family, plugin, distribution and version."""
    rows = [
        {
            "family": c.family,
            "name": c.name,
            "plugin": c.origin.plugin,
            "module": c.origin.module,
            "distribution": c.origin.distribution,
            "version": c.origin.version,
            "parameters": list(c.params.model_fields),
            "description": c.description,
        }
        for c in _registry()
    ]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title="hebbkit components")
    for column in ("family", "name", "plugin", "distribution", "version", "parameters"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["family"],
            row["name"],
            row["plugin"],
            row["distribution"],
            row["version"],
            ", ".join(row["parameters"]),
        )
    out.print(table)


@recipe_app.command("show")
@user_errors
def recipe_show(recipe: RecipeArg, overrides: SetOption = None) -> None:
    """Print the resolved recipe (defaults filled in, overrides applied) as TOML."""
    from hebbkit.recipe import recipe_toml

    typer.echo(recipe_toml(_load(recipe, overrides)), nl=False)


@recipe_app.command("validate")
@user_errors
def recipe_validate(recipe: RecipeArg, overrides: SetOption = None) -> None:
    """Check a recipe; exit 2 with the problems if it is invalid."""
    spec = _load(recipe, overrides)
    out.print(f"{recipe}: valid ({spec.name}, {len(spec.layers)} Hebbian layers).", highlight=False)


plugin_app = typer.Typer(help="Write a new plugin package.", no_args_is_help=True)
app.add_typer(plugin_app, name="plugin")

# The families `plugin new` has templates for (an Enum, so typer lists and checks them).
ScaffoldFamily = Enum("ScaffoldFamily", {name: name for name in TEMPLATES}, type=str)


@plugin_app.command("new")
@user_errors
def plugin_new(
    name: Annotated[
        str,
        typer.Argument(
            help="component name, e.g. orthogonal (package hebbkit-NAME, module hebbkit_NAME)",
            show_default=False,
        ),
    ],
    family: Annotated[
        ScaffoldFamily,  # type: ignore[valid-type]
        typer.Option("--family", "-f", help="component family of the template"),
    ] = ScaffoldFamily["initializer"],  # type: ignore[misc]
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="folder to create (default ./hebbkit-NAME)")
    ] = None,
) -> None:
    """Write a ready-to-install plugin package: pyproject, component, test, README."""
    folder = write_plugin(name, family.value, out_dir)
    out.print(f"Wrote the {family.value} plugin package {folder}. Next:", highlight=False)
    out.print(f"  pip install -e {folder}   # then: hebbkit plugins", highlight=False)
    out.print(f"  pytest {folder}", highlight=False)


def load_plugin_commands() -> None:
    """Let plugins add sub-commands (hook ``register_commands``); a failure names the plugin."""
    from hebbkit.plugins import add_commands, get_plugin_manager

    add_commands(get_plugin_manager(), app)


def main() -> None:
    try:
        load_plugin_commands()
    except HebbkitError as error:
        err.print(f"[bold red]Error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise SystemExit(error.exit_code) from None
    app()


import hebbkit.study_cli  # noqa: E402 - adds `grid` and `report` to the app
import hebbkit.tune_cli  # noqa: E402, F401 - adds `tune` and `tune-report` to the app
