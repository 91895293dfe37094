"""Where a run's numbers came from: code (git), package versions, hardware, peak memory,
plugins."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from hebbkit.config.recipe import COMPONENT_FIELDS, Recipe
from hebbkit.engine.allocator import keep_freed_memory
from hebbkit.engine.precision import native_bf16
from hebbkit.registry import Registry

try:  # not on Windows, where peak memory is not recorded
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None

#: git answers within this many seconds, or the state is recorded as unknown
GIT_TIMEOUT = 10.0

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
        # "AMD EPYC" names machines with and without AVX512: bf16 timings depend on this
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": native_bf16(device),
        # glibc malloc keeps freed pages (hebbkit.engine.allocator): speed only
        "keeps_freed_memory": keep_freed_memory(),
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


def git_state(path: Path) -> dict[str, Any] | None:
    """Commit and dirty flag of the git work tree holding ``path``; None outside one (or
    without git).

    ``dirty``: tracked files differ from the commit (untracked files do not count). For a
    file, ``file`` says whether it is ``committed``, ``modified`` or ``untracked``.
    """
    folder = path if path.is_dir() else path.parent
    top = _git(folder, "rev-parse", "--show-toplevel")
    commit = _git(folder, "rev-parse", "HEAD") if top else None
    if not top or not commit:
        return None
    changes = _git(folder, "status", "--porcelain", "--untracked-files=no")
    state: dict[str, Any] = {"root": top, "commit": commit, "dirty": bool(changes)}
    if changes is None:
        state["dirty"] = None  # git could not tell
    if path.is_file():
        tracked = _git(folder, "ls-files", "--", path.name)
        changed = _git(folder, "status", "--porcelain", "--", path.name)
        if tracked is not None and changed is not None:
            state["file"] = "untracked" if not tracked else "modified" if changed else "committed"
    return state


def _git(folder: Path, *args: str) -> str | None:
    """``git -C folder args`` stripped, or None where it fails."""
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_provenance(recipe_source: Path | None) -> dict[str, dict[str, Any]]:
    """git state of the hebbkit checkout (when hebbkit runs from one) and of the recipe file."""
    states: dict[str, dict[str, Any]] = {}
    hebbkit_state = git_state(Path(__file__).resolve().parents[2])
    if hebbkit_state is not None and _holds_hebbkit(hebbkit_state):
        states["hebbkit"] = hebbkit_state
    if recipe_source is not None:
        recipe_state = git_state(recipe_source.expanduser().resolve())
        if recipe_state is not None:
            states["recipe"] = {"path": str(recipe_source), **recipe_state}
    return states


def _holds_hebbkit(state: dict[str, Any]) -> bool:
    # an installed hebbkit inside some other repository's virtual environment is no checkout
    return (Path(state["root"]) / "hebbkit" / "__init__.py").is_file()
