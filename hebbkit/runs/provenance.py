"""Where a run's numbers came from: package versions, hardware, peak memory, plugins."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from pathlib import Path
from typing import Any

import torch

from hebbkit.config.recipe import COMPONENT_FIELDS, Recipe
from hebbkit.registry import Registry

try:  # not on Windows, where peak memory is not recorded
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None

PACKAGES = ("hebbkit", "torch", "torchvision", "numpy", "pydantic", "pluggy", "polars", "typer")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def hardware(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def peak_memory_bytes(device: torch.device) -> dict[str, int]:
    # ru_maxrss is KiB on Linux, bytes on macOS
    scale = 1 if sys.platform == "darwin" else 1024
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale if resource else 0
    peak = {"peak_rss_bytes": rss}
    if device.type == "cuda":
        peak["peak_gpu_bytes"] = torch.cuda.max_memory_allocated(device)
    return peak


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
