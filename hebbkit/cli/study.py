"""``hebbkit grid`` and ``hebbkit report``: a study's tables and figures, one command each."""

from __future__ import annotations

import shlex
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from hebbkit.cli.options import (
    DataRootOption,
    DeviceOption,
    MaxMemoryOption,
    MaxRetriesOption,
    OfflineOption,
    PrecisionOption,
    QuietOption,
    SetOption,
    ShipDataOption,
    StorageOption,
    TrackOption,
    echo,
    err,
    out,
    user_errors,
)
from hebbkit.errors import RunFolderError
from hebbkit.plugins import get_registry

if TYPE_CHECKING:
    from hebbkit.registry import Registry
    from hebbkit.runs.grid import GridPlan


@user_errors
def grid(
    grid_file: Annotated[
        Path,
        typer.Argument(
            help="grid TOML file (e.g. recipes/study/table2.toml), or a packaged one's name "
            "(study/table2)",
            show_default=False,
        ),
    ],
    overrides: SetOption = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="output folder: one <label>/seed<k> run folder per run (default runs/<grid name>)",
        ),
    ] = None,
    seeds: Annotated[
        str | None,
        typer.Option("--seeds", help="seeds instead of the grid's, e.g. 0 or 0-3 or 0,2"),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only", help="run only labels matching this glob (repeatable), e.g. 'fashion_mnist/*'"
        ),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="run through Ray: local (start Ray here), auto (the cluster of `ray start`), "
            "ray://HOST:10001 or HOST:6379; default: one run after another in this process",
        ),
    ] = None,
    cpus_per_run: Annotated[
        float, typer.Option("--cpus-per-run", help="with --address: CPUs per run")
    ] = 1.0,
    gpus_per_run: Annotated[
        float,
        typer.Option("--gpus-per-run", help="with --address: GPUs per run (0.5: two per GPU)"),
    ] = 0.0,
    max_concurrent: Annotated[
        int | None, typer.Option("--max-concurrent", help="with --address: runs at once")
    ] = None,
    storage: StorageOption = None,
    ship_data: ShipDataOption = None,
    max_retries: MaxRetriesOption = 3,
    data_root: DataRootOption = None,
    device: DeviceOption = None,
    precision: PrecisionOption = None,
    offline: OfflineOption = False,
    track: TrackOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="validate every run's recipe and list the runs")
    ] = False,
    max_memory: MaxMemoryOption = None,
    quiet: QuietOption = False,
) -> None:
    """Run every run of a grid file (resumable: finished runs are kept) and tabulate them.

    Runs that differ only in read-out keys learn their Hebbian phase once."""
    from hebbkit.config.packaged import resolve_recipe
    from hebbkit.engine.progress import make_progress
    from hebbkit.runs.folder import runs_root
    from hebbkit.runs.grid import finished_precision, load_grid, parse_seeds, run_grid
    from hebbkit.runs.options import ray_options
    from hebbkit.runs.run import Machine, memory_setting, precision_setting, track_setting
    from hebbkit.runs.run import data_root as resolve_data_root
    from hebbkit.runs.run import offline as is_offline

    registry = get_registry()
    machine = (
        None
        if address
        else Machine.from_flags(
            data_root, device, offline, track, max_memory=max_memory, precision=precision
        )
    )
    # through Ray the runs' machines are elsewhere: only an explicit --max-memory applies here
    # runs start one after another: refuse now only what could never fit (each run checks
    # what is free when it starts)
    limit = machine.memory_limit(total=True) if machine else memory_setting(max_memory)
    plan = load_grid(
        resolve_recipe(grid_file, "Grid file"),
        registry,
        cli_overrides=overrides or [],
        seeds=parse_seeds(seeds) if seeds is not None else None,
        only=only or None,
        memory_limit=(limit.bytes, limit.what) if limit else None,
    )
    given_out = out_dir or runs_root() / plan.name
    folder = given_out.expanduser().resolve()
    setting = precision_setting(precision)
    if setting == "auto":
        # a grid continues in the precision its finished runs used (one mean ± std is one
        # precision's), whatever this machine would pick for a new grid
        setting = finished_precision(plan, folder) or setting
    numerics = setting
    if machine is not None:
        machine = replace(machine, precision=setting)
        numerics = machine.precision
    ray = None
    if address:
        ray = ray_options(
            address=address,
            cpus=cpus_per_run,
            gpus=gpus_per_run,
            max_concurrent=max_concurrent,
            device=device,
            data_root=resolve_data_root(data_root),
            offline=is_offline(offline),
            precision=setting,
            storage=storage,
            ship_data=ship_data,
            max_retries=max_retries,
            unit="run",
            track=track_setting(track),
        )
        numerics = ray.precision
    if dry_run:
        _print_plan(plan, folder, registry, numerics)
        return
    # the precision the grid runs with, so that the command computes the same on any machine
    command = _command(grid_file, given_out, seeds, only, overrides, address, device, numerics)
    try:
        outcomes = run_grid(
            plan,
            folder,
            registry,
            command=command,
            machine=machine,
            ray=ray,
            progress=lambda: make_progress(quiet, err),
            echo=echo,
        )
    except KeyboardInterrupt:
        err.print(
            f"Interrupted. Finished runs are kept; continue with: {shlex.join(command)}",
            highlight=False,
        )
        raise typer.Exit(130) from None
    _print_results(plan, folder)
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        err.print(f"[bold red]{len(failed)} of {len(outcomes)} runs failed:[/]")
        for outcome in failed:
            err.print(
                f"  {outcome.run.label} seed {outcome.run.seed}: {outcome.error}",
                highlight=False,
                markup=False,
            )
        err.print(
            f"Run the same command again to retry them: {shlex.join(command)}", highlight=False
        )
        raise typer.Exit(1)


