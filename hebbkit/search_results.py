"""What a search leaves behind: the trials table, ``best.toml``, seed statistics, plots.

Ray-free: :mod:`hebbkit.tune` turns Ray's results into :class:`TrialRecord` objects, and
``hebbkit tune-report`` rebuilds the console table and plots from the files alone.
"""

from __future__ import annotations

import math
import shlex
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table

from hebbkit.errors import HebbkitError
from hebbkit.search import SearchPlan, active, display, shell_overrides, short_names, toml_inline

STATUS_ORDER = {"ok": 0, "stopped": 1, "unfinished": 2, "failed": 3}
EPOCH_METRICS = ("test_accuracy", "validation_accuracy", "train_loss", "train_running_accuracy")


@dataclass
class TrialRecord:
    """One trial of a search, whatever became of it."""

    trial_id: str
    #: ok (ran to the end), stopped (by the scheduler), failed (raised), unfinished
    status: str
    #: every searched path's sampled value (conditions not applied)
    values: dict[str, Any]
    #: read-out metrics per epoch, one dict per epoch in order
    epochs: list[dict[str, float]] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    error: str | None = None
    run_folder: str | None = None


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
    frame.write_parquet(out / "trials.parquet")
    frame.write_csv(out / "trials.csv")


def read_trials(out: Path) -> pl.DataFrame:
    path = out / "trials.parquet"
    if not path.exists():
        raise HebbkitError(
            f"{out} holds no trials.parquet: it is not a finished (or interrupted) search "
            "folder of hebbkit tune. Pass the --out folder of a search."
        )
    return pl.read_parquet(path)


