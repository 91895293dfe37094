"""``hebbkit grid`` and ``hebbkit report``: a study's tables and figures, one command each.

Registered on the main app by one import line in :mod:`hebbkit.cli`.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from hebbkit.cli import (
    DataRootOption,
    DeviceOption,
    OfflineOption,
    QuietOption,
    SetOption,
    app,
    err,
    out,
    user_errors,
)
from hebbkit.errors import HebbkitError, RunFolderError

if TYPE_CHECKING:
    from hebbkit.grid import GridPlan, GridRun, Outcome


@app.command("grid")
@user_errors
def grid_command(
    grid_file: Annotated[
        Path,
        typer.Argument(help="grid TOML file (e.g. recipes/study/table2.toml)", show_default=False),
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
    data_root: DataRootOption = None,
    device: DeviceOption = None,
    offline: OfflineOption = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="validate every run's recipe and list the runs")
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Run every run of a grid file (resumable: finished runs are kept) and tabulate them."""
    from hebbkit import data
    from hebbkit.grid import load_grid, parse_seeds, pending, write_manifest
    from hebbkit.plugins import get_registry

    registry = get_registry()
    plan = load_grid(
        grid_file,
        registry,
        cli_overrides=overrides or [],
        seeds=parse_seeds(seeds) if seeds is not None else None,
        only=only or None,
    )
    runs_root = Path(os.environ.get("HEBBKIT_RUNS", "runs"))
    folder = (out_dir or runs_root / plan.name).expanduser().resolve()
    if dry_run:
        _print_plan(plan, folder, registry)
        return
    finished, todo = pending(plan, folder, registry)
    command = _command(
        grid_file, out_dir or runs_root / plan.name, seeds, only, overrides, address, device
    )
    write_manifest(folder, plan, command)
    err.print(
        f"Grid {plan.name}: {len(plan.runs)} runs, {len(finished)} finished before, "
        f"{len(todo)} to run {'on ' + address if address else 'here, one after another'}; "
        f"folder {folder}",
        highlight=False,
    )
    outcomes: list[Outcome] = []
    try:
        if todo and address:
            outcomes = _run_ray(
                todo,
                folder,
                address,
                cpus_per_run,
                gpus_per_run,
                max_concurrent,
                data.data_root(data_root),
                device,
                data.offline(offline),
            )
        elif todo:
            outcomes = _run_here(todo, folder, registry, data_root, device, offline, quiet)
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


def _run_here(
    todo: list[GridRun],
    folder: Path,
    registry: Any,
    data_root: Path | None,
    device: str | None,
    offline: bool,
    quiet: bool,
) -> list[Outcome]:
    from hebbkit import data
    from hebbkit.experiment import Machine, resolve_device
    from hebbkit.grid import run_local
    from hebbkit.progress import QuietProgress, RichProgress

    machine = Machine(
        data_root=data.data_root(data_root),
        device=resolve_device(device),
        offline=data.offline(offline),
    )
    return run_local(
        todo,
        folder,
        registry,
        machine,
        progress=(lambda: QuietProgress()) if quiet else (lambda: RichProgress(err)),
        echo=lambda text: err.print(text, highlight=False, markup=False),
    )


def _run_ray(
    todo: list[GridRun],
    folder: Path,
    address: str,
    cpus: float,
    gpus: float,
    max_concurrent: int | None,
    data_root: Path,
    device: str | None,
    offline: bool,
) -> list[Outcome]:
    from hebbkit.grid import run_on_ray

    address = address.strip()
    if not (
        address in ("local", "auto")
        or address.startswith("ray://")
        or (":" in address and address.rsplit(":", 1)[1].isdigit())
    ):
        raise HebbkitError(f"--address {address!r}: use local, auto, ray://HOST:PORT or HOST:PORT.")
    if cpus <= 0 or gpus < 0:
        raise HebbkitError("--cpus-per-run must be positive and --gpus-per-run 0 or more.")
    if max_concurrent is not None and max_concurrent < 1:
        raise HebbkitError(f"--max-concurrent {max_concurrent}: give 1 or more.")
    requested = (device or os.environ.get("HEBBKIT_DEVICE") or "").strip() or None
    if requested not in (None, "cpu", "cuda"):
        raise HebbkitError(
            f"--device {requested!r}: through Ray a run takes cpu or cuda (Ray assigns the GPU)."
        )
    if requested == "cuda" and gpus <= 0:
        raise HebbkitError(
            "--device cuda with --address needs --gpus-per-run > 0: Ray hides the GPUs from "
            "runs that did not ask for one (e.g. --gpus-per-run 1, or 0.5 for two per GPU)."
        )
    try:
        from hebbkit.tune import TuneOptions
    except ImportError as error:
        raise HebbkitError(
            f"--address needs Ray Tune, which is not installed ({error}). Install it with: "
            "pip install 'hebbkit[tune]', or leave out --address to run here one after another."
        ) from None
    options = TuneOptions(
        address=address,
        cpus_per_trial=cpus,
        gpus_per_trial=gpus,
        max_concurrent=max_concurrent,
        data_root=data_root,
        device="cuda" if gpus > 0 else "cpu",
        offline=offline,
    )
    return run_on_ray(
        todo, folder, options, echo=lambda text: err.print(text, highlight=False, markup=False)
    )


def _command(
    grid_file: Path,
    out_dir: Path,
    seeds: str | None,
    only: list[str] | None,
    overrides: list[str] | None,
    address: str | None,
    device: str | None,
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
    return command


def _print_plan(plan: GridPlan, folder: Path, registry: Any) -> None:
    from hebbkit.grid import check_finished, is_finished

    table = Table(title=f"{plan.name}: {len(plan.runs)} runs (output {folder})")
    for column in ("label", "seed", "state", "overrides (besides the grid's set)"):
        table.add_column(column, overflow="fold")
    shared = len(plan.spec.overrides)
    counts = {"finished": 0, "to run": 0, "changed": 0}
    for run in plan.runs:
        state = "to run"
        if is_finished(folder, run):
            try:
                check_finished(folder, run, registry)
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
    from hebbkit.report import ReportError, collect, results_frame

    try:
        collection = collect([folder])
    except ReportError:
        out.print("No run of the grid has finished yet.")
        return
    grid = next((g for g in collection.grids if collection.grids[g].root == folder), plan.name)
    metric = plan.spec.study.metric.replace("_", " ")
    table = Table(title=f"{plan.name}: {metric} (%)")
    for column in ("run", "seeds", "ours (mean ± std)", "study", "ours − study"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for row in results_frame(collection, grid).iter_rows(named=True):
        mean = "–" if row["mean"] is None else f"{row['mean']:.2f}"
        if row["std"] is not None:
            mean += f" ± {row['std']:.2f}"
        table.add_row(
            row["label"],
            str(row["seeds"]) if row["seeds"] else "not run",
            mean,
            "–" if row["study"] is None else f"{row['study']:g}",
            "–" if row["difference"] is None else f"{row['difference']:+.2f}",
        )
    out.print(table)
    out.print(f"Report: hebbkit report {folder} --out DIR", highlight=False)


@app.command("report")
@user_errors
def report_command(
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
    from hebbkit.report import write_report

    command = shlex.join(["hebbkit", "report", *map(str, paths), "--out", str(out_dir)])
    report = write_report(paths, out_dir, command=command, title=title)
    out.print(f"Report: {report}", highlight=False)
