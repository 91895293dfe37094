"""Reusing a Hebbian phase: the weights of a finished run (``--hebbian-from``) or of a cache
shared by the runs of a grid or search that differ only in read-out keys.

Runs share Hebbian weights exactly when their :func:`~hebbkit.config.recipe.hebbian_hash`
matches: the seed, the images of the Hebbian phase, the Hebbian settings and the layers.
A reused phase brings its metrics rows, winner counts and per-layer timings along, so the
new run folder describes the weights it holds.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import polars as pl
import torch

from hebbkit.config.recipe import (
    Recipe,
    first_difference,
    hebbian_config,
    hebbian_hash,
    validate_recipe,
)
from hebbkit.config.toml import read_toml
from hebbkit.errors import HebbkitError, RecipeError, RunFolderError
from hebbkit.registry import Registry
from hebbkit.runs.folder import (
    RECIPE_FILE,
    WEIGHTS_FILE,
    WINNERS_FILE,
    LayerTiming,
    is_finished,
    read_metrics,
    read_summary,
    recorded_precision,
)

#: Phases of the metrics table that the Hebbian phase writes.
HEBBIAN_PHASES = ("hebbian", "hebbian_trace")


@dataclass
class HebbianState:
    """A finished Hebbian phase: the network's weights and what was recorded while it learnt."""

    hebbian_hash: str
    #: the network's state dict (weights and batch-norm statistics)
    network: dict[str, torch.Tensor]
    rows: list[dict[str, Any]] = field(default_factory=list)
    winners: list[dict[str, Any]] = field(default_factory=list)
    layers: list[LayerTiming] = field(default_factory=list)
    #: the run folder that learnt it
    source: str = ""


def load_weights(path: Path) -> dict[str, Any]:
    """A run's ``weights.pt`` (``{"network": state_dict, "readout": state_dict}``)."""
    try:
        weights = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as error:
        raise RunFolderError(f"Cannot read {path}: {error}.") from None
    if not isinstance(weights, dict) or "network" not in weights:
        raise RunFolderError(f"{path} does not hold a hebbkit network ('network' is missing).")
    return cast(dict[str, Any], weights)


def stored_recipe(folder: Path, registry: Registry) -> Recipe:
    """The resolved recipe a run folder was made with, validated by this hebbkit."""
    path = folder / RECIPE_FILE
    try:
        return validate_recipe(read_toml(path), registry, source=str(path))
    except RecipeError as error:
        raise RunFolderError(
            f"{folder} holds a run whose recipe this hebbkit cannot read ({error})."
        ) from None


def check_same_hebbian(recipe: Recipe, folder: Path, registry: Registry) -> str:
    """The Hebbian hash, after checking that the run in ``folder`` learnt the Hebbian weights
    ``recipe`` would learn; a mismatch names the first key that differs.

    The hash in ``summary.json`` decides when it matches; otherwise (older runs have none, or
    it was computed by another hebbkit) the Hebbian parts of both recipes are compared.
    """
    wanted = hebbian_hash(recipe)
    if read_summary(folder).get("hebbian_hash") == wanted:
        return wanted
    theirs = hebbian_config(stored_recipe(folder, registry))
    mine = hebbian_config(recipe)
    key = first_difference(mine, theirs)
    if key is None:
        return wanted
    missing = "(not set)"
    raise HebbkitError(
        f"--hebbian-from {folder}: that run learnt different Hebbian weights than this recipe "
        f"would: {key} is {_show(theirs.get(key, missing))} there but "
        f"{_show(mine.get(key, missing))} here. Only read-out settings (readout.*, "
        "data.test_subset, hebbian.diagnostics, name, description) may differ; use a run made "
        "with the same seed, data, Hebbian settings and layers, or drop --hebbian-from."
    )


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def continued_precision(setting: str, hebbian_from: Path | None) -> str:
    """The precision setting of a run that reuses ``hebbian_from``'s Hebbian phase: on
    ``auto``, the precision that run recorded (reusing a phase means computing as it did),
    otherwise ``setting`` as given (:func:`from_run_folder` refuses a mismatch)."""
    if setting != "auto" or hebbian_from is None:
        return setting
    folder = hebbian_from.expanduser().resolve()
    if not is_finished(folder):
        return setting  # from_run_folder says what is wrong with it
    return recorded_precision(read_summary(folder))


