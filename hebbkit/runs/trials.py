"""What a search leaves behind: the trials table, ``best.toml`` and seed statistics.

Ray-free: :mod:`hebbkit.runs.ray` turns Ray's results into :class:`TrialRecord` objects;
:mod:`hebbkit.reports.search_report` prints and draws them.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from hebbkit.config.recipe import recipe_toml
from hebbkit.config.search_space import active, shell_overrides
from hebbkit.config.toml import toml_inline
from hebbkit.errors import HebbkitError
from hebbkit.registry import Registry
from hebbkit.runs.folder import (
    BEST_FILE,
    SEEDS_CSV,
    SEEDS_FILE,
    TRIALS_CSV,
    TRIALS_FILE,
    RunSummary,
    write_frame,
)
from hebbkit.runs.search import SearchPlan, trial_recipe

STATUS_ORDER = {"ok": 0, "stopped": 1, "unfinished": 2, "lost": 3, "failed": 4}
EPOCH_METRICS = ("test_accuracy", "validation_accuracy", "train_loss", "train_running_accuracy")


@dataclass
class TrialRecord:
    """One trial of a search, whatever became of it."""

    trial_id: str
    #: ok (ran to the end), stopped (by the scheduler), failed (the run raised),
    #: lost (its node or worker died, as often as retries allow), unfinished (interrupted)
    status: str
    #: every searched path's sampled value (conditions not applied)
    values: dict[str, Any]
    #: read-out metrics per epoch, one dict per epoch in order
    epochs: list[dict[str, float]] = field(default_factory=list)
    summary: RunSummary | None = None
    error: str | None = None
    run_folder: str | None = None
    #: times the trial was started again after losing its node or worker process
    retries: int = 0
    #: the Ray node that ran it to the end
    node: str | None = None


def results_frame(records: Sequence[TrialRecord], plan: SearchPlan) -> pl.DataFrame:
    """One row per trial, best first: status, metrics, one column per searched path."""
    search = plan.search
    metric = search.metric
    rows = []
    for record in records:
        series = [e[metric] for e in record.epochs if _finite(e.get(metric))]
        best = (max if search.maximize else min)(series) if series else None
        final = record.summary or (record.epochs[-1] if record.epochs else {})
        rows.append(
            {
                "trial_id": record.trial_id,
                "status": record.status,
                f"last_{metric}": series[-1] if series else None,
                f"best_{metric}": best,
                "epochs": len(record.epochs),
                "test_accuracy": final.get("test_accuracy"),
                "validation_accuracy": final.get("validation_accuracy"),
                "seconds": (record.summary or {}).get("seconds", {}).get("total"),
                "overrides": shell_overrides(search, record.values),
                "error": record.error,
                "run_folder": record.run_folder,
                "retries": record.retries,
                "node": record.node,
            }
        )
    base = pl.from_dicts(rows, schema=_base_schema(metric)) if rows else _empty(metric)
    params = {
        path: _column([active(search, r.values).get(path) if r.values else None for r in records])
        for path in search.space
    }
    frame = base.with_columns(
        [pl.Series(path, values, dtype=dtype) for path, (values, dtype) in params.items()]
    )
    ordered = [*base.columns[:8], *search.space, *base.columns[8:]]
    return sort_trials(frame.select(ordered), metric, search.maximize)


def sort_trials(frame: pl.DataFrame, metric: str, maximize: bool) -> pl.DataFrame:
    rank = pl.col("status").replace_strict(STATUS_ORDER, default=9, return_dtype=pl.Int64)
    return (
        frame.with_columns(_rank=rank)
        .sort(["_rank", f"last_{metric}"], descending=[False, maximize], nulls_last=True)
        .drop("_rank")
    )


def _base_schema(metric: str) -> dict[str, Any]:
    return {
        "trial_id": pl.Utf8,
        "status": pl.Utf8,
        f"last_{metric}": pl.Float64,
        f"best_{metric}": pl.Float64,
        "epochs": pl.Int64,
        "test_accuracy": pl.Float64,
        "validation_accuracy": pl.Float64,
        "seconds": pl.Float64,
        "overrides": pl.Utf8,
        "error": pl.Utf8,
        "run_folder": pl.Utf8,
        "retries": pl.Int64,
        "node": pl.Utf8,
    }


def _empty(metric: str) -> pl.DataFrame:
    return pl.DataFrame(schema=_base_schema(metric))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _column(values: list[Any]) -> tuple[list[Any], Any]:
    """A parameter's values with one polars type (tables and mixed values as TOML text)."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return values, pl.Boolean
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return values, pl.Int64
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return [None if v is None else float(v) for v in values], pl.Float64
    if all(isinstance(v, str) for v in present):
        return values, pl.Utf8
    return [None if v is None else toml_inline(v) for v in values], pl.Utf8


