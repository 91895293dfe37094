"""``hebbkit tune`` from flags to a finished search folder: plan, check, connect, run, tabulate.

What a search prints on its way is passed in as ``echo``; the tables and pictures of its
results are the report layer's (:mod:`hebbkit.reports.search_report`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from hebbkit.registry import Registry
from hebbkit.runs import ray as adapter
from hebbkit.runs.folder import HEBBIAN_CACHE_DIR, SEARCH_FILE, FolderClaim, writing
from hebbkit.runs.options import RayOptions
from hebbkit.runs.reuse import HebbianCache
from hebbkit.runs.search import (
    SearchPlan,
    invalid_samples_error,
    prepare_data,
    resumed_plan,
    search_folder,
)
from hebbkit.runs.search import dry_run as sample_trials
from hebbkit.runs.tracking import build_trackers
from hebbkit.runs.trials import finish_tables


@dataclass
class SearchResult:
    """A search that ran (or was resumed): where, what it searched, and its trials table."""

    folder: Path
    plan: SearchPlan
    frame: pl.DataFrame
    #: fewer trials ended than the search has (Ctrl-C, or the driver was stopped)
    interrupted: bool


def run_search(
    plan: SearchPlan,
    options: RayOptions,
    registry: Registry,
    *,
    out: Path | None = None,
    num_samples: int | None = None,
    echo: Callable[[str], None] = lambda text: None,
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
        return _run_claimed(plan, folder, options, registry, num_samples, echo)


def _run_claimed(
    plan: SearchPlan,
    folder: Path,
    options: RayOptions,
    registry: Registry,
    num_samples: int | None,
    echo: Callable[[str], None],
) -> SearchResult:
    if options.resume:
        plan = resumed_plan(plan, folder, registry, num_samples)
    if options.address == "local":
        prepare_data(plan, registry, options.data_root, options.offline)
    search = plan.search
    where = "this machine" if options.address == "local" else f"the cluster at {options.address}"
    with adapter.connect(options) as resources:
        if options.verbose:
            echo(f"Ray resources: {resources}")
        if not options.resume:
            with writing(folder / SEARCH_FILE):
                folder.mkdir(parents=True, exist_ok=True)
                (folder / SEARCH_FILE).write_text(plan.search_toml())
        echo(
            f"{'Resuming' if options.resume else 'Starting'} {search.trial_count()} trials of "
            f"{plan.name} ({search.algorithm}, {search.scheduler.name}) on {where}; "
            f"folder {folder}"
        )
        outcome = adapter.run_search(plan, folder, options)
    if not outcome.interrupted:  # a resumed search would still use it
        HebbianCache(folder / HEBBIAN_CACHE_DIR).remove()
    frame = finish_tables(folder, plan, outcome.records, registry)
    return SearchResult(folder, plan, frame, outcome.interrupted)
