"""``hebbkit report``: tables and plots over many run folders, beside the study's numbers.

Run folders are found by their ``summary.json`` (recursively, so a grid's output folder, a
folder of plain runs, or a single run folder all work). A run inside a grid's output folder
takes its label and the study's figures from the grid's ``grid.json``; a plain run is
labelled by its recipe's name. Runs with the same label are the seeds of one result, shown
as mean ± std (sample standard deviation).
"""

from __future__ import annotations

import hashlib
import json
import math
import shlex
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from hebbkit.errors import HebbkitError
from hebbkit.grid import MANIFEST, SEED_FOLDER
from hebbkit.search import display

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the tomli backport
    import tomli as tomllib

#: Section name of runs that belong to no grid.
PLAIN = "runs"
METRICS = ("test_accuracy", "train_accuracy", "validation_accuracy")


class ReportError(HebbkitError):
    """Nothing to report, or a folder that cannot be read."""


@dataclass
class RunRecord:
    """One finished run folder, as the report sees it."""

    folder: Path
    grid: str
    label: str
    seed: int
    summary: dict[str, Any]
    recipe: dict[str, Any]
    factors: dict[str, str] = field(default_factory=dict)
    #: the network's saved state, loaded on first use
    weights: dict[str, Any] | None = field(default=None, repr=False)

    def metric(self, name: str) -> float | None:
        value = self.summary.get(name)
        return 100 * value if isinstance(value, (int, float)) else None

    def metrics_table(self) -> pl.DataFrame:
        path = self.folder / "metrics.parquet"
        return pl.read_parquet(path) if path.is_file() else pl.DataFrame()

    @property
    def channels(self) -> list[int]:
        return [int(layer.get("channels", 0)) for layer in self.recipe.get("layers", [])]

    @property
    def inits(self) -> list[str]:
        return [_init_name(layer.get("init")) for layer in self.recipe.get("layers", [])]


@dataclass
class GridInfo:
    """A grid's manifest (what was planned) and where its output lives."""

    name: str
    root: Path | None
    manifest: dict[str, Any]

    @property
    def study(self) -> dict[str, Any]:
        return self.manifest.get("study") or {}

    @property
    def metric(self) -> str:
        return self.study.get("metric", "test_accuracy")

    @property
    def figures(self) -> dict[str, float]:
        return self.study.get("figures") or {}

    @property
    def labels(self) -> list[str]:
        return list(self.manifest.get("labels") or [])


@dataclass
class Collection:
    runs: list[RunRecord]
    grids: dict[str, GridInfo]

    def of(self, grid: str) -> list[RunRecord]:
        return [r for r in self.runs if r.grid == grid]

    def labels(self, grid: str) -> list[str]:
        """The grid's labels in its own order (planned first), then any others found."""
        found = [r.label for r in self.of(grid)]
        planned = self.grids[grid].labels if grid in self.grids else []
        order = list(dict.fromkeys([*planned, *sorted(set(found), key=found.index)]))
        return order


# --- finding and reading runs ----------------------------------------------------------------


def find_run_folders(paths: list[Path]) -> list[Path]:
    """Folders holding a ``summary.json`` under ``paths`` (unfinished and hidden ones skipped)."""
    folders: dict[Path, None] = {}
    for path in paths:
        path = path.expanduser().resolve()
        if not path.exists():
            raise ReportError(f"{path} does not exist: pass run folders or grid output folders.")
        if path.is_file():
            raise ReportError(
                f"{path} is a file: pass run folders or grid output folders (the folders that "
                "hold summary.json, or any folder above them)."
            )
        for summary in sorted(path.rglob("summary.json")):
            relative = summary.parent.relative_to(path).parts
            # staged (.x.partial-*), failed (x.failed-*) and stopped runs, and Ray's bookkeeping
            if any(
                p.startswith(".") or ".failed-" in p or p.endswith(".stopped") for p in relative
            ):
                continue
            folders[summary.parent] = None
    return list(folders)


def _manifest_of(folder: Path, cache: dict[Path, Any]) -> tuple[Path, dict[str, Any]] | None:
    for parent in folder.parents:
        if parent not in cache:
            path = parent / MANIFEST
            try:
                cache[parent] = json.loads(path.read_text()) if path.is_file() else None
            except (OSError, json.JSONDecodeError):
                cache[parent] = None
        if cache[parent] is not None:
            return parent, cache[parent]
    return None


