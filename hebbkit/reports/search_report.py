"""A search read back: the trials table on the console, seed statistics and ``report.png``.

``hebbkit tune`` shows this when a search ends; ``hebbkit tune-report`` from the files alone.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table

from hebbkit.config.overrides import parse_value
from hebbkit.config.search_space import active
from hebbkit.config.toml import display, short_names
from hebbkit.runs.folder import BEST_FILE, SEARCH_PLOT, TRIALS_FILE
from hebbkit.runs.pictures import pyplot, save_figure
from hebbkit.runs.search import Sample, SearchPlan
from hebbkit.runs.trials import seed_statistics, sort_trials

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
    ended_badly = frame.filter(pl.col("status").is_in(["failed", "lost"]))
    for row in ended_badly.head(5).iter_rows(named=True):
        error = (row["error"] or "").strip().splitlines()
        console.print(
            f"  {row['status']} {row['trial_id']}: {error[0] if error else '?'}", highlight=False
        )


def _param(value: Any, encoded: bool) -> str:
    if encoded and isinstance(value, str):
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


def _position(value: Any, labels: list[str], encoded: bool) -> float:
    """Where a searched value sits on its panel's x axis: itself, or its tick's index."""
    if not labels:
        return math.nan if value is None else float(value)
    return labels.index(_tick_label(value, encoded))


def plot_report(out: Path, frame: pl.DataFrame, plan: SearchPlan) -> Path:
    """``report.png``: the metric of every trial against each searched path (accuracies in %),
    the best trial (the one ``best.toml`` holds) marked by a star in every panel."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator

    plt = pyplot()
    metric = plan.search.metric
    column = f"last_{metric}"
    scale, unit = (100.0, " (%)") if metric.endswith("accuracy") else (1.0, "")
    paths = list(plan.search.space)
    columns = min(3, len(paths))
    rows = math.ceil(len(paths) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
    shown = frame.filter(pl.col(column).is_not_null())
    ranked = sort_trials(shown, metric, plan.search.maximize).filter(pl.col("status") == "ok")
    best = ranked.row(0, named=True) if ranked.height else None
    styles = {"ok": ("o", "C0"), "stopped": ("x", "C1"), "unfinished": ("+", "C2")}
    for axis, path in zip(axes.flat, paths, strict=False):
        dim = plan.search.space[path]
        numeric = frame.schema[path].is_numeric() and not dim.encoded
        labels: list[str] = []
        if not numeric:
            labels = sorted({_tick_label(v, dim.encoded) for v in shown[path].to_list()})

        # a conditional path is unset in the trials whose condition did not hold
        active = shown.filter(pl.col(path).is_not_null()) if numeric else shown
        for status, (marker, colour) in styles.items():
            part = active.filter(pl.col("status") == status)
            if part.is_empty():
                continue
            x = [_position(v, labels, dim.encoded) for v in part[path].to_list()]
            y = [scale * v for v in part[column].to_list()]
            axis.scatter(x, y, marker=marker, color=colour, label=status)
        if active.is_empty():
            axis.text(0.5, 0.5, "not set in any trial", ha="center", transform=axis.transAxes)
        elif best is not None and (best[path] is not None or not numeric):
            axis.scatter(
                [_position(best[path], labels, dim.encoded)],
                [scale * best[column]],
                marker="*",
                s=220,
                facecolor="gold",
                edgecolor="black",
                linewidth=0.8,
                zorder=3,
                label=f"best: {best['trial_id']} ({_fmt(best[column], column)})",
            )
        if not numeric:
            axis.set_xticks(range(len(labels)))
            axis.set_xticklabels(labels, rotation=30, ha="right", fontsize=7)
        elif dim.kind == "loguniform" and _all_positive(active[path].to_list()):
            axis.set_xscale("log")
            # 1-2-5 ticks with plain labels: matplotlib's own labels its minor ticks too when a
            # range spans less than a decade, and they overlap
            axis.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axis.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            axis.xaxis.set_minor_locator(NullLocator())
        elif frame.schema[path] == pl.Int64:
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel(path, fontsize=8)
        axis.set_ylabel(metric.replace("_", " ") + unit, fontsize=8)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(paths) :]:
        axis.axis("off")
    handles, names = axes.flat[0].get_legend_handles_labels()
    if handles:
        figure.legend(handles, names, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    failed = frame.filter(pl.col("status") == "failed").height
    note = f", {failed} failed (not shown)" if failed else ""
    figure.suptitle(
        f"{plan.name}: {metric.replace('_', ' ')} per trial ({frame.height} trials{note})",
        fontsize=10,
    )
    figure.tight_layout()
    return save_figure(figure, out / SEARCH_PLOT, dpi=110)


def _all_positive(values: list[Any]) -> bool:
    """Whether a log axis can show these values (matplotlib refuses one without them)."""
    numbers = [v for v in values if v is not None]
    return bool(numbers) and all(math.isfinite(float(v)) and float(v) > 0 for v in numbers)


# --- whole views ----------------------------------------------------------------------------


def show(console: Console, folder: Path, plan: SearchPlan, frame: pl.DataFrame, top: int) -> None:
    """The top trials, mean ± std over seeds (seed searches), and ``report.png``."""
    print_trials(console, frame, plan, top=top)
    stats = seed_statistics(frame, plan)
    if stats is not None:
        print_seed_statistics(console, stats, plan)
    if frame.height:
        picture = plot_report(folder, frame, plan)
        console.print(
            f"Trials: {folder / TRIALS_FILE} (and .csv); plot: {picture}", highlight=False
        )
    best = folder / BEST_FILE
    if best.exists():
        console.print(f"Best recipe: {best}  (reproduce: hebbkit run {best})", highlight=False)
    else:
        console.print(f"No trial finished, so there is no {BEST_FILE}.", highlight=False)


def print_samples(console: Console, plan: SearchPlan, samples: list[Sample]) -> None:
    """``hebbkit tune --dry-run``: every sampled trial and whether its recipe is valid."""
    search = plan.search
    note = (
        "; optuna picks its own points, these are random draws"
        if search.algorithm == "optuna"
        else ""
    )
    seed = f", seed {search.seed}" if search.seed is not None else ""
    table = Table(title=f"{plan.name}: {len(samples)} trials ({search.algorithm}{seed}{note})")
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
    console.print(table)
    legend = ", ".join(f"{names[p]} = {p}" for p in search.space if names[p] != p)
    if legend:
        console.print(f"Columns: {legend}.", highlight=False)
    if len(samples) > 200:
        console.print(f"... {len(samples) - 200} more not shown.")
    good = sum(s.error is None for s in samples)
    console.print(f"{good} of {len(samples)} trial recipes are valid.", highlight=False)


def _first_problem(message: str) -> str:
    lines = message.splitlines()
    return (lines[1] if len(lines) > 1 else lines[0]).strip()
