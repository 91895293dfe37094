"""The run folder: resolved recipe, metrics tables, summary with provenance, pictures.

A run writes into a hidden sibling folder and moves it into place only when it succeeded,
so a failure never touches an earlier run folder; a failed run is kept as ``<out>.failed-*``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import resource
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl
import torch

from hebbkit.errors import RunFolderError

PACKAGES = ("hebbkit", "torch", "torchvision", "numpy", "pydantic", "pluggy", "polars", "typer")


def default_run_folder(runs_root: Path, recipe_name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = runs_root / recipe_name / stamp
    suffix = 1
    while folder.exists():
        folder = runs_root / recipe_name / f"{stamp}-{suffix}"
        suffix += 1
    return folder


def check_run_folder(folder: Path, overwrite: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"--out {folder} is a file, not a folder.")
    if folder.exists() and any(folder.iterdir()) and not overwrite:
        raise RunFolderError(
            f"Run folder {folder} already exists and is not empty. Choose another --out, or pass "
            "--overwrite to replace it once the new run has succeeded."
        )


@contextmanager
def staged_folder(folder: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a staging folder that becomes ``folder`` only if the block succeeds."""
    check_run_folder(folder, overwrite)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunFolderError(f"Cannot create {folder.parent}: {error}.") from None
    staging = folder.parent / f".{folder.name}.partial-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        yield staging
    except BaseException as error:
        (staging / "error.txt").write_text(f"{type(error).__name__}: {error}\n")
        failed = folder.parent / f"{folder.name}.failed-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
        staging.rename(failed)
        error.add_note(f"The unfinished run's files are in {failed}.")
        raise
    old = None
    if folder.exists():
        old = folder.parent / f".{folder.name}.old-{os.getpid()}"
        folder.rename(old)
    staging.rename(folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


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
    peak = {"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale}
    if device.type == "cuda":
        peak["peak_gpu_bytes"] = torch.cuda.max_memory_allocated(device)
    return peak


def metrics_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(
            {"phase": [], "epoch": []}, schema={"phase": pl.Utf8, "epoch": pl.Int64}
        )
    return pl.from_dicts(rows, infer_schema_length=None)


def write_metrics(folder: Path, rows: list[dict[str, Any]]) -> None:
    frame = metrics_frame(rows)
    frame.write_parquet(folder / "metrics.parquet")
    frame.write_csv(folder / "metrics.csv")


def write_table(path: Path, rows: list[dict[str, Any]]) -> None:
    pl.from_dicts(rows).write_parquet(path)


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Stopwatch:
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


def filter_montage(weight: torch.Tensor, max_filters: int = 256, columns: int = 16) -> torch.Tensor:
    """Filters tiled into one ``(H, W, C)`` image in [0, 1], each scaled to its own range."""
    filters = weight.detach().float().cpu()[:max_filters]
    count, channels, height, width = filters.shape
    if channels not in (1, 3):
        filters = filters.mean(dim=1, keepdim=True)
        channels = 1
    low = filters.flatten(1).min(1).values.view(-1, 1, 1, 1)
    high = filters.flatten(1).max(1).values.view(-1, 1, 1, 1)
    filters = (filters - low) / (high - low).clamp_min(1e-12)
    columns = min(columns, count)
    rows = (count + columns - 1) // columns
    pad = 1  # a white line between filters
    canvas = torch.ones(channels, rows * (height + pad) + pad, columns * (width + pad) + pad)
    for index in range(count):  # at most max_filters small copies
        row, column = divmod(index, columns)
        top, left = pad + row * (height + pad), pad + column * (width + pad)
        canvas[:, top : top + height, left : left + width] = filters[index]
    return canvas.permute(1, 2, 0)


def save_filter_grid(weight: torch.Tensor, path: Path, max_filters: int = 256) -> None:
    """First-layer receptive fields as an image grid (one image, not one axis per filter)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    montage = filter_montage(weight, max_filters).numpy()
    count = min(max_filters, weight.shape[0])
    height, width = montage.shape[:2]
    scale = max(0.02, min(0.08, 12 / max(height, width)))
    figure, axis = plt.subplots(figsize=(max(3.0, width * scale), max(2.0, height * scale + 0.4)))
    axis.imshow(
        montage.squeeze(-1) if montage.shape[-1] == 1 else montage,
        cmap="gray",
        vmin=0,
        vmax=1,
        interpolation="nearest",
    )
    axis.axis("off")
    axis.set_title(
        f"first-layer filters ({count} of {weight.shape[0]}, {tuple(weight.shape[1:])})", fontsize=9
    )
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)
