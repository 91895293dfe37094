"""The report's pictures (matplotlib, Agg): one set per grid. Accuracies are in % everywhere;
every picture is saved with a tight bounding box (:func:`hebbkit.runs.pictures.save_figure`).

- accuracy per run from 0 to 100 % (grouped by the grid's two axes when it has two, e.g.
  dataset × init), with the seeds as dots and the study's figure as a black tick;
- accuracy against the number of Hebbian neurons, when the runs differ only in width;
- the read-out's learning curves (test accuracy per epoch, mean over seeds);
- first-layer filters of each run, before and after learning, drawn as the run folder's
  ``filters.png`` draws them (one function, one normalisation);
- the Hebbian diagnostics per layer against images seen: distinct filters, mean norm, mean
  adaptive rate, effective number of winners and dead neurons — where ZerO's failure shows.
"""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl

from hebbkit.reports.collect import (
    Collection,
    RunRecord,
    initial_first_layer,
    learned_first_layer,
)
from hebbkit.runs.pictures import FILTER_CONVENTION, draw_filters, pyplot, save_figure

STUDY_STYLE = {"color": "black", "marker": "_", "markersize": 22, "markeredgewidth": 2.5}
DIAGNOSTICS = (
    ("distinct_filters", "distinct filters", True),
    ("mean_norm", "mean neuron norm", True),
    ("mean_lr", "mean adaptive rate", True),
    ("effective_winners", "effective winners", True),
    ("dead_neurons", "dead neurons", False),
)
MAX_FILTERS = 24


def grid_plots(
    collection: Collection, grid: str, results: pl.DataFrame, out: Path, slug: str
) -> list[tuple[str, Path]]:
    """Draw every picture that fits ``grid``; returns (caption, path) pairs."""
    pictures = [accuracy_plot(collection, grid, results, out / f"{slug}-accuracy.png")]
    width = width_plot(collection, grid, results, out / f"{slug}-width.png")
    if width is not None:
        pictures.append(width)
    for plot in (readout_plot, filters_plot, diagnostics_plot):
        picture = plot(collection, grid, out / f"{slug}-{plot.__name__.removesuffix('_plot')}.png")
        if picture is not None:
            pictures.append(picture)
    return pictures


def _seed_values(collection: Collection, grid: str, label: str, metric: str) -> list[float]:
    return [
        v for r in collection.of(grid) if r.label == label and (v := r.metric(metric)) is not None
    ]


def _metric(collection: Collection, grid: str) -> str:
    info = collection.grids.get(grid)
    return info.metric if info else "test_accuracy"


