"""The Python API for notebooks and scripts: ``hebbkit.run`` and ``hebbkit.load_run``.

``import hebbkit`` stays light: these names are loaded from here on first use (see
``hebbkit/__init__.py``), so torch is imported only when a run is made or read.

    result = hebbkit.run("recipes/mnist_zero.toml", overrides=["readout.epochs=3"])
    result.test_accuracy, result.metrics, result.network
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import torch

from hebbkit.config.overrides import apply_overrides
from hebbkit.config.recipe import Recipe, load_recipe, recipe_dict, validate_recipe
from hebbkit.engine.network import HebbianNetwork
from hebbkit.engine.progress import ProgressReporter, make_progress
from hebbkit.plugins import get_registry
from hebbkit.runs.evaluate import load_model
from hebbkit.runs.folder import (
    METRICS_FILE,
    RECIPE_FILE,
    SUMMARY_FILE,
    WEIGHTS_FILE,
    RunSummary,
    default_run_folder,
    read_metrics,
    read_summary,
)
from hebbkit.runs.reuse import continued_precision
from hebbkit.runs.run import Machine, RunOrigin, precision_setting, run_recipe


@dataclass
class RunResult:
    """A finished run folder: its accuracies, tables, paths and trained model."""

    folder: Path
    summary: RunSummary = field(repr=False)
    recipe: Recipe = field(repr=False)
    _model: tuple[HebbianNetwork, torch.nn.Module] | None = field(default=None, repr=False)

    @property
    def test_accuracy(self) -> float:
        return float(self.summary["test_accuracy"])

    @property
    def train_accuracy(self) -> float:
        return float(self.summary["train_accuracy"])

    @property
    def validation_accuracy(self) -> float | None:
        value = self.summary.get("validation_accuracy")
        return float(value) if value is not None else None

    @property
    def seconds(self) -> dict[str, float]:
        return dict(self.summary.get("seconds", {}))

    @property
    def metrics(self) -> pl.DataFrame:
        """One row per Hebbian epoch, diagnostics point and read-out epoch."""
        return read_metrics(self.folder)

    @property
    def recipe_path(self) -> Path:
        return self.folder / RECIPE_FILE

    @property
    def summary_path(self) -> Path:
        return self.folder / SUMMARY_FILE

    @property
    def metrics_path(self) -> Path:
        return self.folder / METRICS_FILE

    @property
    def weights_path(self) -> Path:
        return self.folder / WEIGHTS_FILE

    def _load(self) -> tuple[HebbianNetwork, torch.nn.Module]:
        if self._model is None:
            _, network, readout = load_model(self.folder, get_registry(), torch.device("cpu"))
            self._model = (network, readout)
        return self._model

    @property
    def network(self) -> HebbianNetwork:
        """The trained Hebbian network (CPU, eval mode)."""
        return self._load()[0]

    @property
    def readout(self) -> torch.nn.Module:
        """The trained read-out: Dropout → Linear on the flattened features."""
        return self._load()[1]

    @property
    def model(self) -> torch.nn.Module:
        """Network and read-out as one classifier: images ``(B, C, H, W)`` in, logits out."""
        network, readout = self._load()
        return torch.nn.Sequential(network, torch.nn.Flatten(), readout).eval()


def load_run(folder: str | Path) -> RunResult:
    """A finished run folder, read back."""
    path = Path(folder).expanduser().resolve()
    summary = read_summary(path)
    recipe = load_recipe(path / RECIPE_FILE, [], get_registry())
    return RunResult(path, summary, recipe)


def run(
    recipe: str | Path | dict[str, Any] | Recipe,
    overrides: list[str] | None = None,
    out: str | Path | None = None,
    *,
    data_root: str | Path | None = None,
    device: str | None = None,
    offline: bool = False,
    track: list[str] | None = None,
    precision: str | None = None,
    hebbian_from: str | Path | None = None,
    overwrite: bool = False,
    progress: bool | ProgressReporter = True,
) -> RunResult:
    """Train and evaluate ``recipe`` (a TOML path, a recipe dict or a validated recipe) with
    ``overrides`` (the ``-s`` syntax) into ``out`` (default ``runs/<name>/<timestamp>``);
    machine settings fall back to the ``HEBBKIT_*`` variables as on the command line."""
    registry = get_registry()
    source = None
    if isinstance(recipe, (str, Path)):
        source = Path(recipe)
        spec = load_recipe(source, overrides or [], registry)
    else:
        data = recipe_dict(recipe) if isinstance(recipe, Recipe) else recipe
        spec = validate_recipe(apply_overrides(data, overrides or []), registry, "<recipe>")
    folder = Path(out).expanduser().resolve() if out else default_run_folder(spec.name).resolve()
    reporter = make_progress(quiet=not progress) if isinstance(progress, bool) else progress
    reused = Path(hebbian_from) if hebbian_from else None
    setting = continued_precision(precision_setting(precision), reused)
    run_recipe(
        spec,
        folder,
        registry,
        Machine.from_flags(data_root, device, offline, track, precision=setting),
        overwrite=overwrite,
        progress=reporter,
        hebbian_from=reused,
        origin=RunOrigin(source=source),
    )
    return load_run(folder)