def best_recipe_toml(plan: SearchPlan, record: TrialRecord, out: Path, registry: Any) -> str:
    """The best trial as a plain recipe (no ``[search]``) that ``hebbkit run`` reproduces."""
    from hebbkit.recipe import recipe_toml
    from hebbkit.search import trial_recipe

    recipe = trial_recipe(plan.base, plan.search, record.values, registry, source="best trial")
    metric = plan.search.metric
    series = [e[metric] for e in record.epochs if _finite(e.get(metric))]
    score = f"{metric} {series[-1]:.4f}" if series else metric
    given = "".join(f"-s {shlex.quote(o)} " for o in plan.overrides)
    header = (
        f"# Best trial {record.trial_id} of the search in {out} ({score}).\n"
        f"# = {plan.source} {given}{shell_overrides(plan.search, record.values)}\n"
        "# Reproduce it: hebbkit run best.toml (same seed, same data -> same accuracy)\n"
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
    stats.write_parquet(out / "seeds.parquet")
    stats.write_csv(out / "seeds.csv")


# --- console ---------------------------------------------------------------------------


def _fmt(value: Any, column: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if column.endswith("accuracy") and 0 <= value <= 1:
            return f"{100 * value:.2f}%"
        return f"{value:.4g}"
    return str(value)


def print_trials(
    console: Console, frame: pl.DataFrame, plan: SearchPlan, top: int = 10, title: str = ""
) -> None:
    """The top trials, then a count by status and the failures' errors."""
    metric = plan.search.metric
    table = Table(title=title or f"{plan.name}: top trials by {metric} ({plan.search.mode})")
    columns = ["trial_id", "status", f"last_{metric}", f"best_{metric}", "epochs"]
    if metric != "test_accuracy":
        columns.append("test_accuracy")
    names = short_names(list(plan.search.space))
    for column in columns:
        table.add_column(column.replace("_", " "), overflow="fold")
    for path in plan.search.space:
        table.add_column(names[path], overflow="fold")
    for row in frame.head(top).iter_rows(named=True):
        cells = [_fmt(row[c], c) for c in columns]
        cells += [_param(row[p], plan.search.space[p].encoded) for p in plan.search.space]
        table.add_row(*cells)
    console.print(table)
    legend = ", ".join(f"{names[p]} = {p}" for p in plan.search.space if names[p] != p)
    if legend:
        console.print(f"Columns: {legend}.", highlight=False)
    counts = frame.group_by("status").len().sort("status")
    parts = [f"{n} {s}" for s, n in counts.iter_rows()]
    console.print(f"{frame.height} trials: {', '.join(parts)}.", highlight=False)
    for row in frame.filter(pl.col("status") == "failed").head(5).iter_rows(named=True):
        error = (row["error"] or "").strip().splitlines()
        console.print(f"  failed {row['trial_id']}: {error[0] if error else '?'}", highlight=False)


def _param(value: Any, encoded: bool) -> str:
    if encoded and isinstance(value, str):
        from hebbkit.recipe import parse_value

        value = parse_value(value)
    return display(value)


def print_seed_statistics(console: Console, stats: pl.DataFrame, plan: SearchPlan) -> None:
    metric = plan.search.metric
    names = [metric] + [n for n in ("test_accuracy", "validation_accuracy") if n != metric]
    names = [n for n in names if f"{n}_mean" in stats.columns]
    others = [p for p in plan.search.space if p != "seed"]
    table = Table(title="mean ± std over seeds (sample std, ddof=1)")
    for column in [*others, "seeds", *names]:
        table.add_column(column.replace("_", " ") if "." not in column else column)
    for row in stats.iter_rows(named=True):
        cells = [_fmt(row[c]) for c in others] + [f"{row['seeds']} ({row['seed_values']})"]
        cells += [_mean_std(row[f"{n}_mean"], row[f"{n}_std"], n) for n in names]
        table.add_row(*cells)
    console.print(table)


def _mean_std(mean: float | None, std: float | None, name: str) -> str:
    if mean is None:
        return "-"
    scale, unit = (100, "%") if name.endswith("accuracy") else (1, "")
    spread = f" ± {scale * std:.2f}" if std is not None and math.isfinite(std) else ""
    return f"{scale * mean:.2f}{spread}{unit}"


# --- plots -----------------------------------------------------------------------------


def _tick_label(value: Any, encoded: bool) -> str:
    """A searched value as a short tick label: a table reads ``max kernel=4 …``, wrapped."""
    return textwrap.fill(_param(value, encoded), 18)


def plot_report(out: Path, frame: pl.DataFrame, plan: SearchPlan) -> Path:
    """``report.png``: the metric of every trial against each searched path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator

    metric = plan.search.metric
    column = f"last_{metric}"
    paths = list(plan.search.space)
    columns = min(3, len(paths))
    rows = math.ceil(len(paths) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
    shown = frame.filter(pl.col(column).is_not_null())
    styles = {"ok": ("o", "C0"), "stopped": ("x", "C1"), "unfinished": ("+", "C2")}
    for axis, path in zip(axes.flat, paths, strict=False):
        dim = plan.search.space[path]
        numeric = frame.schema[path].is_numeric() and not dim.encoded
        labels: list[str] = []
        if not numeric:
            labels = sorted({_tick_label(v, dim.encoded) for v in shown[path].to_list()})
        for status, (marker, colour) in styles.items():
            part = shown.filter(pl.col("status") == status)
            if part.is_empty():
                continue
            xs = part[path].to_list()
            if numeric:
                x = [math.nan if v is None else float(v) for v in xs]
            else:
                x = [labels.index(_tick_label(v, dim.encoded)) for v in xs]
            axis.scatter(x, part[column].to_list(), marker=marker, color=colour, label=status)
        if not numeric:
            axis.set_xticks(range(len(labels)))
            axis.set_xticklabels(labels, rotation=30, ha="right", fontsize=7)
        elif dim.kind == "loguniform":
            axis.set_xscale("log")
            # 1-2-5 ticks with plain labels: matplotlib's own labels its minor ticks too when a
            # range spans less than a decade, and they overlap
            axis.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axis.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            axis.xaxis.set_minor_locator(NullLocator())
        elif frame.schema[path] == pl.Int64:
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel(path, fontsize=8)
        axis.set_ylabel(metric, fontsize=8)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(paths) :]:
        axis.axis("off")
    handles, names = axes.flat[0].get_legend_handles_labels()
    if handles:
        figure.legend(handles, names, loc="upper right", fontsize=8)
    failed = frame.filter(pl.col("status") == "failed").height
    note = f", {failed} failed (not shown)" if failed else ""
    figure.suptitle(f"{plan.name}: {metric} per trial ({frame.height} trials{note})", fontsize=10)
    figure.tight_layout()
    path = out / "report.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
