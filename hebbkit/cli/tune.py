"""``hebbkit tune`` and ``hebbkit tune-report``: hyperparameter searches from the command line.

Ray is imported only when a search really starts (``--dry-run`` and ``tune-report`` never
need it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hebbkit.cli.options import (
    DataRootOption,
    MaxMemoryOption,
    MaxRetriesOption,
    OfflineOption,
    PrecisionOption,
    RecipeArg,
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


@user_errors
def tune(
    recipe: RecipeArg,
    overrides: SetOption = None,
    num_samples: Annotated[
        int | None,
        typer.Option(
            "--num-samples",
            "-n",
            help="trials to sample (grid: repetitions of the grid); default search.num_samples",
        ),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="local (start Ray here), auto (join the cluster of `ray start`), "
            "ray://HOST:10001 or HOST:6379; default $RAY_ADDRESS, else local",
        ),
    ] = None,
    cpus_per_trial: Annotated[
        float | None, typer.Option("--cpus-per-trial", help="CPUs per trial (default 1)")
    ] = None,
    gpus_per_trial: Annotated[
        float | None,
        typer.Option("--gpus-per-trial", help="GPUs per trial; 0.25 packs four trials on a GPU"),
    ] = None,
    max_concurrent: Annotated[
        int | None, typer.Option("--max-concurrent", help="trials running at once (default: all)")
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="search folder (default runs/<recipe name>-search/<time>)"),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="continue the search in --out (default: the newest): unfinished and lost "
            "trials run again, finished ones are kept",
        ),
    ] = False,
    storage: StorageOption = None,
    ship_data: ShipDataOption = None,
    max_retries: MaxRetriesOption = 3,
    data_root: DataRootOption = None,
    device: Annotated[
        str | None,
        typer.Option(
            "--device", help="cpu or cuda for every trial (default: cuda if --gpus-per-trial)"
        ),
    ] = None,
    precision: PrecisionOption = None,
    offline: OfflineOption = False,
    track: TrackOption = None,
    ray_temp: Annotated[
        Path | None,
        typer.Option("--ray-temp", help="Ray's temporary folder (local Ray; default /tmp/ray)"),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="sample and validate the trials' recipes; start nothing"),
    ] = False,
    top: Annotated[int, typer.Option("--top", help="trials shown in the table")] = 10,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="show Ray's own progress and logs")
    ] = False,
    max_memory: MaxMemoryOption = None,
) -> None:
    """Search hyperparameters (the recipe's search table); each trial is one hebbkit run."""
    from hebbkit.config.packaged import resolve_recipe
    from hebbkit.reports.search_report import print_samples, show
    from hebbkit.runs.options import ray_options
    from hebbkit.runs.run import data_root as resolve_data_root
    from hebbkit.runs.run import (
        local_memory_limit,
        memory_setting,
        precision_setting,
        track_setting,
    )
    from hebbkit.runs.run import offline as is_offline
    from hebbkit.runs.search import dry_run as sample_trials
    from hebbkit.runs.search import invalid_samples_error, load_plan
    from hebbkit.runs.tune import run_search, search_verdict

    registry = get_registry()
    plan = load_plan(resolve_recipe(recipe), overrides, registry, num_samples=num_samples)
    if dry_run:
        samples = sample_trials(plan, registry)
        print_samples(out, plan, samples)
        if any(s.error for s in samples):
            raise invalid_samples_error(plan, samples)
        return
    options = ray_options(
        address=address,
        cpus=plan.search.cpus_per_trial if cpus_per_trial is None else cpus_per_trial,
        gpus=plan.search.gpus_per_trial if gpus_per_trial is None else gpus_per_trial,
        max_concurrent=max_concurrent or plan.search.max_concurrent,
        device=device,
        data_root=resolve_data_root(data_root),
        offline=is_offline(offline),
        precision=precision_setting(precision),
        ray_temp=ray_temp,
        resume=resume,
        verbose=verbose,
        track=track_setting(track),
        storage=storage,
        ship_data=ship_data,
        max_retries=max_retries,
    )
    limit = memory_setting(max_memory)
    if limit is None and options.address == "local":  # else each trial checks its own machine
        limit = local_memory_limit(options.device)
    result = run_search(
        plan,
        options,
        registry,
        out=out_dir,
        num_samples=num_samples,
        echo=echo,
        memory_limit=(limit.bytes, limit.what) if limit else None,
    )
    show(out, result.folder, result.plan, result.frame, top)
    if result.interrupted:
        err.print(
            f"The search stopped before all {result.plan.search.trial_count()} trials ended. "
            f"Continue it with: {result.resume}",
            highlight=False,
        )
        raise typer.Exit(130)
    verdict = search_verdict(result)
    if verdict is not None:
        raise verdict


@user_errors
def tune_report(
    search_dir: Annotated[
        Path, typer.Argument(help="the --out folder of a search", show_default=False)
    ],
    top: Annotated[int, typer.Option("--top", help="trials shown in the table")] = 10,
) -> None:
    """Table of the best trials, mean ± std over seeds, and report.png (metric vs parameter)."""
    from hebbkit.reports.search_report import show
    from hebbkit.runs.folder import SEARCH_FILE
    from hebbkit.runs.search import load_plan
    from hebbkit.runs.trials import refresh_tables

    folder = search_dir.resolve()
    if not (folder / SEARCH_FILE).exists():
        raise RunFolderError(
            f"{folder} has no {SEARCH_FILE}: it is not the --out folder of a hebbkit tune search."
        )
    plan = load_plan(folder / SEARCH_FILE, [], get_registry())
    show(out, folder, plan, refresh_tables(folder, plan), top)
