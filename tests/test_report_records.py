"""A report's records: the report regenerated and extended once the run folders are gone."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
import torch

from hebbkit.reports.records import FIRST_LAYER_FILE, RECORDS_DIR, RECORDS_MARKER
from tests.grid_helpers import invoke, shared_tiny_grid

RESULT_COLUMNS = ["grid", "label", "seeds", "mean", "per_seed", "study", "difference"]


@pytest.fixture(scope="module")
def tiny_grid(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return shared_tiny_grid(tmp_path_factory)


def report(*paths: Path, out: Path) -> Path:
    result = invoke("report", *paths, "--out", out)
    assert result.exit_code == 0, result.output
    return out


def results(out: Path) -> pl.DataFrame:
    return pl.read_csv(out / "results.csv").select(RESULT_COLUMNS).sort("grid", "label")


def grid_copy(tiny_grid: tuple[Path, Path], where: Path, keep: set[str]) -> Path:
    """A copy of the tiny grid's output folder (named like it) holding only ``keep`` labels."""
    copy = where / tiny_grid[1].name
    shutil.copytree(tiny_grid[1], copy)
    for label in ("random", "zero"):
        if label not in keep:
            shutil.rmtree(copy / label)
    return copy


def test_records_hold_what_the_report_read(tiny_grid: tuple[Path, Path], tmp_path: Path) -> None:
    out = report(tiny_grid[1], out=tmp_path / "report")
    records = out / RECORDS_DIR
    assert (records / RECORDS_MARKER).is_file()
    seed = records / tiny_grid[1].name / "zero" / "seed0"
    assert {p.name for p in seed.iterdir()} == {
        "summary.json",
        "recipe.toml",
        "metrics.parquet",
        FIRST_LAYER_FILE,
    }
    saved = torch.load(seed / FIRST_LAYER_FILE, weights_only=True)
    learned = torch.load(tiny_grid[1] / "zero" / "seed0" / "weights.pt", weights_only=True)
    assert torch.equal(saved["layers.0.weight"], learned["network"]["layers.0.weight"])
    assert saved["weight_counts"]["1"] == learned["network"]["layers.1.weight"].numel()
    assert (records / tiny_grid[1].name / "grid.json").is_file()


def test_a_report_regenerated_from_its_records_alone(
    tiny_grid: tuple[Path, Path], tmp_path: Path
) -> None:
    live = grid_copy(tiny_grid, tmp_path / "live", {"random", "zero"})
    first = report(live, out=tmp_path / "report")
    shutil.rmtree(live)  # the run folders are gone: only the committed report is left
    again = report(first, out=tmp_path / "again")
    assert results(again).equals(results(first))
    layers = ["label", "layer", "weights", "nonzero_init", "distinct_end"]
    assert (
        pl.read_csv(again / "layers.csv")
        .select(layers)
        .equals(pl.read_csv(first / "layers.csv").select(layers))
    )
    pictures = sorted(p.name for p in first.glob("*.png"))
    assert pictures and sorted(p.name for p in again.glob("*.png")) == pictures
    # in place: the report reads its own records and rewrites them
    report(first, out=first)
    assert results(first).equals(results(again))
    assert len(list((first / RECORDS_DIR).rglob("summary.json"))) == 2


def test_records_extended_with_new_runs_are_one_grid(
    tiny_grid: tuple[Path, Path], tmp_path: Path
) -> None:
    full = report(tiny_grid[1], out=tmp_path / "full")
    earlier = grid_copy(tiny_grid, tmp_path / "earlier", {"random"})
    partial = report(earlier, out=tmp_path / "partial")
    shutil.rmtree(earlier)
    later = grid_copy(tiny_grid, tmp_path / "later", {"zero"})
    extended = report(partial, later, out=tmp_path / "extended")
    assert results(extended).equals(results(full))
    assert results(extended)["grid"].to_list() == ["tiny", "tiny"]


def test_a_run_found_live_and_recorded_is_taken_live(
    tiny_grid: tuple[Path, Path], tmp_path: Path
) -> None:
    first = report(tiny_grid[1], out=tmp_path / "report")
    both = report(first, tiny_grid[1], out=tmp_path / "both")
    runs = pl.read_csv(both / "runs.csv")
    assert runs.height == 2
    assert all(not f.startswith(str(first)) for f in runs["folder"])
    assert results(both).equals(results(first))


def test_a_grid_rerun_elsewhere_stays_apart_from_the_record(
    tiny_grid: tuple[Path, Path], tmp_path: Path
) -> None:
    """Another output folder of the same grid (say, run again in bf16) is another result."""
    first = report(tiny_grid[1], out=tmp_path / "report")
    other = tmp_path / "elsewhere" / "out-bf16"
    shutil.copytree(tiny_grid[1], other)
    both = results(report(first, other, out=tmp_path / "both"))
    assert both.height == 4
    assert len(set(both["grid"])) == 2