def write_tables(out: Path, frame: pl.DataFrame) -> None:
    write_frame(frame, out / TRIALS_FILE, out / TRIALS_CSV)


def read_trials(out: Path) -> pl.DataFrame:
    path = out / TRIALS_FILE
    if not path.exists():
        raise HebbkitError(
            f"{out} holds no {TRIALS_FILE}: it is not a finished (or interrupted) search "
            "folder of hebbkit tune. Pass the --out folder of a search."
        )
    return pl.read_parquet(path)


def best_recipe_toml(plan: SearchPlan, record: TrialRecord, out: Path, registry: Registry) -> str:
    """The best trial as a plain recipe (no ``[search]``) that ``hebbkit run`` reproduces."""
    recipe = trial_recipe(plan.base, plan.search, record.values, registry, source="best trial")
    metric = plan.search.metric
    series = [e[metric] for e in record.epochs if _finite(e.get(metric))]
    score = f"{metric} {series[-1]:.4f}" if series else metric
    given = "".join(f"-s {shlex.quote(o)} " for o in plan.overrides)
    header = (
        f"# Best trial {record.trial_id} of the search in {out} ({score}).\n"
        f"# = {plan.source} {given}{shell_overrides(plan.search, record.values)}\n"
        f"# Reproduce it: hebbkit run {BEST_FILE} (same seed, same data -> same accuracy)\n"
    )
    return header + recipe_toml(recipe)


# --- seeds: mean ± std ---------------------------------------------------------------------


def seed_statistics(frame: pl.DataFrame, plan: SearchPlan) -> pl.DataFrame | None:
    """Mean ± std over seeds of every other searched setting, when ``seed`` is searched."""
    if "seed" not in plan.search.space:
        return None
    metric = plan.search.metric
    others = [p for p in plan.search.space if p != "seed"]
    values = [f"last_{metric}"] + [
        c for c in ("test_accuracy", "validation_accuracy") if c != metric
    ]
    ok = frame.filter(pl.col("status") == "ok")
    seeds = pl.col("seed").sort().cast(pl.Utf8).str.join(",").alias("seed_values")
    aggregations = [pl.len().alias("seeds"), seeds]
    for column in values:
        name = column.removeprefix("last_")
        aggregations += [pl.col(column).mean().alias(f"{name}_mean")]
        aggregations += [pl.col(column).std(ddof=1).alias(f"{name}_std")]
    if others:
        grouped = ok.group_by(others, maintain_order=True).agg(aggregations)
    else:
        grouped = ok.select(aggregations)
    mean = f"{metric}_mean"
    return grouped.sort(mean, descending=plan.search.maximize, nulls_last=True)


def write_seed_statistics(out: Path, stats: pl.DataFrame) -> None:
    write_frame(stats, out / SEEDS_FILE, out / SEEDS_CSV)


def finish_tables(
    folder: Path, plan: SearchPlan, records: list[TrialRecord], registry: Registry
) -> pl.DataFrame:
    """Write the search's tables and ``best.toml`` (when a trial finished); return the table."""
    frame = results_frame(records, plan)
    write_tables(folder, frame)
    ok = frame.filter(frame["status"] == "ok")
    if ok.height:
        record = next(r for r in records if r.trial_id == ok["trial_id"][0])
        (folder / BEST_FILE).write_text(best_recipe_toml(plan, record, folder, registry))
    stats = seed_statistics(frame, plan)
    if stats is not None:
        write_seed_statistics(folder, stats)
    return frame


def refresh_tables(folder: Path, plan: SearchPlan) -> pl.DataFrame:
    """The trials table of a search folder, with its seed statistics written again."""
    frame = read_trials(folder)
    stats = seed_statistics(frame, plan)
    if stats is not None:
        write_seed_statistics(folder, stats)
    return frame