def accuracy_plot(
    collection: Collection, grid: str, results: pl.DataFrame, path: Path
) -> tuple[str, Path]:
    """Bars of mean accuracy (± std) from 0 to 100 %, each labelled with its value, seeds as
    dots, the study's figure as a black tick where the protocol is the study's. Labels not
    run yet are left out (the caption counts them)."""
    plt = pyplot()
    metric = _metric(collection, grid)
    every = list(results.iter_rows(named=True))
    rows = [r for r in every if r["mean"] is not None]
    factor_sets = [r["factors"] for r in rows if r["factors"]]
    names = list(factor_sets[0]) if factor_sets else []
    grouped = (
        len(names) == 2
        and all(list(f) == names for f in factor_sets)
        and len(factor_sets) == len(rows)
    )
    if grouped:
        groups = list(dict.fromkeys(f[names[0]] for f in factor_sets))
        hues = list(dict.fromkeys(f[names[1]] for f in factor_sets))
        width = 0.8 / len(hues)
        positions = {
            r["label"]: groups.index(r["factors"][names[0]])
            + (hues.index(r["factors"][names[1]]) - (len(hues) - 1) / 2) * width
            for r in rows
        }
        ticks, tick_labels = list(range(len(groups))), groups
        colours = {h: f"C{i}" for i, h in enumerate(hues)}
        colour_of = {r["label"]: colours[r["factors"][names[1]]] for r in rows}
    else:
        width = 0.7
        positions = {r["label"]: i for i, r in enumerate(rows)}
        ticks, tick_labels = list(range(len(rows))), [r["label"] for r in rows]
        colour_of = {r["label"]: "C0" for r in rows}
    figure, axis = plt.subplots(figsize=(max(4.5, 0.9 * len(rows) + 2), 3.8))
    study_drawn = False
    for row in rows:
        x = positions[row["label"]]
        axis.bar(x, row["mean"], width * 0.9, color=colour_of[row["label"]], alpha=0.8)
        if row["std"] is not None:
            axis.errorbar(x, row["mean"], yerr=row["std"], color="0.2", capsize=3)
        values = _seed_values(collection, grid, row["label"], metric)
        axis.plot([x] * len(values), values, ".", color="0.15", markersize=4)
        inside = row["mean"] > 20  # the value inside a tall bar, above a short one
        axis.text(
            x,
            row["mean"] - 2 if inside else row["mean"] + 2,
            f"{row['mean']:.1f}",
            rotation=90,
            ha="center",
            va="top" if inside else "bottom",
            fontsize=7,
            color="white" if inside else "0.2",
        )
        if row["study"] is not None and not row["protocol"]:
            axis.plot(
                x,
                row["study"],
                linestyle="none",
                label=None if study_drawn else "study",
                **STUDY_STYLE,
            )
            study_drawn = True
    if grouped:
        for hue, colour in colours.items():
            axis.bar(0, 0, 0, color=colour, label=f"{names[1]} = {hue}")
    axis.set_xticks(
        ticks,
        tick_labels,
        rotation=30 if len(ticks) > 4 else 0,
        ha="right" if len(ticks) > 4 else "center",
    )
    axis.set_ylabel(f"{metric.replace('_', ' ')} (%)")
    axis.set_ylim(0, 100)  # from 0: bar heights compare as they should
    axis.grid(axis="y", alpha=0.3)
    if study_drawn or grouped:
        axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    axis.set_title(f"{grid}: {metric.replace('_', ' ')}", fontsize=10)
    save_figure(figure, path)
    caption = (
        f"{grid}: {metric.replace('_', ' ')} per run (bars: mean ± std over seeds, value on "
        "the bar; dots: seeds"
    )
    caption += "; black tick: the study)" if study_drawn else ")"
    if any(r["study"] is not None and r["protocol"] for r in rows):
        caption += "; no study tick where the protocol is not the study's"
    missing = len(every) - len(rows)
    if missing:
        caption += f"; {missing} planned run{'s' if missing > 1 else ''} not run yet left out"
    return caption, path


def _width_study(runs: list[RunRecord]) -> bool:
    """Whether the runs differ in channels and in nothing else (the seed aside)."""

    def rest(run: RunRecord) -> str:
        recipe = {k: v for k, v in run.recipe.items() if k not in ("seed", "name", "description")}
        layers = [
            {k: v for k, v in layer.items() if k != "channels"}
            for layer in recipe.get("layers", [])
        ]
        return repr({**recipe, "layers": layers})

    patterns = {tuple(r.channels) for r in runs}
    return len(patterns) > 1 and len({rest(r) for r in runs}) == 1


