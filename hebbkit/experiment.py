"""``hebbkit run``: one recipe from data to run folder."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hebbkit import data as datasets
from hebbkit.errors import HebbkitError
from hebbkit.network import HebbianNetwork, derive_seed
from hebbkit.progress import ProgressReporter, QuietProgress
from hebbkit.recipe import COMPONENT_FIELDS, Recipe, recipe_toml
from hebbkit.registry import Registry
from hebbkit.results import (
    Stopwatch,
    hardware,
    package_versions,
    peak_memory_bytes,
    save_filter_grid,
    staged_folder,
    utc_now,
    write_json,
    write_metrics,
    write_table,
)
from hebbkit.training import (
    accuracy,
    extract_features,
    feature_dtype,
    hebbian_phase,
    readout_phase,
)


@dataclass
class Machine:
    """Settings of the machine, not of the experiment: they never live in a recipe."""

    data_root: Path = field(default_factory=datasets.data_root)
    device: torch.device = field(default_factory=lambda: resolve_device(None))
    offline: bool = field(default_factory=datasets.offline)


def resolve_device(name: str | None) -> torch.device:
    """``--device``, else ``HEBBKIT_DEVICE``, else cpu."""
    value = (name or os.environ.get("HEBBKIT_DEVICE") or "cpu").strip()
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


def seed_everything(recipe: Recipe, device: torch.device) -> None:
    torch.manual_seed(derive_seed(recipe.seed, "global"))
    if recipe.deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.use_deterministic_algorithms(False)


def component_provenance(recipe: Recipe, registry: Registry) -> dict[str, dict[str, str]]:
    """Which plugin (and version) provided each component the recipe names."""
    used: dict[str, dict[str, str]] = {}
    sections: list[tuple[str, Any]] = [("data", recipe.data)]
    sections += [(f"layers.{i}", layer) for i, layer in enumerate(recipe.layers)]
    for prefix, section in sections:
        base = next(cls for cls in COMPONENT_FIELDS if isinstance(section, cls))
        for field_name, family in COMPONENT_FIELDS[base].items():
            spec = getattr(section, field_name)
            origin = registry.get(family, spec.name).origin
            used[f"{prefix}.{field_name}"] = {
                "name": spec.name,
                "plugin": origin.plugin,
                "distribution": origin.distribution,
                "version": origin.version,
            }
    return used


def run_recipe(
    recipe: Recipe,
    out: Path,
    registry: Registry,
    machine: Machine | None = None,
    *,
    overwrite: bool = False,
    progress: ProgressReporter | None = None,
    on_metrics: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
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
        (folder / "recipe.toml").write_text(recipe_toml(recipe))
        try:
            seed_everything(recipe, device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            with clock.phase("data"):
                splits = datasets.load_splits(
                    recipe.data, registry, machine.data_root, download=not machine.offline
                )
            network = HebbianNetwork.from_recipe(recipe, splits.train.images.shape[1], registry).to(
                device
            )
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
                write_table(folder / "winners.parquet", winners)
        summary: dict[str, Any] = {
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
            "hebbian_layers": [{"layer": i, **timing} for i, timing in enumerate(layer_timings)],
            "hebbian_images_per_second": [t["images_per_second"] for t in layer_timings],
            **peak_memory_bytes(device),
            "hardware": hardware(device),
            "versions": package_versions(),
            "components": component_provenance(recipe, registry),
            "command": sys.argv,
            "started_at": started_at,
            "finished_at": utc_now(),
        }
        torch.save(
            {"network": network.state_dict(), "readout": result.model.state_dict()},
            folder / "weights.pt",
        )
        save_filter_grid(network.layers[0].weight, folder / "filters.png")
        write_json(folder / "summary.json", summary)
    return summary