def collect(paths: list[Path]) -> Collection:
    """Read every run folder under ``paths`` (and the manifests of their grids)."""
    folders = find_run_folders(paths)
    if not folders:
        shown = ", ".join(str(p) for p in paths)
        raise ReportError(
            f"No finished run (a folder with summary.json) under {shown}. Run hebbkit run or "
            "hebbkit grid first, or point at their output folders."
        )
    cache: dict[Path, Any] = {}
    grids: dict[str, GridInfo] = {}
    runs = []
    for folder in folders:
        try:
            summary = json.loads((folder / "summary.json").read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ReportError(f"Cannot read {folder / 'summary.json'}: {error}.") from None
        recipe = _read_recipe(folder)
        seed = int(summary.get("seed", recipe.get("seed", 0)))
        found = _manifest_of(folder, cache)
        if found is None:
            runs.append(
                RunRecord(
                    folder, PLAIN, str(summary.get("recipe", folder.name)), seed, summary, recipe
                )
            )
            continue
        root, manifest = found
        name = str(manifest.get("grid", root.name))
        if name in grids and grids[name].root != root:
            name = f"{name} ({root.name})"
        grids.setdefault(name, GridInfo(name, root, manifest))
        relative = folder.relative_to(root)
        label = (
            relative.parent.as_posix() if relative.name.startswith("seed") else relative.as_posix()
        )
        planned = {(r["label"], r["seed"]): r for r in manifest.get("runs", [])}
        factors = (manifest.get("factors") or {}).get(label) or planned.get((label, seed), {}).get(
            "factors", {}
        )
        runs.append(RunRecord(folder, name, label, seed, summary, recipe, factors))
    _label_plain_runs([r for r in runs if r.grid == PLAIN])
    return Collection(runs, grids)


def _read_recipe(folder: Path) -> dict[str, Any]:
    try:
        return tomllib.loads((folder / "recipe.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _label_plain_runs(runs: list[RunRecord]) -> None:
    """Same recipe name, different recipes (other than the seed): tell them apart."""
    variants: dict[str, set[str]] = {}
    for run in runs:
        variants.setdefault(run.label, set()).add(_recipe_key(run.recipe))
    for run in runs:
        if len(variants[run.label]) > 1:
            run.label = f"{run.label}#{_recipe_key(run.recipe)[:6]}"


def _recipe_key(recipe: dict[str, Any]) -> str:
    body = {k: v for k, v in recipe.items() if k != "seed"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _init_name(init: Any) -> str:
    if isinstance(init, str):
        return init
    if isinstance(init, dict):
        return display(init)
    return "?"


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
                "hardware": _hardware_text(hardware),
                "python": versions.get("python"),
                "torch": versions.get("torch"),
                "hebbkit": versions.get("hebbkit"),
                "started_at": summary.get("started_at"),
                "finished_at": summary.get("finished_at"),
                "folder": str(run.folder),
            }
        )
    return pl.from_dicts(rows, infer_schema_length=None)


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
    return text


def results_frame(collection: Collection, grid: str) -> pl.DataFrame:
    """One row per label of ``grid``: seeds, mean ± std of the metric, the study's figure."""
    info = collection.grids.get(grid)
    metric = info.metric if info else "test_accuracy"
    figures = info.figures if info else {}
    runs = collection.of(grid)
    planned = _planned(info)
    rows = []
    for label in collection.labels(grid):
        values = [v for r in runs if r.label == label and (v := r.metric(metric)) is not None]
        mean = sum(values) / len(values) if values else None
        std = _std(values)
        study = figures.get(label)
        factors = (info.manifest.get("factors") or {}).get(label) if info else None
        if factors is None:
            factors = next((r.factors for r in runs if r.label == label and r.factors), {})
        expected = len({p["seed"] for p in planned if p["label"] == label})
        failed = _failed_seeds(info, label) if info else 0
        rows.append(
            {
                "label": label,
                "factors": factors,
                "seeds": len(values),
                "planned_seeds": expected,
                "failed_seeds": failed,
                "mean": mean,
                "std": std,
                "study": study,
                "difference": mean - study if mean is not None and study is not None else None,
            }
        )
    schema = {
        "label": pl.Utf8,
        "factors": pl.Object,
        "seeds": pl.Int64,
        "planned_seeds": pl.Int64,
        "failed_seeds": pl.Int64,
        "mean": pl.Float64,
        "std": pl.Float64,
        "study": pl.Float64,
        "difference": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


def _planned(info: GridInfo | None) -> list[dict[str, Any]]:
    return list(info.manifest.get("runs", [])) if info else []


def _failed_seeds(info: GridInfo, label: str) -> int:
    if info.root is None:
        return 0
    folder = info.root / label
    if not folder.is_dir():
        return 0
    seeds = set()
    for failed in folder.glob("seed*.failed-*"):
        seed = failed.name.split(".failed-")[0]
        if not (folder / seed / "summary.json").exists():
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
        initial = _initial_layers(run) if trace.is_empty() else {}
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
                    "weights": _weights_count(run, index),
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


def _weights_count(run: RunRecord, index: int) -> int | None:
    weight = _weights(run).get(f"layers.{index}.weight")
    return int(weight.numel()) if weight is not None else None


def _input_channels(run: RunRecord) -> int | None:
    """Input channels of the first layer, from the saved weights' shape."""
    weight = _weights(run).get("layers.0.weight")
    return int(weight.shape[1]) if weight is not None else None


def _weights(run: RunRecord) -> dict[str, Any]:
    """The Hebbian network's saved state (``weights.pt``), read once per run."""
    if run.weights is None:
        run.weights = {}
        path = run.folder / "weights.pt"
        if path.is_file():
            import torch

            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
                run.weights = dict(state.get("network", {}))
            except Exception:  # an unreadable weights file only costs counts and pictures
                run.weights = {}
    return run.weights


def learned_first_layer(run: RunRecord) -> Any:
    return _weights(run).get("layers.0.weight")


def _initial_layers(run: RunRecord) -> dict[int, dict[str, Any]]:
    """Rebuild the run's network from its recipe and describe it (no diagnostics recorded)."""
    try:
        from hebbkit.inspection import describe_layers
        from hebbkit.network import HebbianNetwork
        from hebbkit.plugins import get_registry
        from hebbkit.recipe import validate_recipe

        registry = get_registry()
        recipe = validate_recipe(run.recipe, registry, source=str(run.folder / "recipe.toml"))
        in_channels = _input_channels(run) or 1
        network = HebbianNetwork.from_recipe(recipe, in_channels, registry)
        return {row["layer"]: row for row in describe_layers(network)}
    except Exception:  # a plugin that is gone: the table shows what the metrics hold
        return {}


def initial_first_layer(run: RunRecord) -> Any:
    """The first layer's weight before learning, rebuilt from the recipe and seed.

    Built by the network's own code (the first layer only), so it is the run's initial
    weight exactly as long as the recipe's components are still installed.
    """
    try:
        from hebbkit.network import HebbianNetwork
        from hebbkit.plugins import get_registry
        from hebbkit.recipe import validate_recipe

        in_channels = _input_channels(run)
        if in_channels is None:
            return None
        registry = get_registry()
        recipe = validate_recipe(run.recipe, registry, source=str(run.folder / "recipe.toml"))
        first = recipe.model_copy(update={"layers": recipe.layers[:1]})
        return HebbianNetwork.from_recipe(first, in_channels, registry).layers[0].weight
    except Exception:  # as above: only the picture's first row is lost
        return None


# --- markdown --------------------------------------------------------------------------------


def _pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _mean_std(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "–"
    return f"{mean:.2f} ± {std:.2f}" if std is not None else f"{mean:.2f}"


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f}"


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
    header = [first, *factor_names, "seeds", f"ours: {metric} (%)", "study (%)", "ours − study"]
    rows = []
    for row in frame.iter_rows(named=True):
        factors = row["factors"] or {}
        rows.append(
            [
                row["label"],
                *[factors.get(name, "") for name in factor_names],
                _status(row),
                _mean_std(row["mean"], row["std"]),
                "–" if row["study"] is None else f"{row['study']:g}",
                _signed(row["difference"]),
            ]
        )
    align = "l" * (1 + len(factor_names)) + "rrrr"
    return _table(header, rows, align)


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
                str(row["hebbkit"]),
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
    from hebbkit import plots

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
        slug = _slug(grid)
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
        "read-out epoch's; ± is the sample standard deviation over seeds.",
        "",
    ]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return report


def _overview(runs: pl.DataFrame) -> str:
    hardware = sorted({h for h in runs["hardware"].to_list() if h})
    versions = runs.select(["python", "torch", "hebbkit"]).unique().sort("torch").iter_rows()
    total = runs["seconds_total"].fill_null(0).sum()
    parts = [
        f"**{runs.height} runs**, {total / 3600:.2f} h of wall time in all.",
        "Hardware: " + "; ".join(hardware) + "." if hardware else "",
        "Versions: "
        + "; ".join(f"python {p}, torch {t}, hebbkit {h}" for p, t, h in versions)
        + ".",
    ]
    return " ".join(p for p in parts if p)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


__all__ = ["SEED_FOLDER", "collect", "write_report"]
