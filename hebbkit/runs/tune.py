"""``hebbkit tune`` from flags to a finished search folder: plan, check, connect, run, tabulate.

What a search prints on its way is passed in as ``echo``; the tables and pictures of its
results are the report layer's (:mod:`hebbkit.reports.search_report`).

On a cluster the part that talks to Ray runs in a child process
(:mod:`hebbkit.runs.supervise`): if the cluster's head dies, Ray ends that process at once,
and this one says how to continue.
"""

from __future__ import annotations

import json
import shlex
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from hebbkit.config.recipe import recipe_dict, validate_recipe
from hebbkit.errors import ClusterLostError, RunFolderError, SearchFailedError
from hebbkit.plugins import get_registry
from hebbkit.registry import Registry
from hebbkit.runs import ray as adapter
from hebbkit.runs.cluster import check_reachable, first_line, lost_cluster_message, reachable_now
from hebbkit.runs.folder import (
    BEST_FILE,
    RAY_DIR,
    SEARCH_FILE,
    STORAGE_FILE,
    TRIALS_CSV,
    FolderClaim,
    write_json,
    writing,
)
from hebbkit.runs.options import RayOptions
from hebbkit.runs.search import (
    Sample,
    SearchPlan,
    invalid_samples_error,
    prepare_data,
    resumed_plan,
    search_folder,
    searches_data,
)
from hebbkit.runs.search import dry_run as sample_trials
from hebbkit.runs.supervise import ChildLost, run_in_child, tell_parent
from hebbkit.runs.tracking import build_trackers
from hebbkit.runs.trials import TrialRecord, finish_tables

Echo = Callable[[str], None]


@dataclass
class SearchResult:
    """A search that ran (or was resumed): where, what it searched, and its trials table."""

    folder: Path
    plan: SearchPlan
    frame: pl.DataFrame
    #: fewer trials ended than the search has (Ctrl-C, or the driver was stopped)
    interrupted: bool
    records: list[TrialRecord]
    #: the command line that continues it
    resume: str = ""


def run_search(
    plan: SearchPlan,
    options: RayOptions,
    registry: Registry,
    *,
    out: Path | None = None,
    num_samples: int | None = None,
    echo: Echo = lambda text: None,
    memory_limit: tuple[int, str] | None = None,
) -> SearchResult:
    """Run (or with ``options.resume``, continue) the search of ``plan``.

    Every trial's recipe is validated, its shapes and memory (against ``memory_limit``)
    checked and its network initialised before Ray starts; the folder is claimed for the
    whole search (a second search on it is refused) and created only once Ray is up, so a
    failed start leaves nothing to resume.
    """
    samples = sample_trials(plan, registry, memory_limit=memory_limit)
    if any(s.error for s in samples):
        raise invalid_samples_error(plan, samples)
    adapter.require_tune("hebbkit tune (hebbkit tune --dry-run works without it)")
    build_trackers(options.track, registry)  # a bad --track stops here, not in every trial
    folder = search_folder(plan, out, options.resume)
    with FolderClaim(folder, "Search folder"):
        # checked again under the claim: no other search can change the folder now
        folder = search_folder(plan, folder, options.resume)
        return _run_claimed(plan, samples, folder, options, registry, num_samples, echo)


def _run_claimed(
    plan: SearchPlan,
    samples: list[Sample],
    folder: Path,
    options: RayOptions,
    registry: Registry,
    num_samples: int | None,
    echo: Echo,
) -> SearchResult:
    if options.resume:
        plan = resumed_plan(plan, folder, registry, num_samples)
        samples = sample_trials(plan, registry)  # the same draws, and any --num-samples more
    experiment = search_experiment(folder, plan, options)
    if options.address == "local" and not options.ship_data:
        prepare_data(plan, registry, options.data_root, options.offline)
    job = _SearchJob(
        plan=plan,
        # hebbkit draws random and grid trials itself: exactly what --dry-run shows
        drawn=None if plan.search.algorithm == "optuna" else [s.values for s in samples],
        recipes=[recipe_dict(s.recipe) for s in samples if s.recipe is not None],
        folder=folder,
        experiment=experiment,
        options=options,
    )
    if options.remote and not adapter.ray_running():
        check_reachable(options.address, options.address)  # before starting a process
        try:
            outcome = run_in_child(_drive_search, job, echo)
        except ChildLost as lost:
            raise _lost(job, lost) from None
    else:
        outcome = _drive_search(job, echo)
    frame = finish_tables(folder, plan, outcome.records, registry)
    resume = resume_command(plan, folder, options)
    return SearchResult(folder, plan, frame, outcome.interrupted, outcome.records, resume)


@dataclass
class _SearchJob:
    """Everything the process that drives Ray needs (sent to it whole)."""

    plan: SearchPlan
    drawn: list[dict[str, Any]] | None
    #: the trials' recipes as plain data (recipe models are built at run time: no pickling)
    recipes: list[dict[str, Any]]
    folder: Path
    experiment: adapter.Experiment
    options: RayOptions


