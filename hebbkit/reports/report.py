"""``hebbkit report``: markdown, tables and plots over many run folders, beside the study's
numbers. Runs with the same label are the seeds of one result, shown as mean ± std (sample
standard deviation)."""

from __future__ import annotations

import math
import shlex
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from hebbkit.config.recipe import protocol_of
from hebbkit.errors import ReportError
from hebbkit.reports import plots
from hebbkit.reports.collect import (
    METRICS,
    PLAIN,
    Collection,
    GridInfo,
    RunRecord,
    collect,
    initial_layers,
    learned_first_layer,
    weights_count,
)
from hebbkit.reports.records import PLAIN_DIR, RECORDS_DIR, RunCopy, safe_name, write_records
from hebbkit.runs.folder import FAILED_MARK, is_finished, recorded_precision, run_name_of

# --- tables ----------------------------------------------------------------------------------


def runs_frame(collection: Collection) -> pl.DataFrame:
    """One row per run: identity, accuracies (%), times, hardware and versions."""
    rows = []
    for run in collection.runs:
        summary = run.summary
        seconds = summary.get("seconds", {})
        hardware = summary.get("hardware", {})
        versions = summary.get("versions", {})
        rows.append(
            {
                "grid": run.grid,
                "label": run.label,
                "seed": run.seed,
                "dataset": summary.get("dataset"),
                "init": "/".join(run.inits),
                "channels": "-".join(map(str, run.channels)),
                "neurons": sum(run.channels),
                **{name: run.metric(name) for name in METRICS},
                "seconds_total": seconds.get("total"),
                "seconds_hebbian": seconds.get("hebbian"),
                "seconds_readout": seconds.get("readout"),
                "device": hardware.get("device"),
                "precision": recorded_precision(summary),
                "hardware": _hardware_text(hardware),
                "python": versions.get("python"),
                "torch": versions.get("torch"),
                "hebbkit": versions.get("hebbkit"),
                "hebbkit_commit": _commit(summary, "hebbkit"),
                "recipe_commit": _commit(summary, "recipe"),
                "hebbian_from": summary.get("hebbian_from"),
                "started_at": summary.get("started_at"),
                "finished_at": summary.get("finished_at"),
                "folder": str(run.folder),
            }
        )
    return pl.from_dicts(rows, infer_schema_length=None)


def _commit(summary: Any, which: str) -> str | None:
    """``abc1234`` or ``abc1234+dirty``: the git state a run recorded (None before it did)."""
    state = (summary.get("git") or {}).get(which)
    if not state or not state.get("commit"):
        return None
    return state["commit"][:7] + ("+dirty" if state.get("dirty") else "")


def _hardware_text(hardware: dict[str, Any]) -> str:
    if hardware.get("gpu"):
        return f"{hardware['gpu']} ({hardware.get('device', 'cuda')})"
    cpus = hardware.get("cpu_count")
    threads = hardware.get("torch_threads")
    text = str(hardware.get("processor") or "CPU")
    if cpus:
        text += f", {cpus} CPUs"
    if threads:
        text += f", {threads} torch threads"
    if hardware.get("cpu_capability"):
        # one model name covers machines with and without AVX512 (bf16 speed differs 100×)
        text += f", {hardware['cpu_capability']}"
    return text


#: Columns of :func:`results_frame`, in order (accuracies in %).
RESULT_SCHEMA = {
    "label": pl.Utf8,
    "factors": pl.Object,
    "seeds": pl.Int64,
    "planned_seeds": pl.Int64,
    "failed_seeds": pl.Int64,
    "mean": pl.Float64,
    "std": pl.Float64,
    #: each seed's value in seed order, "s0=98.32 s1=98.41 ..."
    "per_seed": pl.Utf8,
    #: the best seed's value (a best, not a result: shown beside the mean, labelled as such)
    "best": pl.Float64,
    "study": pl.Float64,
    "difference": pl.Float64,
    #: how the runs' protocol differs from the study's ("" when it does not)
    "protocol": pl.Utf8,
}


def results_frame(collection: Collection, grid: str) -> pl.DataFrame:
    """One row per label of ``grid``: seeds, mean ± std of the metric (%), the study's figure
    and our difference from it, unless the runs' protocol differs from the study's."""
    info = collection.grids.get(grid)
    rows = [_result_row(collection, grid, info, label) for label in collection.labels(grid)]
    return pl.DataFrame(rows, schema=RESULT_SCHEMA)


