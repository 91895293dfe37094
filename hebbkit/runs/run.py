"""``hebbkit run``: one recipe from data to run folder, reading top to bottom.

:class:`Machine` holds the settings of the machine, never of the experiment; it is the only
place that reads ``HEBBKIT_DATA``, ``HEBBKIT_OFFLINE`` and ``HEBBKIT_DEVICE``.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch

from hebbkit.config.recipe import Recipe, recipe_toml
from hebbkit.engine.diagnostics import describe_layers
from hebbkit.engine.network import HebbianNetwork
from hebbkit.engine.progress import ProgressReporter, QuietProgress
from hebbkit.engine.seeds import derive_seed
from hebbkit.engine.splits import load_splits
from hebbkit.engine.training import (
    accuracy,
    extract_features,
    feature_dtype,
    hebbian_phase,
    readout_phase,
)
from hebbkit.errors import HebbkitError
from hebbkit.registry import Registry
from hebbkit.runs.folder import (
    FILTERS_FILE,
    RECIPE_FILE,
    WEIGHTS_FILE,
    WINNERS_FILE,
    RunSummary,
    staged_folder,
    utc_now,
    write_metrics,
    write_summary,
    write_table,
)
from hebbkit.runs.pictures import save_filter_pictures
from hebbkit.runs.provenance import (
    component_provenance,
    hardware,
    package_versions,
    peak_memory_bytes,
)

TRUE_WORDS = {"1", "true", "yes", "on"}


def data_root(flag: str | Path | None = None) -> Path:
    """``--data-root``, else ``HEBBKIT_DATA``, else ``./data`` (absolute)."""
    value = flag or os.environ.get("HEBBKIT_DATA") or "data"
    return Path(value).expanduser().resolve()


def offline(flag: bool = False) -> bool:
    """``--offline`` or ``HEBBKIT_OFFLINE=1``: never download."""
    env = os.environ.get("HEBBKIT_OFFLINE", "").strip().lower()
    return flag or env in TRUE_WORDS


def device_setting(flag: str | None = None) -> str | None:
    """``--device``, else ``HEBBKIT_DEVICE``, else None (the caller's default)."""
    return (flag or os.environ.get("HEBBKIT_DEVICE") or "").strip() or None


def resolve_device(name: str | None) -> torch.device:
    """``--device``, else ``HEBBKIT_DEVICE``, else cpu."""
    value = device_setting(name) or "cpu"
    try:
        device = torch.device(value)
    except RuntimeError:
        raise HebbkitError(
            f"--device {value!r} is not a device; use cpu, cuda or cuda:N."
        ) from None
    if device.type not in {"cpu", "cuda"}:
        raise HebbkitError(f"--device {value!r}: hebbkit runs on cpu or cuda.")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise HebbkitError(
            f"--device {value!r} asked for a GPU, but torch {torch.__version__} sees none here. "
            "Use --device cpu."
        )
    return device


@dataclass
class Machine:
    """Settings of the machine, not of the experiment: they never live in a recipe."""

    data_root: Path = field(default_factory=data_root)
    device: torch.device = field(default_factory=lambda: resolve_device(None))
    offline: bool = field(default_factory=offline)

    @classmethod
    def from_flags(
        cls, data: str | Path | None = None, device: str | None = None, no_download: bool = False
    ) -> Machine:
        """From command-line flags, each falling back to its ``HEBBKIT_*`` variable."""
        return cls(data_root(data), resolve_device(device), offline(no_download))


class Stopwatch:
    """Seconds per named phase of a run, and in all."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._start = time.perf_counter()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def total(self) -> float:
        return time.perf_counter() - self._start


def seed_everything(recipe: Recipe, device: torch.device) -> None:
    torch.manual_seed(derive_seed(recipe.seed, "global"))
    if recipe.deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.use_deterministic_algorithms(False)


def input_channels(recipe: Recipe, registry: Registry, machine: Machine) -> int:
    """Channels of the recipe's images: as the dataset declares them, else from its test set."""
    source = registry.get("dataset", recipe.data.dataset.name).build(recipe.data.dataset)
    channels = getattr(source, "channels", None)
    if channels:
        return int(channels)
    images = source.load(machine.data_root, train=False, download=not machine.offline)
    return int(images.images.shape[1])


def inspect_recipe(recipe: Recipe, registry: Registry, machine: Machine) -> list[dict[str, Any]]:
    """``hebbkit inspect``: each Hebbian layer right after initialisation."""
    channels = input_channels(recipe, registry, machine)
    return describe_layers(HebbianNetwork.from_recipe(recipe, channels, registry))


def run_recipe(
    recipe: Recipe,
    out: Path,
    registry: Registry,
    machine: Machine | None = None,
    *,
    overwrite: bool = False,
    progress: ProgressReporter | None = None,
    on_metrics: Callable[[dict[str, Any]], None] | None = None,
) -> RunSummary:
    """Train and evaluate ``recipe``; write the run folder ``out``; return the summary."""
    machine = machine or Machine()
    progress = progress or QuietProgress()
    device = machine.device
    rows: list[dict[str, Any]] = []
    winners: list[dict[str, Any]] = []

    def record(row: dict[str, Any]) -> None:
        rows.append(row)
        if on_metrics is not None:
            on_metrics(row)

    started_at = utc_now()
    clock = Stopwatch()
    with staged_folder(out, overwrite) as folder:
        (folder / RECIPE_FILE).write_text(recipe_toml(recipe))
        try:
            seed_everything(recipe, device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            with clock.phase("data"):
                splits = load_splits(
                    recipe.data, registry, machine.data_root, download=not machine.offline
                )
            network = HebbianNetwork.from_recipe(recipe, splits.train.images.shape[1], registry).to(
                device
            )
            initial_filters = network.layers[0].weight.detach().cpu().clone()
            with clock.phase("hebbian"):
                layer_timings = hebbian_phase(
                    network,
                    splits.hebbian_images,
                    recipe.hebbian,
                    recipe.seed,
                    device,
                    progress,
                    record,
                    winners,
                )
            feature_size = math.prod(network.feature_shape(tuple(splits.train.images.shape[1:])))
            dtype = feature_dtype(recipe.readout.feature_dtype, len(splits.train), feature_size)
            named = {"train": splits.train, "test": splits.test}
            if splits.validation is not None:
                named["validation"] = splits.validation
            cached: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
            with clock.phase("features"):
                for name, images in named.items():
                    cached[name] = (
                        extract_features(
                            network, images.images, dtype, device, progress, f"Features ({name})"
                        ),
                        images.labels,
                    )
            evaluations = {name: value for name, value in cached.items() if name != "train"}
            with clock.phase("readout"):
                result = readout_phase(
                    cached["train"],
                    evaluations,
                    len(splits.train.classes),
                    recipe.readout,
                    recipe.seed,
                    device,
                    progress,
                    record,
                )
            final = {
                f"{name}_accuracy": accuracy(result.model, x, y.to(device))
                for name, (x, y) in cached.items()
            }
        finally:
            write_metrics(folder, rows)
            if winners:
                write_table(folder / WINNERS_FILE, winners)
        summary = cast(
            RunSummary,
            {
                "recipe": recipe.name,
                "seed": recipe.seed,
                "dataset": recipe.data.dataset.name,
                **final,
                "train_images": len(splits.train),
                "validation_images": len(splits.validation) if splits.validation is not None else 0,
                "test_images": len(splits.test),
                "feature_size": feature_size,
                "feature_dtype": str(dtype).removeprefix("torch."),
                "seconds": {**clock.seconds, "total": clock.total()},
                "hebbian_layers": [
                    {
                        "layer": i,
                        "seconds": t["seconds"],
                        "images_per_second": t["images_per_second"],
                    }
                    for i, t in enumerate(layer_timings)
                ],
                "hebbian_images_per_second": [t["images_per_second"] for t in layer_timings],
                **peak_memory_bytes(device),
                "hardware": hardware(device),
                "versions": package_versions(),
                "components": component_provenance(recipe, registry),
                "command": sys.argv,
                "started_at": started_at,
                "finished_at": utc_now(),
            },
        )
        torch.save(
            {"network": network.state_dict(), "readout": result.model.state_dict()},
            folder / WEIGHTS_FILE,
        )
        save_filter_pictures(initial_filters, network.layers[0].weight, folder / FILTERS_FILE)
        write_summary(folder, summary)
    return summary