def _command(
    grid_file: Path,
    out_dir: Path,
    seeds: str | None,
    only: list[str] | None,
    overrides: list[str] | None,
    address: str | None,
    device: str | None,
    precision: str | None = None,
) -> list[str]:
    """The command line that reproduces this grid (machine paths such as --data-root left out)."""
    command = ["hebbkit", "grid", str(grid_file), "--out", str(out_dir)]
    if seeds is not None:
        command += ["--seeds", seeds]
    for pattern in only or []:
        command += ["--only", pattern]
    for override in overrides or []:
        command += ["-s", override]
    if address:
        command += ["--address", address]
    if device:
        command += ["--device", device]
    if precision:
        command += ["--precision", precision]
    return command


def _print_plan(plan: GridPlan, folder: Path, registry: Registry, precision: str) -> None:
    from hebbkit.runs.grid import check_finished, is_finished

    table = Table(
        title=f"{plan.name}: {len(plan.runs)} runs (output {folder}; precision {precision})"
    )
    for column in ("label", "seed", "state", "overrides (besides the grid's set)"):
        table.add_column(column, overflow="fold")
    shared = len(plan.spec.overrides)
    counts = {"finished": 0, "to run": 0, "changed": 0}
    for run in plan.runs:
        state = "to run"
        if is_finished(folder, run):
            try:
                check_finished(folder, run, registry, precision)
                state = "finished"
            except RunFolderError:
                state = "changed"
        counts[state] += 1
        own = [o for o in run.overrides[shared:] if not o.startswith("seed=")]
        table.add_row(
            run.label,
            str(run.seed),
            state,
            "  ".join(own) or "–",
            style="red" if state == "changed" else None,
        )
    out.print(table)
    out.print(
        f"Every run's recipe is valid: {counts['finished']} finished, {counts['to run']} to run"
        + (
            f", {counts['changed']} finished with another recipe (delete them to rerun)"
            if counts["changed"]
            else ""
        )
        + ".",
        highlight=False,
    )


def _print_results(plan: GridPlan, folder: Path) -> None:
    from hebbkit.errors import ReportError
    from hebbkit.reports.collect import collect
    from hebbkit.reports.report import PROTOCOL_MARK, results_frame

    try:
        collection = collect([folder])
    except ReportError:
        out.print("No run of the grid has finished yet.")
        return
    grid = next((g for g in collection.grids if collection.grids[g].root == folder), plan.name)
    metric = plan.spec.study.metric.replace("_", " ")
    table = Table(title=f"{plan.name}: {metric} (%)")
    for column in ("run", "seeds", "ours (mean ± std)", "best seed", "study", "ours − study"):
        table.add_column(column, justify="left" if column == "run" else "right")
    marked = []
    for row in results_frame(collection, grid).iter_rows(named=True):
        mean = "–" if row["mean"] is None else f"{row['mean']:.2f}"
        if row["std"] is not None:
            mean += f" ± {row['std']:.2f}"
        if row["protocol"]:
            mean += f" {PROTOCOL_MARK}"
            marked.append(f"{row['label']}: {row['protocol']}")
        table.add_row(
            row["label"],
            str(row["seeds"]) if row["seeds"] else "not run",
            mean,
            f"{row['best']:.2f}" if row["seeds"] > 1 else "–",
            "–" if row["study"] is None else f"{row['study']:g}",
            "–" if row["difference"] is None else f"{row['difference']:+.2f}",
        )
    out.print(table)
    if marked:
        out.print(
            f"{PROTOCOL_MARK} Not the study's protocol, so no difference is shown: "
            + "; ".join(marked)
            + ".",
            highlight=False,
        )
    out.print(f"Report: hebbkit report {folder} --out DIR", highlight=False)


@user_errors
def report(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="grid output folders and/or run folders (searched recursively)", show_default=False
        ),
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", help="folder for report.md, its PNG plots and CSV tables")
    ] = Path("report"),
    title: Annotated[str | None, typer.Option("--title", help="the report's heading")] = None,
) -> None:
    """Markdown report with tables (ours beside the study's), plots, hardware and versions."""
    from hebbkit.reports.report import write_report

    command = shlex.join(["hebbkit", "report", *map(str, paths), "--out", str(out_dir)])
    report = write_report(paths, out_dir, command=command, title=title)
    out.print(f"Report: {report}", highlight=False)
