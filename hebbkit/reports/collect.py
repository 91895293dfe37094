"""Run folders read back: one :class:`RunRecord` per finished run, grouped by grid.

Run folders are found by their summary (recursively, so a grid's output folder, a folder of
plain runs, or a single run folder all work). A run inside a grid's output folder takes its
label and the study's figures from the grid's manifest; a plain run is labelled by its
recipe's name. Runs with the same label are the seeds of one result.

A report's own records (:mod:`hebbkit.reports.records`) read like grid output folders; a grid
found both there and live is one grid, and a run found in both comes from the live folder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import torch

from hebbkit.config.recipe import validate_recipe
from hebbkit.config.toml import TOMLDecodeError, display, loads
from hebbkit.engine.diagnostics import describe_layers
from hebbkit.engine.network import HebbianNetwork
from hebbkit.errors import ReportError, RunFolderError
from hebbkit.plugins import get_registry
from hebbkit.reports.records import is_records_root, read_first_layer, safe_name
from hebbkit.runs.folder import (
    MANIFEST_FILE,
    RECIPE_FILE,
    SUMMARY_FILE,
    WEIGHTS_FILE,
    RunSummary,
    is_unfinished_name,
    read_metrics,
    read_summary,
)

#: Section name of runs that belong to no grid.
PLAIN = "runs"
METRICS = ("test_accuracy", "train_accuracy", "validation_accuracy")


@dataclass
class RunRecord:
    """One finished run folder, as the report sees it."""

    folder: Path
    grid: str
    label: str
    seed: int
    summary: RunSummary
    recipe: dict[str, Any]
    factors: dict[str, str] = field(default_factory=dict)
    #: the network's saved state, loaded on first use
    weights: dict[str, Any] | None = field(default=None, repr=False)
    #: weight count per layer, where only a report's record of the run is left
    weight_counts: dict[int, int] = field(default_factory=dict, repr=False)

    def metric(self, name: str) -> float | None:
        value = self.summary.get(name)
        return 100 * value if isinstance(value, (int, float)) else None

    def metrics_table(self) -> pl.DataFrame:
        return read_metrics(self.folder)

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
    #: every output folder of the grid found (a live one and a report's record of it)
    roots: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.root is not None and not self.roots:
            self.roots = [self.root]

    @property
    def folder_name(self) -> str:
        return self.root.name if self.root is not None else self.name

    def continues_in(self, root: Path) -> bool:
        """Whether ``root`` holds more of this grid: its record in a report, or the live
        output folder a record was made from (same grid, same folder name)."""
        return safe_name(root.name) == safe_name(self.folder_name) and (
            is_records_root(root) or any(is_records_root(r) for r in self.roots)
        )

    def add_root(self, root: Path, manifest: dict[str, Any]) -> None:
        """Merge another output folder's manifest: what either planned, the study's figures."""
        self.roots.append(root)
        if not is_records_root(root):
            self.root = root  # failed seeds and commands are looked up in a live folder
        mine = self.manifest
        mine["labels"] = list(
            dict.fromkeys([*(mine.get("labels") or []), *manifest.get("labels", [])])
        )
        mine["factors"] = {**(manifest.get("factors") or {}), **(mine.get("factors") or {})}
        planned = {(r["label"], r["seed"]) for r in mine.get("runs", [])}
        mine["runs"] = [
            *mine.get("runs", []),
            *(r for r in manifest.get("runs", []) if (r["label"], r["seed"]) not in planned),
        ]
        for key, value in (manifest.get("study") or {}).items():
            study = mine.setdefault("study", {})
            if isinstance(value, dict):  # figures: what either holds, this grid's first
                study[key] = {**value, **(study.get(key) or {})}
            else:
                study.setdefault(key, value)

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
        for summary in sorted(path.rglob(SUMMARY_FILE)):
            relative = summary.parent.relative_to(path).parts
            # staged (.x.partial-*), failed (x.failed-*) and stopped runs, and Ray's bookkeeping
            if any(is_unfinished_name(p) for p in relative):
                continue
            folders[summary.parent] = None
    return list(folders)


def _manifest_of(folder: Path, cache: dict[Path, Any]) -> tuple[Path, dict[str, Any]] | None:
    for parent in folder.parents:
        if parent not in cache:
            path = parent / MANIFEST_FILE
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
    names: dict[Path, str] = {}
    runs = []
    for folder in folders:
        try:
            summary = read_summary(folder)
        except RunFolderError as error:
            raise ReportError(str(error)) from None
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
        name = names.get(root) or _grid_name(grids, root, manifest)
        names[root] = name
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
    return Collection(_one_per_seed(runs), grids)


def _grid_name(grids: dict[str, GridInfo], root: Path, manifest: dict[str, Any]) -> str:
    """The grid's name in the report: the manifest's, unless another grid of that name was
    found elsewhere (then ``name (folder)``); a grid continued in a report's records merges."""
    name = str(manifest.get("grid", root.name))
    for known in grids.values():
        if str(known.manifest.get("grid", known.name)) == name and known.continues_in(root):
            known.add_root(root, manifest)
            return known.name
    if name in grids:
        name = f"{name} ({root.name})"
    grids[name] = GridInfo(name, root, json.loads(json.dumps(manifest)))
    return name