def from_run_folder(
    folder: Path, recipe: Recipe, registry: Registry, precision: str = "fp32"
) -> HebbianState:
    """The Hebbian phase of the finished run in ``folder``, checked against ``recipe`` and
    against the ``precision`` the new run computes in."""
    folder = folder.expanduser().resolve()
    if not folder.is_dir():
        raise RunFolderError(f"--hebbian-from {folder}: no such folder.")
    if not is_finished(folder) or not (folder / WEIGHTS_FILE).is_file():
        raise RunFolderError(
            f"--hebbian-from {folder}: not a finished run folder (it needs summary.json and "
            f"{WEIGHTS_FILE})."
        )
    key = check_same_hebbian(recipe, folder, registry)
    theirs = recorded_precision(read_summary(folder))
    if theirs != precision:
        raise HebbkitError(
            f"--hebbian-from {folder}: that run learnt its Hebbian weights with --precision "
            f"{theirs}, this run computes with --precision {precision}. Run with --precision "
            f"{theirs}, or drop --hebbian-from to learn the phase in {precision}."
        )
    metrics = read_metrics(folder)
    rows = (
        metrics.filter(pl.col("phase").is_in(HEBBIAN_PHASES)).to_dicts()
        if "phase" in metrics.columns
        else []
    )
    winners_path = folder / WINNERS_FILE
    winners = pl.read_parquet(winners_path).to_dicts() if winners_path.is_file() else []
    return HebbianState(
        hebbian_hash=key,
        network=load_weights(folder / WEIGHTS_FILE)["network"],
        rows=[_without_nulls(row) for row in rows],
        winners=winners,
        layers=list(read_summary(folder).get("hebbian_layers", [])),
        source=str(folder),
    )


def _without_nulls(row: dict[str, Any]) -> dict[str, Any]:
    # a row read back from the table holds every column; keep the ones it had
    return {k: v for k, v in row.items() if v is not None}


class HebbianCache:
    """Hebbian phases by hash in a folder (``<hash>.pt``), for runs that share them.

    Entries learnt under another ``--precision`` than fp32 are kept apart
    (``<hash>.<precision>.pt``): the same recipe learns other weights in bf16. Written
    atomically, so runs in other processes (Ray trials) read only whole entries; two runs that
    start the same phase at the same time both compute it.
    """

    def __init__(self, root: Path, precision: str = "fp32") -> None:
        self.root = root
        self.precision = precision

    def path(self, key: str) -> Path:
        suffix = "" if self.precision == "fp32" else f".{self.precision}"
        return self.root / f"{key}{suffix}.pt"

    def load(self, key: str) -> HebbianState | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError):
            return None  # a damaged entry is recomputed (and replaced)
        return HebbianState(**data)

    def store(self, state: HebbianState, learnt_by: Path) -> None:
        """Keep ``state``, learnt by the run meant for the folder ``learnt_by``."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.path(state.hebbian_hash)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        data = {
            "hebbian_hash": state.hebbian_hash,
            "network": state.network,
            "rows": state.rows,
            "winners": state.winners,
            "layers": state.layers,
            "source": str(learnt_by),
        }
        try:
            torch.save(data, temporary)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)

    def remove(self, keys: list[str] | None = None) -> None:
        """Drop ``keys`` (default: all) and the folder once it is empty."""
        if keys is None:
            shutil.rmtree(self.root, ignore_errors=True)
            return
        for key in keys:
            self.path(key).unlink(missing_ok=True)
        if self.root.is_dir() and not any(self.root.iterdir()):
            self.root.rmdir()
