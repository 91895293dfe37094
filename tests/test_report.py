"""``hebbkit report`` over a real tiny grid, plain run folders, and made-up collections."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hebbkit.reports import plots
from hebbkit.reports.collect import (
    Collection,
    GridInfo,
    RunRecord,
    collect,
    initial_first_layer,
)
from hebbkit.reports.report import results_frame
from tests.grid_helpers import invoke, shared_tiny_grid, user_error

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_grid(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return shared_tiny_grid(tmp_path_factory)


@pytest.fixture(scope="module")
def report(tiny_grid: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    _, out = tiny_grid
    folder = tmp_path_factory.mktemp("report")
    result = invoke("report", out, "--out", folder)
    assert result.exit_code == 0, result.output
    return folder


def copy_of(tiny_grid: tuple[Path, Path], tmp_path: Path) -> Path:
    """A private copy of the shared tiny grid's output, for a test that edits it."""
    copy = tmp_path / "grid"
    shutil.copytree(tiny_grid[1], copy)
    return copy


def accuracy(out: Path, label: str) -> float:
    summary = json.loads((out / label / "seed0" / "summary.json").read_text())
    return 100 * summary["test_accuracy"]


def table_row(text: str, first_cell: str) -> list[str]:
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row starting with {first_cell!r}")


def test_results_table_matches_the_runs(report: Path, tiny_grid: tuple[Path, Path]) -> None:
    _, out = tiny_grid
    text = (report / "report.md").read_text()
    assert "| run | seeds | ours: test accuracy (%) | study (%) | ours − study |" in text
    for label, figure in (("random", 90.0), ("zero", 50.0)):
        ours = accuracy(out, label)
        assert table_row(text, label) == [
            label,
            "1",
            f"{ours:.2f}",
            f"{figure:g}",
            f"{ours - figure:+.2f}",
        ]
    assert "The study's figures: made up for the test." in text
    assert "hebbkit grid" in text  # the command that made the runs
    assert "hebbkit report" in text  # and the one that made the report


def test_layers_table_has_the_initial_non_zeros(report: Path) -> None:
    text = (report / "report.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| zero | ")]
    layer1 = [c.strip() for c in rows[1].strip("|").split("|")]  # rows[0]: the results table
    # layer 1 of ZerO with one input channel: one non-zero per neuron, all filters identical
    assert layer1[:6] == ["zero", "1", "zero scale=study", "200", "8", "8"]
    assert layer1[6].startswith("1 →")
    random_layer2 = [c.strip() for c in text.split("| random | 2 |")[1].split("\n")[0].split("|")]
    assert random_layer2[1] == random_layer2[2] == "1 152"  # dense: every weight non-zero


def test_plots_and_tables_are_written(report: Path) -> None:
    for name in ("accuracy", "readout", "filters", "diagnostics"):
        path = report / f"tiny-{name}.png"
        assert path.read_bytes()[:8] == PNG, name
        assert f"]({path.name})" in (report / "report.md").read_text()
    for name in ("runs.csv", "results.csv", "layers.csv"):
        assert (report / name).is_file()


def test_hardware_versions_and_wall_time(report: Path, tiny_grid: tuple[Path, Path]) -> None:
    _, out = tiny_grid
    summary = json.loads((out / "zero" / "seed0" / "summary.json").read_text())
    text = (report / "report.md").read_text()
    assert summary["hardware"]["processor"] in text
    assert f"torch {summary['versions']['torch']}" in text
    row = table_row(text.split("## Every run")[1], "tiny")
    assert f"{summary['seconds']['total']:.0f}" in row or row[4].isdigit()


def test_plain_and_seed_folders(tiny_grid: tuple[Path, Path], tmp_path: Path) -> None:
    _, out = tiny_grid
    plain = tmp_path / "elsewhere" / "run1"
    shutil.copytree(out / "random" / "seed0", plain)
    result = invoke("report", plain, out / "zero" / "seed0", "--out", tmp_path / "report")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## Runs outside a grid" in text
    assert table_row(text, "grid_base")[1] == "1"  # a plain run is labelled by its recipe
    assert table_row(text, "zero")[3] == "50"  # a seed folder still finds its grid


def test_planned_but_missing_runs_say_so(tiny_grid: tuple[Path, Path], tmp_path: Path) -> None:
    copy = copy_of(tiny_grid, tmp_path)
    manifest = json.loads((copy / "grid.json").read_text())
    manifest["labels"].append("cifar10")
    manifest["study"]["figures"]["cifar10"] = 80.3
    (copy / "grid.json").write_text(json.dumps(manifest))
    result = invoke("report", copy, "--out", tmp_path / "report")
    assert result.exit_code == 0, result.output
    row = table_row((tmp_path / "report" / "report.md").read_text(), "cifar10")
    assert row == ["cifar10", "not run here", "–", "80.3", "–"]


def test_report_errors(tmp_path: Path) -> None:
    assert "does not exist" in user_error("report", tmp_path / "nope", "--out", tmp_path / "r")
    (tmp_path / "empty").mkdir()
    assert "No finished run" in user_error("report", tmp_path / "empty", "--out", tmp_path / "r")