def _one_per_seed(runs: list[RunRecord]) -> list[RunRecord]:
    """A run found both live and in a report's record, or twice: the live folder's, else the
    later finished."""

    def rank(run: RunRecord) -> tuple[bool, str]:
        return ((run.folder / WEIGHTS_FILE).is_file(), str(run.summary.get("finished_at", "")))

    best: dict[tuple[str, str, int, str], RunRecord] = {}
    for run in runs:
        # a plain run's record is the same run (same start); a grid's seed is one run
        started = str(run.summary.get("started_at", "")) if run.grid == PLAIN else ""
        key = (run.grid, run.label, run.seed, started)
        if key not in best or rank(run) > rank(best[key]):
            best[key] = run
    return list(best.values())


def _read_recipe(folder: Path) -> dict[str, Any]:
    try:
        return loads((folder / RECIPE_FILE).read_text())
    except (OSError, TOMLDecodeError):
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


# --- saved weights ---------------------------------------------------------------------------


def weights_count(run: RunRecord, index: int) -> int | None:
    weight = _weights(run).get(f"layers.{index}.weight")
    return int(weight.numel()) if weight is not None else run.weight_counts.get(index)


def _input_channels(run: RunRecord) -> int | None:
    """Input channels of the first layer, from the saved weights' shape."""
    weight = _weights(run).get("layers.0.weight")
    return int(weight.shape[1]) if weight is not None else None


def _weights(run: RunRecord) -> dict[str, Any]:
    """The Hebbian network's saved state (``weights.pt``), read once per run."""
    if run.weights is None:
        run.weights = {}
        path = run.folder / WEIGHTS_FILE
        if path.is_file():
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
                run.weights = dict(state.get("network", {}))
            except Exception:  # an unreadable weights file only costs counts and pictures
                run.weights = {}
        else:
            run.weights, run.weight_counts = read_first_layer(run.folder)
    return run.weights


def learned_first_layer(run: RunRecord) -> Any:
    return _weights(run).get("layers.0.weight")


def initial_layers(run: RunRecord) -> dict[int, dict[str, Any]]:
    """Rebuild the run's network from its recipe and describe it (no diagnostics recorded)."""
    try:
        registry = get_registry()
        recipe = validate_recipe(run.recipe, registry, source=str(run.folder / RECIPE_FILE))
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
        in_channels = _input_channels(run)
        if in_channels is None:
            return None
        registry = get_registry()
        recipe = validate_recipe(run.recipe, registry, source=str(run.folder / RECIPE_FILE))
        first = recipe.model_copy(update={"layers": recipe.layers[:1]})
        return HebbianNetwork.from_recipe(first, in_channels, registry).layers[0].weight
    except Exception:  # as above: only the picture's first row is lost
        return None