def width_plot(
    collection: Collection, grid: str, results: pl.DataFrame, path: Path
) -> tuple[str, Path] | None:
    """Accuracy against the total number of Hebbian neurons, each point named by its widths."""
    runs = collection.of(grid)
    if not _width_study(runs):
        return None
    from matplotlib.ticker import NullLocator

    plt = pyplot()
    figure, axis = plt.subplots(figsize=(5.5, 3.8))
    points = []
    for row in results.iter_rows(named=True):
        members = [r for r in runs if r.label == row["label"]]
        if not members:
            continue
        neurons = sum(members[0].channels)
        pattern = "-".join(map(str, members[0].channels))
        points.append((neurons, row, pattern))
    points.sort(key=lambda p: p[0])
    xs = [p[0] for p in points]
    means = [p[1]["mean"] for p in points]
    stds = [p[1]["std"] or 0.0 for p in points]
    axis.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label="ours")
    study = [(x, p[1]["study"]) for x, p in zip(xs, points, strict=True) if p[1]["study"]]
    if study:
        axis.plot(*zip(*study, strict=True), linestyle="none", label="study", **STUDY_STYLE)
    for x, (_, row, pattern) in zip(xs, points, strict=True):
        text = row["label"] if row["label"] == pattern else f"{row['label']} ({pattern})"
        axis.annotate(text, (x, row["mean"]), textcoords="offset points", xytext=(4, 6), fontsize=8)
    axis.set_xscale("log", base=2)
    axis.set_xticks(xs, [str(x) for x in xs], minor=False)
    axis.xaxis.set_minor_locator(NullLocator())
    axis.margins(x=0.2)  # room for the labels of the outer points
    axis.set_xlabel("Hebbian neurons (sum of channels)")
    axis.set_ylabel(f"{_metric(collection, grid).replace('_', ' ')} (%)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    axis.set_title(f"{grid}: accuracy against width", fontsize=10)
    save_figure(figure, path)
    return f"{grid}: accuracy against the number of Hebbian neurons (mean ± std over seeds)", path


def readout_plot(collection: Collection, grid: str, path: Path) -> tuple[str, Path] | None:
    """Test accuracy after each read-out epoch, mean over seeds (band: ± std)."""
    curves: dict[str, pl.DataFrame] = {}
    for label in collection.labels(grid):
        frames = []
        for run in collection.of(grid):
            if run.label != label:
                continue
            metrics = run.metrics_table()
            if "phase" not in metrics.columns or "test_accuracy" not in metrics.columns:
                continue
            readout = metrics.filter(pl.col("phase") == "readout").select(
                pl.col("epoch"), (pl.col("test_accuracy") * 100).alias("accuracy")
            )
            frames.append(readout.with_columns(pl.lit(run.seed).alias("seed")))
        if frames:
            curves[label] = (
                pl.concat(frames)
                .group_by("epoch")
                .agg(pl.col("accuracy").mean().alias("mean"), pl.col("accuracy").std().alias("std"))
                .sort("epoch")
            )
    if not curves:
        return None
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6, 3.8))
    for index, (label, curve) in enumerate(curves.items()):
        epochs = curve["epoch"].to_list()
        mean = curve["mean"].to_list()
        std = curve["std"].fill_null(0).to_list()
        colour = f"C{index % 10}"
        axis.plot(epochs, mean, marker="o", markersize=3, color=colour, label=label)
        axis.fill_between(
            epochs,
            [m - s for m, s in zip(mean, std, strict=True)],
            [m + s for m, s in zip(mean, std, strict=True)],
            color=colour,
            alpha=0.15,
        )
    from matplotlib.ticker import MaxNLocator

    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlabel("read-out epoch")
    axis.set_ylabel("test accuracy (%)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, ncol=2)
    axis.set_title(f"{grid}: read-out learning curves", fontsize=10)
    save_figure(figure, path)
    return f"{grid}: test accuracy after each read-out epoch (mean over seeds, band ± std)", path


def filters_plot(collection: Collection, grid: str, path: Path) -> tuple[str, Path] | None:
    """First-layer filters of each run (first seed): initial (rebuilt from the recipe) above
    learned, drawn by the run folder's own :func:`~hebbkit.runs.pictures.draw_filters`."""
    panels = []
    for label in collection.labels(grid):
        runs = sorted((r for r in collection.of(grid) if r.label == label), key=lambda r: r.seed)
        if not runs:
            continue
        learned = learned_first_layer(runs[0])
        if learned is not None:
            panels.append((label, initial_first_layer(runs[0]), learned))
    if not panels:
        return None
    plt = pyplot()
    # each panel as tall as its mosaic (6 filters a row), so the rows sit close together
    rows = max(math.ceil(min(MAX_FILTERS, learned.shape[0]) / 6) for _, _, learned in panels)
    height = 2.1 * rows / 6 + 0.55
    figure, axes = plt.subplots(
        2,
        len(panels),
        figsize=(2.1 * len(panels) + 0.8, 2 * height + 0.6),
        squeeze=False,
        layout="constrained",
    )
    for column, (label, initial, learned) in enumerate(panels):
        for row, (state, weight) in enumerate((("initial", initial), ("learned", learned))):
            axis = axes[row][column]
            if weight is None:
                axis.set_xticks([])
                axis.set_yticks([])
                axis.text(0.5, 0.5, "recipe's plugin\nnot installed", ha="center", fontsize=7)
            else:
                draw_filters(axis, weight, MAX_FILTERS, columns=6)
            if column == 0:
                axis.set_ylabel(state, fontsize=9)
        axes[0][column].set_title(label, fontsize=9)
    figure.suptitle(
        f"{grid}: first-layer filters (first {MAX_FILTERS})\n{FILTER_CONVENTION}", fontsize=9
    )
    save_figure(figure, path)
    return (
        f"{grid}: first-layer filters of each run before and after Hebbian learning (first "
        f"seed; {FILTER_CONVENTION})",
        path,
    )


def diagnostics_plot(collection: Collection, grid: str, path: Path) -> tuple[str, Path] | None:
    """Per layer (columns) and diagnostic (rows), one line per run against images seen."""
    traces: dict[str, pl.DataFrame] = {}
    for label in collection.labels(grid):
        runs = sorted((r for r in collection.of(grid) if r.label == label), key=lambda r: r.seed)
        if not runs:
            continue
        metrics = runs[0].metrics_table()
        if "phase" in metrics.columns:
            trace = metrics.filter(pl.col("phase") == "hebbian_trace")
            if trace.height:
                traces[label] = trace
    if not traces:
        return None
    layers = sorted({layer for t in traces.values() for layer in t["layer"].to_list()})
    plt = pyplot()
    width, height = max(6.0, 3.2 * len(layers) + 1), 2.0 * len(DIAGNOSTICS)
    figure, axes = plt.subplots(
        len(DIAGNOSTICS), len(layers), figsize=(width, height), squeeze=False, sharex="col"
    )
    for index, (label, trace) in enumerate(traces.items()):
        colour = f"C{index % 10}"
        for column, layer in enumerate(layers):
            rows = trace.filter(pl.col("layer") == layer).sort(["epoch", "step"])
            for row, (name, _, log) in enumerate(DIAGNOSTICS):
                if name not in rows.columns:
                    continue
                points = rows.select("images_seen", name).drop_nulls()
                if log:
                    points = points.filter(pl.col(name) > 0)
                if points.height:
                    axes[row][column].plot(
                        points["images_seen"].to_list(),
                        points[name].to_list(),
                        marker=".",
                        markersize=3,
                        color=colour,
                        label=label if row == column == 0 else None,
                    )
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    for row, (_, title, log) in enumerate(DIAGNOSTICS):
        for column, layer in enumerate(layers):
            axis = axes[row][column]
            if log:
                axis.set_yscale("log")
                # plain numbers (96, 0.25) read better than 9.6×10¹ here
                axis.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                axis.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                axis.yaxis.set_minor_formatter(NullFormatter())
            axis.grid(alpha=0.3)
            axis.tick_params(labelsize=7)
            if row == 0:
                axis.set_title(f"layer {layer + 1}", fontsize=9)
            if column == 0:
                axis.set_ylabel(title, fontsize=8)
            if row == len(DIAGNOSTICS) - 1:
                axis.set_xlabel("images seen", fontsize=8)
    # as many legend entries per row as the width holds; the rows it takes are kept clear
    per_row = max(1, min(len(traces), int(width / 1.7)))
    legend_rows = math.ceil(len(traces) / per_row)
    figure.legend(loc="upper center", ncol=per_row, fontsize=8, bbox_to_anchor=(0.5, 1.0))
    figure.tight_layout(rect=(0, 0, 1, 1 - (0.15 + 0.2 * legend_rows) / height))
    save_figure(figure, path, dpi=110)
    return (
        f"{grid}: Hebbian diagnostics per layer while it learns (first seed): distinct "
        "filters, mean norm, mean adaptive rate, effective number of winners (exp of the "
        "entropy of win shares) and neurons that never won",
        path,
    )
