"""Commands about one recipe: run, inspect, recipe show, recipe validate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from hebbkit.cli.options import (
    DataRootOption,
    DeviceOption,
    JsonOption,
    MaxMemoryOption,
    OfflineOption,
    PrecisionOption,
    QuietOption,
    RecipeArg,
    SetOption,
    TrackOption,
    err,
    out,
    user_errors,
)
from hebbkit.config.overrides import overrides_text
from hebbkit.plugins import get_registry


def _load(recipe: Path, overrides: list[str] | None) -> Any:
    """The recipe file (or packaged recipe) with the overrides applied and named in its
    description."""
    from hebbkit.config.packaged import resolve_recipe
    from hebbkit.config.recipe import load_recipe, note_overrides

    spec = load_recipe(resolve_recipe(recipe), overrides or [], get_registry())
    return note_overrides(spec, overrides or [])


@user_errors
def run(
    recipe: RecipeArg,
    overrides: SetOption = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="run folder (default runs/<recipe name>/<timestamp>)"),
    ] = None,
    hebbian_from: Annotated[
        Path | None,
        typer.Option(
            "--hebbian-from",
            help="train only the read-out, on the Hebbian weights of this finished run "
            "(its seed, data, Hebbian settings and layers must match the recipe's)",
        ),
    ] = None,
    data_root: DataRootOption = None,
    device: DeviceOption = None,
    precision: PrecisionOption = None,
    offline: OfflineOption = False,
    track: TrackOption = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace --out if it exists, once the run succeeded")
    ] = False,
    max_memory: MaxMemoryOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train and evaluate one recipe; write its run folder."""
    from hebbkit.engine.progress import make_progress
    from hebbkit.runs.folder import default_run_folder
    from hebbkit.runs.reuse import continued_precision
    from hebbkit.runs.run import Machine, RunOrigin, precision_setting, run_recipe

    spec = _load(recipe, overrides)
    setting = continued_precision(precision_setting(precision), hebbian_from)
    machine = Machine.from_flags(
        data_root, device, offline, track, max_memory=max_memory, precision=setting
    )
    folder = (out_dir or default_run_folder(spec.name)).resolve()
    summary = run_recipe(
        spec,
        folder,
        get_registry(),
        machine,
        overwrite=overwrite,
        progress=make_progress(quiet, err),
        hebbian_from=hebbian_from,
        origin=RunOrigin(source=recipe),
    )
    _print_summary(summary, folder, overrides or [])


@user_errors
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="a finished run folder", show_default=False)],
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset", help="evaluate on this dataset's test images (default: the run's own)"
        ),
    ] = None,
    data_root: DataRootOption = None,
    device: DeviceOption = None,
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision",
            help="numerics of the network's pass: fp32, bf16, bf16-auto, tf32 or auto (this "
            "machine's; default: the run's own, as its summary.json recorded it)",
            show_default=False,
        ),
    ] = None,
    offline: OfflineOption = False,
    as_json: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Evaluate a finished run's network and read-out again (nothing is written)."""
    from hebbkit.engine.progress import make_progress
    from hebbkit.runs.evaluate import evaluate_run
    from hebbkit.runs.run import Machine, precision_setting

    result = evaluate_run(
        run_dir,
        get_registry(),
        Machine.from_flags(data_root, device, offline, track=[], precision="fp32"),
        dataset=dataset,
        precision=precision_setting(precision) if precision else None,
        progress=make_progress(quiet or as_json, err),
    )
    if as_json:
        out.print_json(json.dumps(result.as_dict()))
        return
    table = Table(title=f"{run_dir} on {result.dataset} ({result.precision})")
    for column in ("split", "images", "accuracy", "recorded by the run"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for name, (images, value) in result.splits.items():
        recorded = result.recorded.get(name)
        table.add_row(
            name,
            f"{images:,}",
            f"{100 * value:.2f}%",
            f"{100 * recorded:.2f}%" if recorded is not None else "–",
        )
    out.print(table)


def _print_summary(summary: Any, folder: Path, overrides: list[str]) -> None:
    title = f"{summary['recipe']} (seed {summary['seed']})"
    if overrides:
        title += f" with {overrides_text(overrides)}"
    table = Table(title=escape(title), show_header=False)
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
    table.add_row("precision", summary.get("precision", "fp32"))
    if summary.get("hebbian_from"):
        table.add_row("Hebbian weights from", str(summary["hebbian_from"]))
    out.print(table)
    out.print(f"Run folder: {folder}")


@user_errors
def inspect(
    recipe: RecipeArg,
    overrides: SetOption = None,
    as_json: JsonOption = False,
    data_root: DataRootOption = None,
    device: DeviceOption = None,
    offline: OfflineOption = False,
    max_memory: MaxMemoryOption = None,
) -> None:
    """Per Hebbian layer: map sizes, and after initialisation shape, non-zeros, distinct
    filters, norms, rate; then the run's memory estimate (refused if it does not fit)."""
    from hebbkit.engine.shapes import gib
    from hebbkit.runs.run import Machine, inspect_recipe

    spec = _load(recipe, overrides)
    machine = Machine.from_flags(data_root, device, offline, track=[], max_memory=max_memory)
    report = inspect_recipe(spec, get_registry(), machine)
    if as_json:
        out.print_json(json.dumps(report))
        return
    rows = report["layers"]
    table = Table(
        title=f"{spec.name}: Hebbian layers after initialisation",
        caption=escape(spec.description),
    )
    columns = [
        "layer",
        "input_map",
        "output_map",
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
    memory = report["memory"]
    parts = Table(
        title=f"Memory estimate: {gib(memory['peak_bytes'])} at its peak ({memory['peak_phase']} "
        f"phase, {'RAM' if memory['device'] == 'cpu' else 'GPU memory'})"
    )
    for column in ("phase", "part", "set by", "size"):
        parts.add_column(column, justify="right" if column == "size" else "left")
    for part in memory["parts"]:
        parts.add_row(part["phase"], part["what"], part["key"], gib(part["bytes"]))
    out.print(parts)
    if memory["limit"]:
        out.print(f"Fits in {memory['limit']} ({gib(memory['limit_bytes'])}).", highlight=False)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "×".join(map(str, value))
    return str(value)


@user_errors
def recipe_show(recipe: RecipeArg, overrides: SetOption = None) -> None:
    """Print the resolved recipe (defaults filled in, overrides applied) as TOML."""
    from hebbkit.config.recipe import recipe_toml

    typer.echo(recipe_toml(_load(recipe, overrides)), nl=False)


@user_errors
def recipe_validate(recipe: RecipeArg, overrides: SetOption = None) -> None:
    """Check a recipe; exit 2 with the problems if it is invalid."""
    spec = _load(recipe, overrides)
    layers = f"{len(spec.layers)} Hebbian layer{'s' if len(spec.layers) > 1 else ''}"
    out.print(f"{recipe}: valid ({spec.name}, {layers}).", highlight=False)