def _result_row(
    collection: Collection, grid: str, info: GridInfo | None, label: str
) -> dict[str, Any]:
    """The row of one label: each column computed by its own small step."""
    metric = info.metric if info else "test_accuracy"
    runs = sorted((r for r in collection.of(grid) if r.label == label), key=lambda r: r.seed)
    seeded = [(r.seed, v) for r in runs if (v := r.metric(metric)) is not None]
    values = [v for _, v in seeded]
    mean = sum(values) / len(values) if values else None
    study = (info.figures if info else {}).get(label)
    protocol = protocol_differences(info, runs) if study is not None else ""
    if mixed := mixed_precisions(runs):
        protocol = f"{protocol}, {mixed}" if protocol else mixed
    factors = (info.manifest.get("factors") or {}).get(label) if info else None
    if factors is None:
        factors = next((r.factors for r in runs if r.factors), {})
    comparable = mean is not None and study is not None and not protocol
    return {
        "label": label,
        "factors": factors,
        "seeds": len(values),
        "planned_seeds": len({p["seed"] for p in _planned(info) if p["label"] == label}),
        "failed_seeds": _failed_seeds(info, label) if info else 0,
        "mean": mean,
        "std": _std(values),
        "per_seed": " ".join(f"s{seed}={value:.2f}" for seed, value in seeded),
        "best": max(values) if values else None,
        "study": study,
        "difference": mean - study if comparable else None,
        "protocol": protocol,
    }


def protocol_differences(info: GridInfo | None, runs: list[RunRecord]) -> str:
    """How the runs' recipes differ from the protocol the grid planned for them (the grid
    file's own, before any -s on the command line), e.g. ``readout.epochs = 3 (study: 50)``;
    empty when they do not, or when the grid's manifest predates recorded protocols."""
    planned = {(p["label"], p["seed"]): p.get("protocol") for p in _planned(info)}
    found: dict[str, str] = {}
    for run in runs:
        study = planned.get((run.label, run.seed))
        if not study:
            continue
        ours = protocol_of(run.recipe)
        for path, value in ours.items():
            if path in study and study[path] != value:
                found[path] = f"{path} = {_setting(value)} (study: {_setting(study[path])})"
    return ", ".join(found.values())


def mixed_precisions(runs: list[RunRecord]) -> str:
    """Which seeds ran in which ``--precision`` when they did not all run in one (one mean ±
    std is one precision's), e.g. ``seeds in more than one precision: fp32 (s0, s1),
    bf16-auto (s2)``; empty when they did."""
    seeds: dict[str, list[str]] = {}
    for run in runs:
        seeds.setdefault(recorded_precision(run.summary), []).append(f"s{run.seed}")
    if len(seeds) < 2:
        return ""
    return "seeds in more than one precision: " + ", ".join(
        f"{name} ({', '.join(found)})" for name, found in seeds.items()
    )


def _setting(value: Any) -> str:
    return "all" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _planned(info: GridInfo | None) -> list[dict[str, Any]]:
    return list(info.manifest.get("runs", [])) if info else []


def _failed_seeds(info: GridInfo, label: str) -> int:
    seeds = set()
    for root in info.roots:
        folder = root / label
        if not folder.is_dir():
            continue
        for failed in folder.glob(f"seed*{FAILED_MARK}*"):
            seed = run_name_of(failed)
            if not any(is_finished(r / label / seed) for r in info.roots):
                seeds.add(seed)
    return len(seeds)


