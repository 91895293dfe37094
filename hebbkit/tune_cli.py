"""``hebbkit tune`` and ``hebbkit tune-report``: hyperparameter searches from the command line.

Registered on the main app by one import line in :mod:`hebbkit.cli`. Ray is imported only
when a search really starts (``--dry-run`` and ``tune-report`` never need it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from hebbkit.cli import (
    DataRootOption,
    OfflineOption,
    RecipeArg,
    SetOption,
    app,
    err,
    out,
    user_errors,
)
from hebbkit.errors import HebbkitError, RecipeError, RunFolderError

if TYPE_CHECKING:
    from hebbkit.search import SearchPlan
    from hebbkit.search_results import TrialRecord

SEARCH_FILE = "search.toml"
#: [search] keys that say how to run a search, not what it searches: --resume may change them.
RUN_KEYS = ("num_samples", "cpus_per_trial", "gpus_per_trial", "max_concurrent")


@app.command("tune")
@user_errors
def tune_command(
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
            "--resume", help="continue the interrupted search in --out (default: the newest)"
        ),
    ] = False,
    data_root: DataRootOption = None,
    device: Annotated[
        str | None,
        typer.Option(
            "--device", help="cpu or cuda for every trial (default: cuda if --gpus-per-trial)"
        ),
    ] = None,
    offline: OfflineOption = False,
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
) -> None:
    """Search hyperparameters (the recipe's search table); each trial is one hebbkit run."""
    from hebbkit import data
    from hebbkit.plugins import get_registry
    from hebbkit.search import dry_run as sample_trials
    from hebbkit.search import invalid_samples_error, load_plan

    registry = get_registry()
    plan = load_plan(recipe, overrides, registry, num_samples=num_samples)
    samples = sample_trials(plan, registry)
    if dry_run:
        _print_samples(plan, samples)
        if any(s.error for s in samples):
            raise invalid_samples_error(plan, samples)
        return
    if any(s.error for s in samples):
        raise invalid_samples_error(plan, samples)

    try:
        from hebbkit import tune
    except ImportError as error:
        raise HebbkitError(
            f"hebbkit tune needs Ray Tune, which is not installed ({error}). Install it with: "
            "pip install 'hebbkit[tune]' (hebbkit tune --dry-run works without it)."
        ) from None
    folder = _search_folder(plan, out_dir, resume)
    if resume:
        plan = _resumed_plan(plan, folder, registry, num_samples)
    search = plan.search
    options = _options(
        plan,
        address=address,
        cpus=cpus_per_trial,
        gpus=gpus_per_trial,
        max_concurrent=max_concurrent,
        data_root=data.data_root(data_root),
        device=device,
        offline=data.offline(offline),
        ray_temp=ray_temp,
        resume=resume,
        verbose=verbose,
    )
    if options.address == "local":
        _prepare_data(plan, registry, options.data_root, options.offline)
    where = "this machine" if options.address == "local" else f"the cluster at {options.address}"
    with tune.connect(options) as resources:
        if options.verbose:
            err.print(f"Ray resources: {resources}", highlight=False)
        if not resume:  # only once Ray is up: a failed start leaves no folder to --resume
            folder.mkdir(parents=True, exist_ok=True)
            (folder / SEARCH_FILE).write_text(plan.search_toml())
        err.print(
            f"{'Resuming' if resume else 'Starting'} {search.trial_count()} trials of "
            f"{plan.name} ({search.algorithm}, {search.scheduler.name}) on {where}; "
            f"folder {folder}",
            highlight=False,
        )
        outcome = tune.run_search(plan, folder, options)
    finish(folder, plan, outcome.records, registry, top)
    if outcome.interrupted:
        err.print(
            f"The search stopped before all {search.trial_count()} trials ended. Continue it "
            f"with: hebbkit tune {recipe} --out {folder} --resume",
            highlight=False,
        )
        raise typer.Exit(130)


@app.command("tune-report")
@user_errors
def tune_report(
    search_dir: Annotated[
        Path, typer.Argument(help="the --out folder of a search", show_default=False)
    ],
    top: Annotated[int, typer.Option("--top", help="trials shown in the table")] = 10,
) -> None:
    """Table of the best trials, mean ± std over seeds, and report.png (metric vs parameter)."""
    from hebbkit.plugins import get_registry
    from hebbkit.search import load_plan
    from hebbkit.search_results import read_trials

    folder = search_dir.resolve()
    if not (folder / SEARCH_FILE).exists():
        raise RunFolderError(
            f"{folder} has no {SEARCH_FILE}: it is not the --out folder of a hebbkit tune search."
        )
    plan = load_plan(folder / SEARCH_FILE, [], get_registry())
    show(folder, plan, read_trials(folder), top)


# --- helpers -------------------------------------------------------------------------------


def finish(
    folder: Path, plan: SearchPlan, records: list[TrialRecord], registry: Any, top: int
) -> None:
    """Write trials.parquet/csv, best.toml, seeds.* and report.png; print the tables."""
    from hebbkit.search_results import best_recipe_toml, results_frame, write_tables

    frame = results_frame(records, plan)
    write_tables(folder, frame)
    ok = frame.filter(frame["status"] == "ok")
    best = folder / "best.toml"
    if ok.height:
        record = next(r for r in records if r.trial_id == ok["trial_id"][0])
        best.write_text(best_recipe_toml(plan, record, folder, registry))
    show(folder, plan, frame, top)
    if ok.height:
        out.print(f"Best recipe: {best}  (reproduce: hebbkit run {best})", highlight=False)
    else:
        out.print("No trial finished, so there is no best.toml.", highlight=False)


def show(folder: Path, plan: SearchPlan, frame: Any, top: int) -> None:
    from hebbkit.search_results import (
        plot_report,
        print_seed_statistics,
        print_trials,
        seed_statistics,
        write_seed_statistics,
    )

    print_trials(out, frame, plan, top=top)
    stats = seed_statistics(frame, plan)
    if stats is not None:
        write_seed_statistics(folder, stats)
        print_seed_statistics(out, stats, plan)
    if frame.height:
        picture = plot_report(folder, frame, plan)
        out.print(
            f"Trials: {folder / 'trials.parquet'} (and .csv); plot: {picture}", highlight=False
        )


def _print_samples(plan: SearchPlan, samples: list[Any]) -> None:
    from hebbkit.search import active, display, short_names

    search = plan.search
    note = (
        "; optuna picks its own points, these are random draws"
        if search.algorithm == "optuna"
        else ""
    )
    table = Table(title=f"{plan.name}: {len(samples)} trials ({search.algorithm}{note})")
    table.add_column("#", justify="right")
    names = short_names(list(search.space))
    for path in search.space:
        table.add_column(names[path], overflow="fold")
    table.add_column("recipe", overflow="fold")
    for sample in samples[:200]:
        chosen = active(search, sample.values)
        cells = [display(chosen.get(p)) for p in search.space]
        verdict = "valid" if sample.error is None else _first_problem(sample.error)
        table.add_row(
            str(sample.index), *cells, verdict, style=None if sample.error is None else "red"
        )
    out.print(table)
    legend = ", ".join(f"{names[p]} = {p}" for p in search.space if names[p] != p)
    if legend:
        out.print(f"Columns: {legend}.", highlight=False)
    if len(samples) > 200:
        out.print(f"... {len(samples) - 200} more not shown.")
    good = sum(s.error is None for s in samples)
    out.print(f"{good} of {len(samples)} trial recipes are valid.", highlight=False)


def _first_problem(message: str) -> str:
    lines = message.splitlines()
    return (lines[1] if len(lines) > 1 else lines[0]).strip()


def _search_folder(plan: SearchPlan, out_dir: Path | None, resume: bool) -> Path:
    from hebbkit.results import default_run_folder

    runs = Path(os.environ.get("HEBBKIT_RUNS", "runs"))
    if out_dir is not None:
        folder = out_dir.expanduser().resolve()
    elif resume:
        parent = (runs / f"{plan.name}-search").resolve()
        found = sorted(p.parent for p in parent.glob(f"*/{SEARCH_FILE}")) if parent.exists() else []
        if not found:
            raise RunFolderError(
                f"--resume: no search of {plan.name} found under {parent}. Pass the folder "
                "of the search to continue with --out DIR."
            )
        folder = found[-1]
    else:
        folder = default_run_folder(runs, f"{plan.name}-search").resolve()
    if resume:
        if not (folder / SEARCH_FILE).exists():
            raise RunFolderError(
                f"--resume: {folder} holds no {SEARCH_FILE}, so it is not a search folder of "
                "hebbkit tune. Pass the --out folder of the search to continue."
            )
    elif folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise RunFolderError(
            f"Search folder {folder} already exists and is not empty. Continue that search "
            "with --resume, or choose another --out."
        )
    return folder


def _resumed_plan(
    plan: SearchPlan, folder: Path, registry: Any, num_samples: int | None
) -> SearchPlan:
    """The plan stored in the search folder, if the recipe given now asks for the same."""
    from hebbkit.recipe import flatten_recipe, validate_recipe
    from hebbkit.search import load_plan

    stored = load_plan(folder / SEARCH_FILE, [], registry)

    def key(p: SearchPlan) -> dict[str, Any]:
        resolved = validate_recipe(p.base, registry, source=p.source).model_dump(
            mode="json", exclude={"search"}
        )
        search = p.search.model_dump(mode="json", exclude=set(RUN_KEYS))
        return {**resolved, "search": search}

    now, then = flatten_recipe(key(plan)), flatten_recipe(key(stored))
    changed = sorted(k for k in now.keys() | then.keys() if now.get(k) != then.get(k))
    if changed:
        raise RecipeError(
            f"--resume: the recipe differs from the one the search in {folder} started with "
            f"({', '.join(changed[:8])}{', ...' if len(changed) > 8 else ''}). Resume with the "
            f"same recipe and overrides (the search's copy is {folder / SEARCH_FILE}), or start "
            "a new search with another --out."
        )
    if num_samples is not None and num_samples != stored.search.num_samples:
        raise RecipeError(
            f"--resume: --num-samples {num_samples} differs from the {stored.search.num_samples} "
            "the search started with; Ray Tune cannot change it midway. Drop --num-samples."
        )
    return stored


def _options(plan: SearchPlan, **given: Any) -> Any:
    import torch

    from hebbkit.tune import TuneOptions

    search = plan.search
    address = (given["address"] or os.environ.get("RAY_ADDRESS") or "local").strip()
    if not (
        address in ("local", "auto")
        or address.startswith("ray://")
        or (":" in address and address.rsplit(":", 1)[1].isdigit())
    ):
        raise HebbkitError(f"--address {address!r}: use local, auto, ray://HOST:PORT or HOST:PORT.")
    cpus = search.cpus_per_trial if given["cpus"] is None else given["cpus"]
    gpus = search.gpus_per_trial if given["gpus"] is None else given["gpus"]
    if cpus <= 0:
        raise HebbkitError(f"--cpus-per-trial {cpus:g}: give a positive number (e.g. 1 or 0.5).")
    if gpus < 0:
        raise HebbkitError(f"--gpus-per-trial {gpus:g}: give 0 or more (0.25: four per GPU).")
    concurrent = given["max_concurrent"] or search.max_concurrent
    if concurrent is not None and concurrent < 1:
        raise HebbkitError(f"--max-concurrent {concurrent}: give 1 or more.")
    requested = (given["device"] or os.environ.get("HEBBKIT_DEVICE") or "").strip() or None
    if requested is not None and requested not in ("cpu", "cuda"):
        raise HebbkitError(
            f"--device {requested!r}: a search takes cpu or cuda (Ray assigns each trial its "
            "GPU, which the trial sees as cuda)."
        )
    if gpus > 0:
        device = requested or "cuda"
    elif requested == "cuda":
        raise HebbkitError(
            "--device cuda needs --gpus-per-trial > 0: Ray hides the GPUs from trials that did "
            "not ask for one (try --gpus-per-trial 1, or 0.25 to share a GPU by four)."
        )
    else:
        device = "cpu"
    if device == "cuda" and address == "local" and not torch.cuda.is_available():
        raise HebbkitError(
            f"--gpus-per-trial {gpus:g} asks for GPUs, but torch {torch.__version__} sees none "
            "on this machine. Use --gpus-per-trial 0, or --address to join a cluster with GPUs."
        )
    ray_temp = given["ray_temp"]
    return TuneOptions(
        address=address,
        cpus_per_trial=cpus,
        gpus_per_trial=gpus,
        max_concurrent=concurrent,
        ray_temp=ray_temp.expanduser().resolve() if ray_temp is not None else None,
        data_root=given["data_root"],
        device=device,
        offline=given["offline"],
        resume=given["resume"],
        verbose=given["verbose"],
    )


def _prepare_data(plan: SearchPlan, registry: Any, root: Path, offline: bool) -> None:
    """Load (and if allowed, download) the dataset once here, before trials race to do it."""
    from hebbkit import data
    from hebbkit.recipe import validate_recipe

    recipe = validate_recipe(plan.base, registry, source=plan.source)
    if "data.validation" in plan.search.space or "data.train_subset" in plan.search.space:
        return  # the split depends on the trial; the trials check it
    data.load_splits(recipe.data, registry, root, download=not offline)