def _drive_search(job: _SearchJob, echo: Echo) -> adapter.SearchOutcome:
    """Connect, check the cluster, ship or check the data, run; the Ray part of a search."""
    plan, options, folder = job.plan, job.options, job.folder
    search = plan.search
    with adapter.connect(options) as session:
        tell_parent("gcs", session.gcs_address)
        for warning in session.warnings:
            echo(f"Warning: {warning}")
        registry = get_registry()
        recipes = [validate_recipe(r, registry, source=plan.source) for r in job.recipes]
        data = adapter.trial_data(session, recipes, options, echo, searches_data(plan))
        if not options.resume:
            with writing(folder / SEARCH_FILE):
                folder.mkdir(parents=True, exist_ok=True)
                (folder / SEARCH_FILE).write_text(plan.search_toml())
            write_json(
                folder / STORAGE_FILE,
                {"storage": job.experiment.storage, "experiment": job.experiment.name},
            )
        where = (
            "this machine" if options.address == "local" else f"the cluster at {options.address}"
        )
        nodes = f" ({len(session.nodes)} nodes)" if options.remote else ""
        echo(
            f"{'Resuming' if options.resume else 'Starting'} {search.trial_count()} trials of "
            f"{plan.name} ({search.algorithm}, {search.scheduler.name}, seed {search.seed}) on "
            f"{where}{nodes}; folder {folder}"
            + (
                ""
                if job.experiment.storage == str(folder)
                else f"; Ray storage {job.experiment.uri}"
            )
        )
        return adapter.run_search(plan, job.drawn, folder, job.experiment, session, options, data)


def search_experiment(folder: Path, plan: SearchPlan, options: RayOptions) -> adapter.Experiment:
    """Where Tune keeps this search: ``<folder>/ray`` unless ``--storage`` says otherwise;
    a resumed search keeps the storage it started with."""
    stored = folder / STORAGE_FILE
    if options.resume and stored.is_file():
        recorded = json.loads(stored.read_text())
        if options.storage is not None and options.storage != recorded["storage"]:
            raise RunFolderError(
                f"--resume: the search in {folder} keeps its results in {recorded['storage']}, "
                f"not {options.storage}. Drop --storage (hebbkit remembers it) or pass the "
                "same one."
            )
        return adapter.Experiment(recorded["storage"], recorded["experiment"])
    if options.resume or options.storage is None:
        return adapter.Experiment(str(folder), RAY_DIR)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return adapter.Experiment(options.storage, f"{plan.name}-{stamp}")


def resume_command(plan: SearchPlan, folder: Path, options: RayOptions) -> str:
    """The command line that continues this search."""
    command = ["hebbkit", "tune", plan.source]
    for override in plan.overrides:
        command += ["-s", override]
    command += ["--out", str(folder), "--resume"]
    if options.address != "local":
        command += ["--address", options.address]
    return shlex.join(command)


def _lost(job: _SearchJob, lost: ChildLost) -> ClusterLostError:
    options = job.options
    reachable = reachable_now(lost.notes.get("gcs") or options.address)
    kept = (
        f"Trials that finished are kept in {job.folder} and in Ray's storage "
        f"({job.experiment.uri})."
    )
    resume = resume_command(job.plan, job.folder, options)
    return ClusterLostError(
        lost_cluster_message(options.address, lost.exit_code, reachable, resume, kept)
        + " (with the same --data-root and other flags)."
    )


def search_verdict(result: SearchResult) -> SearchFailedError | None:
    """The error a finished search ends with: some trials were lost, or none succeeded."""
    records = result.records
    if result.interrupted or not records:
        return None
    ok = sum(r.status in ("ok", "stopped") for r in records)
    lost = [r for r in records if r.status == "lost"]
    if lost:
        others = (
            "No trial succeeded."
            if ok == 0
            else f"The table and {BEST_FILE} hold the {ok} that succeeded."
        )
        return SearchFailedError(
            f"{len(lost)} of {len(records)} trials were lost to the cluster (their node or "
            f"worker process died as often as --max-retries allows: "
            f"{first_line(lost[0].error or 'no error recorded')}). {others} Run the lost trials "
            f"again, keeping the others, with: {result.resume}"
        )
    if ok == 0:
        causes = Counter(first_line(r.error or "no error recorded") for r in records)
        shown = "; ".join(
            f"{count} × {text}" if count > 1 else text for text, count in causes.most_common(3)
        )
        more = f"; and {len(causes) - 3} other errors" if len(causes) > 3 else ""
        return SearchFailedError(
            f"No trial of the search in {result.folder} succeeded ({len(records)} trials: "
            f"{_counts(records)}): {shown}{more}. Every trial's error is in "
            f"{result.folder / TRIALS_CSV}; fix the recipe or its search space and start again."
        )
    return None


def _counts(records: list[TrialRecord]) -> str:
    counts = Counter(r.status for r in records)
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
