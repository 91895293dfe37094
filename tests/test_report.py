"""``hebbkit report`` over a real tiny grid, plain run folders, and made-up collections."""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch

from hebbkit.reports import plots
from hebbkit.reports.collect import (
    Collection,
    GridInfo,
    RunRecord,
    collect,
    initial_first_layer,
    learned_first_layer,
)
from hebbkit.reports.report import _overview, results_frame, results_markdown, runs_frame
from hebbkit.runs import pictures
from tests.grid_helpers import invoke, mnist_data, shared_tiny_grid, user_error, write_grid
from tests.picture_helpers import PNG, assert_tight


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
    header = "| run | seeds | ours: test accuracy (%), mean ± std | per seed | best seed "
    assert header + "| study (%) | ours − study (in std) |" in text
    for label, figure in (("random", 90.0), ("zero", 50.0)):
        ours = accuracy(out, label)
        assert table_row(text, label) == [
            label,
            "1",
            f"{ours:.2f}",
            f"s0={ours:.2f}",
            "–",  # no best of one seed
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
    assert f"torch threads, {summary['hardware']['cpu_capability']}" in text
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
    assert table_row(text, "zero")[5] == "50"  # a seed folder still finds its grid


def test_planned_but_missing_runs_say_so(tiny_grid: tuple[Path, Path], tmp_path: Path) -> None:
    copy = copy_of(tiny_grid, tmp_path)
    manifest = json.loads((copy / "grid.json").read_text())
    manifest["labels"].append("cifar10")
    manifest["study"]["figures"]["cifar10"] = 80.3
    (copy / "grid.json").write_text(json.dumps(manifest))
    result = invoke("report", copy, "--out", tmp_path / "report")
    assert result.exit_code == 0, result.output
    row = table_row((tmp_path / "report" / "report.md").read_text(), "cifar10")
    assert row == ["cifar10", "not run here", "–", "–", "–", "80.3", "–"]


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


# --- pictures: tight, one filter convention, bars from 0, protocol marks ------------------


def captured(monkeypatch: pytest.MonkeyPatch, module: object) -> list:
    """Figures ``module`` saves through ``save_figure``, kept open for inspection."""
    figures: list = []

    def keep(figure, path, dpi=120):
        figures.append(figure)
        figure.savefig(path, dpi=dpi, bbox_inches="tight")
        return path

    monkeypatch.setattr(module, "save_figure", keep)
    return figures


def test_report_pictures_have_a_tight_bounding_box(report: Path) -> None:
    pictures = sorted(report.glob("*.png"))
    assert len(pictures) >= 4
    for path in pictures:
        assert_tight(path)


def test_run_folder_filters_show_initial_and_learned_side_by_side(
    tiny_grid: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, out = tiny_grid
    assert_tight(out / "zero" / "seed0" / "filters.png")
    initial = torch.zeros(8, 1, 5, 5)
    initial[:, 0, 2, 2] = 1.0  # ZerO's centre tap
    learned = torch.randn(8, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    figures = captured(monkeypatch, pictures)
    pictures.save_filter_pictures(initial, learned, tmp_path / "filters.png")
    (figure,) = figures
    left, right = figure.axes
    assert (left.get_title(), right.get_title()) == ("initial", "learned")
    assert left.get_position().x1 <= right.get_position().x0  # side by side
    assert np.array_equal(left.images[0].get_array(), pictures.filter_image(initial))
    assert np.array_equal(right.images[0].get_array(), pictures.filter_image(learned))
    assert left.get_xlabel() == "1/8 distinct" and right.get_xlabel() == "8/8 distinct"
    assert pictures.FILTER_CONVENTION in figure._suptitle.get_text()


def test_filter_convention_grey_zero_white_max_black_min() -> None:
    weight = torch.zeros(3, 1, 3, 3)
    weight[1, 0, 1, 1] = 2.0  # one positive tap
    weight[2, 0, 0, 0], weight[2, 0, 2, 2] = -4.0, 1.0
    image = pictures.filter_image(weight, columns=3)
    assert image.shape == (1 + 3 + 1, 1 + 3 * 4, 3)  # make_grid: one pixel between filters
    tiles = [image[1:4, 1 + 4 * i : 4 + 4 * i, 0] for i in range(3)]
    assert np.allclose(tiles[0], 0.5)  # all zero: grey
    assert tiles[1][1, 1] == 1.0 and np.allclose(np.delete(tiles[1].ravel(), 4), 0.5)
    assert tiles[2][0, 0] == 0.0 and tiles[2][2, 2] == pytest.approx(0.625)  # 0.5 + 0.5·1/4
    assert np.allclose(image[0], 1.0)  # the white gap
    colour = pictures.filter_image(torch.randn(2, 3, 5, 5), columns=2)
    assert colour.shape[2] == 3 and not np.allclose(colour[..., 0], colour[..., 1])


def test_report_filters_are_drawn_by_the_run_folders_function(
    tiny_grid: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, out = tiny_grid
    collection = collect([out])
    figures = captured(monkeypatch, plots)
    assert plots.filters_plot(collection, "tiny", tmp_path / "filters.png") is not None
    (figure,) = figures
    labels = [a.get_title() for a in figure.axes[:2]]
    assert labels == ["random", "zero"]
    for column, label in enumerate(labels):
        (run,) = [r for r in collection.runs if r.label == label]
        initial, learned = figure.axes[column], figure.axes[2 + column]
        assert (initial.get_ylabel() if column == 0 else "initial") == "initial"
        for axis, weight in (
            (initial, initial_first_layer(run)),
            (learned, learned_first_layer(run)),
        ):
            expected = pictures.filter_image(weight, plots.MAX_FILTERS, columns=6)
            assert np.array_equal(axis.images[0].get_array(), expected), (label, axis)
    assert pictures.FILTER_CONVENTION in figure._suptitle.get_text()


def test_accuracy_bars_start_at_zero_without_not_run_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = [fake_run(tmp_path, "random", 0, 0.98), fake_run(tmp_path, "zero", 0, 0.71)]
    labels = ["random", "zero", "cifar10"]
    info = GridInfo("fake", None, {"labels": labels, "study": {"figures": {"zero": 71.4}}})
    collection = Collection(runs, {"fake": info})
    figures = captured(monkeypatch, plots)
    results = results_frame(collection, "fake")
    caption, _ = plots.accuracy_plot(collection, "fake", results, tmp_path / "accuracy.png")
    (figure,) = figures
    axis = figure.axes[0]
    assert axis.get_ylim() == (0.0, 100.0)
    assert [t.get_text() for t in axis.get_xticklabels()] == ["random", "zero"]
    texts = [t.get_text() for t in axis.texts]
    assert "not run" not in " ".join(texts) and {"98.0", "71.0"} <= set(texts)
    assert "1 planned run not run yet left out" in caption


def test_seeds_give_mean_std_each_seed_and_the_best(tmp_path: Path) -> None:
    accuracies = {2: 0.981, 0: 0.985, 3: 0.979, 1: 0.983}  # found out of seed order
    runs = [fake_run(tmp_path, "random", seed, value) for seed, value in accuracies.items()]
    info = GridInfo("fake", None, {"labels": ["random"], "study": {"figures": {"random": 98.9}}})
    collection = Collection(runs, {"fake": info})
    (row,) = results_frame(collection, "fake").iter_rows(named=True)
    values = [98.5, 98.3, 98.1, 97.9]  # seeds 0-3
    mean, std = sum(values) / 4, statistics.stdev(values)
    assert row["seeds"] == 4 and row["mean"] == pytest.approx(mean)
    assert row["std"] == pytest.approx(std)
    assert row["per_seed"] == "s0=98.50 s1=98.30 s2=98.10 s3=97.90"
    assert row["best"] == pytest.approx(98.5)
    assert row["difference"] == pytest.approx(mean - 98.9)
    cells = table_row(results_markdown(collection, "fake"), "random")
    assert cells[2] == f"{mean:.2f} ± {std:.2f}"
    assert cells[3] == "s0=98.50, s1=98.30, s2=98.10, s3=97.90"
    assert cells[4] == "98.50"
    assert cells[6] == f"{mean - 98.9:+.2f} ({(mean - 98.9) / std:+.1f}σ)"


def test_rows_off_the_studys_protocol_are_marked_without_a_difference(tmp_path: Path) -> None:
    study = {"readout.epochs": 50, "data.train_subset": None}
    runs = [fake_run(tmp_path, "full", 0, 0.96), fake_run(tmp_path, "quick", 0, 0.86)]
    runs[0].recipe["readout"] = {"epochs": 50}
    runs[1].recipe["readout"] = {"epochs": 3}
    runs[1].recipe["data"]["train_subset"] = 1000
    manifest = {
        "labels": ["full", "quick"],
        "study": {"figures": {"full": 96.07, "quick": 96.07}},
        "runs": [{"label": r.label, "seed": 0, "protocol": study} for r in runs],
    }
    collection = Collection(runs, {"fake": GridInfo("fake", None, manifest)})
    frame = {r["label"]: r for r in results_frame(collection, "fake").iter_rows(named=True)}
    assert frame["full"]["difference"] == pytest.approx(96.0 - 96.07)
    assert frame["full"]["protocol"] == ""
    assert frame["quick"]["difference"] is None
    assert frame["quick"]["protocol"] == (
        "data.train_subset = 1000 (study: all), readout.epochs = 3 (study: 50)"
    )
    text = results_markdown(collection, "fake")
    assert table_row(text, "quick") == ["quick", "1", "86.00 ‡", "s0=86.00", "–", "96.07", "–"]
    assert "‡ Not the study's protocol, so no difference is shown: quick: data.train_subset" in text


def test_seeds_of_several_precisions_are_marked_without_a_difference(tmp_path: Path) -> None:
    """One mean ± std is one precision's: a label whose seeds mix them is marked, with which
    seed ran in which, and the report's overview names every precision found."""
    runs = [fake_run(tmp_path, "random", seed, 0.98) for seed in range(3)]
    runs[1].summary["precision"] = "fp32"  # runs[0] recorded none: fp32 too
    runs[2].summary["precision"] = "bf16-auto"
    info = GridInfo("fake", None, {"labels": ["random"], "study": {"figures": {"random": 98.9}}})
    collection = Collection(runs, {"fake": info})
    (row,) = results_frame(collection, "fake").iter_rows(named=True)
    assert row["difference"] is None and row["seeds"] == 3
    assert row["protocol"] == "seeds in more than one precision: fp32 (s0, s1), bf16-auto (s2)"
    text = results_markdown(collection, "fake")
    assert table_row(text, "random")[2] == "98.00 ± 0.00 ‡"
    assert "random: seeds in more than one precision" in text
    single = Collection(runs[:2], {"fake": info})
    (row,) = results_frame(single, "fake").iter_rows(named=True)
    assert row["protocol"] == "" and row["difference"] == pytest.approx(98.0 - 98.9)
    assert "Precision: fp32, bf16-auto." in _overview(runs_frame(collection))
    assert "Precision: fp32." in _overview(runs_frame(single))


def test_a_grid_run_with_protocol_overrides_is_marked(tmp_path: Path) -> None:
    """-s on the command line changes the protocol; the grid file's own is the study's."""
    data = mnist_data()
    grid = write_grid(tmp_path)
    out = tmp_path / "out"
    args = ["grid", grid, "--out", out, "--data-root", data, "--offline", "-q"]
    result = invoke(*args, "-s", "readout.epochs=2", "--only", "zero")
    assert result.exit_code == 0, result.output
    assert "‡ Not the study's protocol" in " ".join(result.stdout.split())
    planned = json.loads((out / "grid.json").read_text())["runs"][0]["protocol"]
    assert planned["readout.epochs"] == 1 and planned["data.train_subset"] == 300
    made = invoke("report", out, "--out", tmp_path / "report")
    assert made.exit_code == 0, made.output
    text = (tmp_path / "report" / "report.md").read_text()
    row = table_row(text, "zero")
    assert row[2].endswith("‡") and row[6] == "–"
    assert "zero: readout.epochs = 2 (study: 1)" in text