# --- plots that need a particular kind of grid (made-up runs, no training) --------------------


def fake_run(tmp_path: Path, label: str, seed: int, accuracy: float, **extra: object) -> RunRecord:
    layers = [
        {"channels": c, "kernel": 3, "init": {"name": "zero"}}
        for c in extra.get("channels", [4, 8])
    ]
    recipe = {"name": "fake", "seed": seed, "data": {"dataset": "mnist"}, "layers": layers}
    summary = {"test_accuracy": accuracy, "seed": seed, "dataset": extra.get("dataset", "mnist")}
    factors = extra.get("factors", {})
    return RunRecord(
        tmp_path / label / f"seed{seed}", "fake", label, seed, summary, recipe, factors
    )  # type: ignore[arg-type]


def test_width_plot_only_for_width_studies(tmp_path: Path) -> None:
    runs = [
        fake_run(tmp_path, "narrow", 0, 0.90, channels=[4, 8]),
        fake_run(tmp_path, "narrow", 1, 0.92, channels=[4, 8]),
        fake_run(tmp_path, "wide", 0, 0.85, channels=[8, 16]),
    ]
    grids = {
        "fake": GridInfo(
            "fake", None, {"labels": ["narrow", "wide"], "study": {"figures": {"wide": 88.0}}}
        )
    }
    collection = Collection(runs, grids)
    results = results_frame(collection, "fake")
    narrow = results.row(0, named=True)
    assert narrow["seeds"] == 2 and narrow["mean"] == pytest.approx(91.0)
    assert narrow["std"] == pytest.approx(1.41421356, rel=1e-6)
    picture = plots.width_plot(collection, "fake", results, tmp_path / "width.png")
    assert picture is not None and picture[1].read_bytes()[:8] == PNG
    runs[2].recipe["layers"][0]["kernel"] = 5  # another difference: no longer a width study
    assert plots.width_plot(collection, "fake", results, tmp_path / "no.png") is None


def test_grouped_accuracy_plot(tmp_path: Path) -> None:
    runs = [
        fake_run(tmp_path, f"{d}/{i}", 0, a, factors={"run": d, "layers.*.init": i})
        for d, i, a in (("mnist", "random", 0.98), ("mnist", "zero", 0.7), ("fashion", "zero", 0.6))
    ]
    labels = ["mnist/random", "mnist/zero", "fashion/random", "fashion/zero"]
    collection = Collection(runs, {"fake": GridInfo("fake", None, {"labels": labels})})
    results = results_frame(collection, "fake")
    assert results.filter(results["label"] == "fashion/random")["seeds"].item() == 0
    _, path = plots.accuracy_plot(collection, "fake", results, tmp_path / "accuracy.png")
    assert path.read_bytes()[:8] == PNG


def test_collect_skips_failed_and_staged_folders(
    tiny_grid: tuple[Path, Path], tmp_path: Path
) -> None:
    copy = copy_of(tiny_grid, tmp_path)
    shutil.copytree(copy / "zero" / "seed0", copy / "zero" / "seed1.failed-20260101-000000")
    shutil.copytree(copy / "zero" / "seed0", copy / "zero" / ".seed2.partial-1")
    collection = collect([copy])
    assert sorted((r.label, r.seed) for r in collection.runs) == [("random", 0), ("zero", 0)]


def test_initial_filters_are_the_runs_own(tiny_grid: tuple[Path, Path]) -> None:
    """The rebuilt initial weight matches what the run recorded before learning."""
    import polars as pl

    _, out = tiny_grid
    (run,) = [r for r in collect([out / "zero"]).runs]
    weight = initial_first_layer(run)
    trace = pl.read_parquet(run.folder / "metrics.parquet").filter(
        (pl.col("phase") == "hebbian_trace") & (pl.col("layer") == 0) & (pl.col("step") == 0)
    )
    assert int((weight != 0).sum()) == trace["nonzero_weights"].item()
    assert weight.flatten(1).norm(dim=1).mean().item() == pytest.approx(trace["mean_norm"].item())


def test_every_command_that_made_runs_is_listed(
    tiny_grid: tuple[Path, Path], tmp_path: Path
) -> None:
    """A grid filled slice by slice lists each slice's command, not only the manifest's last."""
    copy = copy_of(tiny_grid, tmp_path)
    for label in ("random", "zero"):
        path = copy / label / "seed0" / "summary.json"
        summary = json.loads(path.read_text())
        summary["command"] = ["/venv/bin/hebbkit", "grid", "g.toml", "--only", label]
        path.write_text(json.dumps(summary))
    result = invoke("report", copy, "--out", tmp_path / "report")
    assert result.exit_code == 0, result.output
    made_by = (tmp_path / "report" / "report.md").read_text().split("The runs were made by:")[1]
    block = made_by.split("```")[1].strip().splitlines()
    assert block == ["hebbkit grid g.toml --only random", "hebbkit grid g.toml --only zero"]