def _std(values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def layers_frame(collection: Collection, grid: str) -> pl.DataFrame:
    """Per label (its first seed) and Hebbian layer: the state at init and after learning.

    From the ``hebbian_trace`` rows of the metrics table (step 0 is before any learning); a
    run without them is rebuilt from its recipe for the initial state.
    """
    info = collection.grids.get(grid)
    study = (info.study.get("nonzero_weights") or {}) if info else {}
    rows = []
    for label in collection.labels(grid):
        runs = sorted((r for r in collection.of(grid) if r.label == label), key=lambda r: r.seed)
        if not runs:
            continue
        run = runs[0]
        metrics = run.metrics_table()
        trace = (
            metrics.filter(pl.col("phase") == "hebbian_trace")
            if "phase" in metrics.columns
            else pl.DataFrame()
        )
        initial = initial_layers(run) if trace.is_empty() else {}
        # without diagnostics, the end-of-epoch "hebbian" rows still hold the final state
        ends = (
            metrics.filter(pl.col("phase") == "hebbian")
            if trace.is_empty() and "phase" in metrics.columns
            else trace
        )
        for index in range(len(run.recipe.get("layers", []))):
            rows_of_layer = (
                trace.filter(pl.col("layer") == index) if not trace.is_empty() else trace
            )
            first = (
                rows_of_layer.row(0, named=True) if rows_of_layer.height else initial.get(index, {})
            )
            end_rows = ends.filter(pl.col("layer") == index) if not ends.is_empty() else ends
            last = end_rows.row(-1, named=True) if end_rows.height else {}
            published = study.get(label)
            rows.append(
                {
                    "label": label,
                    "seed": run.seed,
                    "layer": index + 1,
                    "init": run.inits[index],
                    "channels": run.channels[index],
                    "weights": weights_count(run, index),
                    "nonzero_init": first.get("nonzero_weights"),
                    "study_nonzero": published[index]
                    if published and index < len(published)
                    else None,
                    "distinct_init": first.get("distinct_filters"),
                    "distinct_end": last.get("distinct_filters"),
                    "norm_init": first.get("mean_norm"),
                    "norm_end": last.get("mean_norm"),
                    "lr_init": first.get("mean_lr", first.get("initial_lr")),
                    "dead_end": last.get("dead_neurons"),
                    "effective_winners_end": last.get("effective_winners"),
                    "top_share_end": last.get("top_winner_share"),
                }
            )
    return pl.from_dicts(rows, infer_schema_length=None) if rows else pl.DataFrame()


# --- markdown --------------------------------------------------------------------------------


def _pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _mean_std(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "–"
    return f"{mean:.2f} ± {std:.2f}" if std is not None else f"{mean:.2f}"


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f}"


def _difference(value: float | None, std: float | None) -> str:
    """``−0.58 (−2.3σ)``: the difference, and how many of our seeds' std it spans."""
    if value is None:
        return "–"
    if not std:
        return _signed(value)
    return f"{value:+.2f} ({value / std:+.1f}σ)"


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ")
    return str(value)


def _table(header: list[str], rows: list[list[str]], align: str = "") -> str:
    align = align or "l" + "r" * (len(header) - 1)
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _status(row: dict[str, Any]) -> str:
    seeds, planned, failed = row["seeds"], row["planned_seeds"], row["failed_seeds"]
    if seeds == 0:
        return f"failed ({failed} seed{'s' if failed > 1 else ''})" if failed else "not run here"
    text = f"{seeds}/{planned}" if planned > seeds else str(seeds)
    return text + (f", {failed} failed" if failed else "")


#: The mark of a row whose protocol differs from the study's (explained under the table).
PROTOCOL_MARK = "‡"


def results_markdown(collection: Collection, grid: str) -> str:
    frame = results_frame(collection, grid)
    info = collection.grids.get(grid)
    metric = (info.metric if info else "test_accuracy").replace("_", " ")
    axes = list((info.manifest.get("axes") or []) if info else [])
    show_factors = bool(axes) and any(
        len(r["factors"]) > 1 for r in frame.iter_rows(named=True) if r["factors"]
    )
    factor_names = []
    if show_factors:
        factor_names = list(
            dict.fromkeys(k for r in frame.iter_rows(named=True) for k in (r["factors"] or {}))
        )
    first = "label" if factor_names else "run"
    header = [first, *factor_names, "seeds", f"ours: {metric} (%), mean ± std"]
    header += ["per seed", "best seed", "study (%)", "ours − study (in std)"]
    rows = []
    marked = []
    for row in frame.iter_rows(named=True):
        factors = row["factors"] or {}
        ours = _mean_std(row["mean"], row["std"])
        if row["protocol"]:
            ours += f" {PROTOCOL_MARK}"
            marked.append(f"{row['label']}: {row['protocol']}")
        rows.append(
            [
                row["label"],
                *[factors.get(name, "") for name in factor_names],
                _status(row),
                ours,
                row["per_seed"].replace(" ", ", ") or "–",
                _pct(row["best"]) if row["seeds"] > 1 else "–",
                "–" if row["study"] is None else f"{row['study']:g}",
                _difference(row["difference"], row["std"]),
            ]
        )
    align = "l" * (1 + len(factor_names)) + "rrrrrr"
    table = _table(header, rows, align)
    if marked:
        table += (
            f"\n\n{PROTOCOL_MARK} Not the study's protocol, so no difference is shown: "
            + "; ".join(marked)
            + "."
        )
    return table


def layers_markdown(frame: pl.DataFrame) -> str:
    header = [
        "run",
        "layer",
        "init",
        "weights",
        "non-zeros at init",
        "study",
        "distinct filters: init → end",
        "mean norm: init → end",
        "dead neurons (end)",
        "effective winners (end)",
    ]
    rows = []
    for row in frame.iter_rows(named=True):
        rows.append(
            [
                row["label"],
                str(row["layer"]),
                row["init"],
                _number(row["weights"]),
                _number(row["nonzero_init"]),
                _number(row["study_nonzero"]),
                f"{_number(row['distinct_init'])} → {_number(row['distinct_end'])}",
                f"{_number(row['norm_init'])} → {_number(row['norm_end'])}",
                _number(row["dead_end"]),
                _number(row["effective_winners_end"]),
            ]
        )
    return _table(header, rows, "lrl" + "r" * 7)


def runs_markdown(frame: pl.DataFrame, root: Path) -> str:
    header = [
        "grid",
        "run",
        "seed",
        "test acc. (%)",
        "wall time (s)",
        "Hebbian (s)",
        "read-out (s)",
        "hardware",
        "torch",
        "hebbkit",
        "finished",
        "folder",
    ]
    rows = []
    for row in frame.sort(["grid", "label", "seed"]).iter_rows(named=True):
        rows.append(
            [
                row["grid"],
                row["label"],
                str(row["seed"]),
                _pct(row["test_accuracy"]),
                _pct(row["seconds_total"], 0),
                _pct(row["seconds_hebbian"], 0),
                _pct(row["seconds_readout"], 0),
                str(row["hardware"]),
                str(row["torch"]),
                str(row["hebbkit"])
                + (f" @ {row['hebbkit_commit']}" if row.get("hebbkit_commit") else ""),
                str(row["finished_at"] or "–"),
                _relative(Path(row["folder"]), root),
            ]
        )
    return _table(header, rows, "lll" + "r" * 4 + "l" * 5)


def _relative(path: Path, root: Path) -> str:
    """A run folder as the reader finds it: relative to the working folder if inside it."""
    for base in (Path.cwd(), root.parent):
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            continue
    return str(path)


def _command_text(command: str | list[str]) -> str:
    return command if isinstance(command, str) else shlex.join(command)


def _grid_commands(collection: Collection, grid: str) -> list[str]:
    """The commands that made the grid's runs, in first-use order (the manifest's as fallback).

    A grid is often filled by several commands (slices by ``--only``/``--seeds``); the
    manifest keeps only the last one, so each run's own summary is the record where it holds
    a ``hebbkit`` command line (not, say, a test runner's or a Ray worker's arguments).
    """
    commands = []
    for run in collection.of(grid):
        argv = run.summary.get("command")
        if isinstance(argv, list) and argv and Path(argv[0]).name == "hebbkit":
            # The executable is a path into someone's environment; readers type "hebbkit".
            commands.append(_command_text(["hebbkit", *argv[1:]]))
    if not commands and grid in collection.grids:
        manifest = collection.grids[grid].manifest.get("command")
        commands = [_command_text(manifest)] if manifest else []
    return list(dict.fromkeys(commands))


def write_report(
    paths: list[Path], out: Path, command: str | None = None, title: str | None = None
) -> Path:
    """Write ``out/report.md`` with its PNG plots and CSV tables; returns the report's path."""
    collection = collect(paths)
    out = out.expanduser().resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ReportError(f"Cannot create the report folder {out}: {error}.") from None
    runs = runs_frame(collection)
    runs.write_csv(out / "runs.csv")

    grids = [g for g in collection.grids if collection.of(g)]
    if collection.of(PLAIN):
        grids.append(PLAIN)
    lines = [f"# {title or 'hebbkit results'}", ""]
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if command:
        lines += [f"Generated on {stamp} by:", "", "```", command, "```", ""]
    commands = list(dict.fromkeys(c for g in grids for c in _grid_commands(collection, g)))
    if commands:
        lines += ["The runs were made by:", "", "```", *commands, "```", ""]
    lines += [_overview(runs), ""]

    all_results = []
    all_layers = []
    for grid in grids:
        info = collection.grids.get(grid)
        slug = safe_name(grid)
        heading = grid if grid != PLAIN else "Runs outside a grid"
        description = info.manifest.get("description") if info else ""
        lines += [f"## {heading}" + (f": {description}" if description else ""), ""]
        if info and info.study.get("source"):
            lines += [f"The study's figures: {info.study['source']}.", ""]
        if info and info.study.get("note"):
            lines += [info.study["note"], ""]
        lines += [results_markdown(collection, grid), ""]
        results = results_frame(collection, grid)
        all_results.append(results.drop("factors").with_columns(pl.lit(grid).alias("grid")))
        pictures = plots.grid_plots(collection, grid, results, out, slug)
        for caption, path in pictures:
            lines += [f"![{caption}]({path.name})", "", f"*{caption}*", ""]
        layers = layers_frame(collection, grid)
        if layers.height:
            all_layers.append(layers.with_columns(pl.lit(grid).alias("grid")))
            lines += [
                "### Hebbian layers: at initialisation and after learning",
                "",
                "First seed of each run, from the diagnostics recorded while each layer learns "
                "(init: before the first batch; end: after the last). Distinct filters count "
                "neurons with different weight vectors; identical neurons receive identical "
                "updates. Dead neurons never won the competition in the last diagnostics "
                "interval; effective winners is exp(entropy) of the win shares.",
                "",
                layers_markdown(layers),
                "",
            ]
    if all_results:
        pl.concat(all_results, how="diagonal_relaxed").write_csv(out / "results.csv")
    if all_layers:
        pl.concat(all_layers, how="diagonal_relaxed").write_csv(out / "layers.csv")
    lines += ["## Every run", "", runs_markdown(runs, out), ""]
    lines += [
        "Tables as CSV: `runs.csv`, `results.csv`, `layers.csv`. Accuracies are the last "
        "read-out epoch's; ± is the sample standard deviation over seeds. "
        f"`{RECORDS_DIR}/` keeps each run's summary, recipe, metrics and first-layer filters: "
        "pass this folder to `hebbkit report` (with new run folders) to regenerate or extend "
        "this report once the run folders are gone.",
        "",
    ]
    _keep_records(collection, out)
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return report


def _overview(runs: pl.DataFrame) -> str:
    hardware = sorted({h for h in runs["hardware"].to_list() if h})
    precisions = list(dict.fromkeys(runs["precision"].to_list())) if "precision" in runs else []
    versions = runs.select(["python", "torch", "hebbkit"]).unique().sort("torch").iter_rows()
    total = runs["seconds_total"].fill_null(0).sum()
    parts = [
        f"**{runs.height} runs**, {total / 3600:.2f} h of wall time in all.",
        "Hardware: " + "; ".join(hardware) + "." if hardware else "",
        "Precision: " + ", ".join(precisions) + "." if precisions else "",
        "Versions: "
        + "; ".join(f"python {p}, torch {t}, hebbkit {h}" for p, t, h in versions)
        + ".",
        _commits_text(runs),
    ]
    return " ".join(p for p in parts if p)


def _commits_text(runs: pl.DataFrame) -> str:
    """The git commits the runs were made with (hebbkit's and the recipes'), where recorded."""
    parts = []
    for column, what in (("hebbkit_commit", "hebbkit"), ("recipe_commit", "recipes")):
        commits = sorted({c for c in runs[column].to_list() if c}) if column in runs.columns else []
        if commits:
            parts.append(f"{what} at {', '.join(f'`{c}`' for c in commits)}")
    return f"Code: {'; '.join(parts)}." if parts else ""


def _keep_records(collection: Collection, out: Path) -> None:
    """Copy what the report read into ``out/records`` (after everything was read: a report
    may be regenerated from its own records)."""
    folders: dict[str, str] = {}
    for grid, info in collection.grids.items():
        if collection.of(grid):
            folder = safe_name(info.folder_name)
            while folder in folders.values() or folder == PLAIN_DIR:
                folder += "_"
            folders[grid] = folder
    copies = []
    for run in collection.runs:
        where = (
            Path(folders[run.grid], run.label)
            if run.grid != PLAIN
            else Path(PLAIN_DIR, safe_name(run.label))
        )
        layers = range(len(run.recipe.get("layers", [])))
        counts = {i: n for i in layers if (n := weights_count(run, i)) is not None}
        copies.append(
            RunCopy(run.folder, where / f"seed{run.seed}", learned_first_layer(run), counts)
        )
    manifests = {folders[g]: collection.grids[g].manifest for g in folders}
    write_records(out, copies, manifests)


__all__ = ["results_frame", "runs_frame", "write_report"]
