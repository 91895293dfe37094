"""A report's own copy of its runs' records, so that a committed report can be regenerated and
extended after the run folders are gone (another machine, a wiped disk):

    hebbkit report docs/results/seeds runs/study/table2 --out docs/results/seeds

``<report>/records/`` holds, per run, what the report reads (``summary.json``, ``recipe.toml``,
``metrics.parquet``) and the first layer's learned filters with each layer's weight count
(``first_layer.pt``, kilobytes, instead of the full ``weights.pt``), and per grid its
``grid.json``. The folders look like a grid's output, so :func:`~hebbkit.reports.collect.collect`
reads them like any run folder; a grid found both here and live (same grid, same output
folder name) is one grid, and a run found in both is taken from the live folder.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hebbkit.errors import ReportError
from hebbkit.runs.folder import (
    MANIFEST_FILE,
    METRICS_FILE,
    RECIPE_FILE,
    SUMMARY_FILE,
    write_json,
)

RECORDS_DIR = "records"
#: Marks a folder as a report's records (so its grids merge with the same grids found live).
RECORDS_MARKER = "records.json"
FIRST_LAYER_FILE = "first_layer.pt"
#: Where runs that belong to no grid are kept inside the records.
PLAIN_DIR = "runs-outside-grids"
COPIED_FILES = (SUMMARY_FILE, RECIPE_FILE, METRICS_FILE)


def is_records_root(root: Path) -> bool:
    """Whether ``root`` (a grid's output folder) lies in a report's records."""
    return (root.parent / RECORDS_MARKER).is_file()


def read_first_layer(folder: Path) -> tuple[dict[str, Any], dict[int, int]]:
    """A record's saved state: ``({"layers.0.weight": tensor}, {layer index: weight count})``."""
    path = folder / FIRST_LAYER_FILE
    if not path.is_file():
        return {}, {}
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # an unreadable record only costs counts and pictures
        return {}, {}
    network = {k: v for k, v in saved.items() if k.startswith("layers.")}
    counts = {int(k): int(v) for k, v in (saved.get("weight_counts") or {}).items()}
    return network, counts


@dataclass
class RunCopy:
    """One run to keep: where it is, where it goes in the records, what it learned."""

    source: Path
    #: relative to the records folder: ``<grid folder>/<label>/seed<k>``
    destination: Path
    first_layer: Any
    weight_counts: dict[int, int]


def write_records(out: Path, runs: list[RunCopy], manifests: dict[str, dict[str, Any]]) -> Path:
    """Write ``out/records``: each run of ``runs``, and each grid folder's ``grid.json`` of
    ``manifests`` (by folder name); returns its path.

    Built beside the old records and swapped in at the end, so an interrupted report leaves
    the previous records whole, and a report that reads its own records can rewrite them.
    """
    final = out / RECORDS_DIR
    staging = out / f".{RECORDS_DIR}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for run in runs:
            _copy_run(run, staging / run.destination)
        for folder, manifest in manifests.items():
            write_json(staging / folder / MANIFEST_FILE, manifest)
        write_json(
            staging / RECORDS_MARKER,
            {
                "written_by": "hebbkit report",
                "runs": len(runs),
                "what": "each run's summary, recipe, metrics and first-layer filters; pass this "
                "report's folder to hebbkit report to regenerate or extend it",
            },
        )
        _swap(staging, final)
    except OSError as error:
        raise ReportError(f"Cannot write the report's run records in {final}: {error}.") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _copy_run(run: RunCopy, folder: Path) -> None:
    folder.mkdir(parents=True)
    for name in COPIED_FILES:
        source = run.source / name
        if source.is_file():
            shutil.copyfile(source, folder / name)
    saved: dict[str, Any] = {"weight_counts": {str(i): n for i, n in run.weight_counts.items()}}
    if run.first_layer is not None:
        saved["layers.0.weight"] = run.first_layer.detach().to("cpu").clone()
    torch.save(saved, folder / FIRST_LAYER_FILE)


def _swap(staging: Path, final: Path) -> None:
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "_"
