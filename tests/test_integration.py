"""End to end on a small real MNIST subset from ../shared/datasets (HEBBKIT_TEST_DATA)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl
import pytest
import tomli_w
from typer.testing import CliRunner

from hebbkit.cli.app import app
from tests.conftest import RECIPES

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

pytestmark = pytest.mark.integration

runner = CliRunner()
SMALL = ["data.train_subset=1500", "data.test_subset=500", "readout.epochs=3"]
TIMING = ("seconds", "images_per_second")


def run(recipe: Path, out: Path, data: Path, overrides: list[str]) -> dict:
    args = ["run", str(recipe), "--out", str(out), "--data-root", str(data), "--offline", "-q"]
    for override in overrides:
        args += ["-s", override]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Run folder" in result.stdout
    return json.loads((out / "summary.json").read_text())


def without_timing(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop([c for c in frame.columns if c in TIMING])


@pytest.fixture(scope="module")
def zero_run(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("runs") / "zero"
    return out, run(RECIPES / "mnist_zero.toml", out, shared_data, SMALL)


def test_zero_recipe_beats_chance(zero_run: tuple[Path, dict]) -> None:
    _, summary = zero_run
    assert summary["test_accuracy"] > 0.7  # chance is 0.1
    assert summary["train_accuracy"] > 0.7


def test_run_folder_contents(zero_run: tuple[Path, dict]) -> None:
    out, summary = zero_run
    for name in ("recipe.toml", "metrics.parquet", "metrics.csv", "summary.json", "filters.png"):
        assert (out / name).is_file(), name
    assert (out / "filters.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the resolved recipe, overrides applied
    recipe = tomllib.loads((out / "recipe.toml").read_text())
    assert recipe["data"]["train_subset"] == 1500 and recipe["readout"]["epochs"] == 3
    assert recipe["layers"][0]["init"] == {"name": "zero", "scale": "study"}
    # the summary
    for key in ("test_accuracy", "train_accuracy"):
        assert 0.0 <= summary[key] <= 1.0
    assert summary["seed"] == 0 and summary["recipe"] == "mnist_zero"
    assert summary["train_images"] == 1500 and summary["test_images"] == 500
    assert {"hebbian", "readout", "total"} <= set(summary["seconds"])
    assert all(value >= 0 for value in summary["seconds"].values())
    (rate,) = summary["hebbian_images_per_second"]
    assert rate > 0
    assert summary["peak_rss_bytes"] > 0
    assert {"hebbkit", "torch", "python"} <= set(summary["versions"])
    assert summary["components"]["layers.0.init"]["name"] == "zero"
    # metrics: one row per epoch and phase, the same in parquet and csv
    metrics = pl.read_parquet(out / "metrics.parquet")
    assert metrics.filter(pl.col("phase") == "hebbian").height == 1
    readout = metrics.filter(pl.col("phase") == "readout")
    assert readout["epoch"].to_list() == [1, 2, 3]
    assert readout["test_accuracy"][-1] == pytest.approx(summary["test_accuracy"])
    csv = pl.read_csv(out / "metrics.csv")
    assert csv.columns == metrics.columns and csv.height == metrics.height


def test_same_seed_gives_identical_metrics(
    zero_run: tuple[Path, dict], shared_data: Path, tmp_path: Path
) -> None:
    first_out, first = zero_run
    second = run(RECIPES / "mnist_zero.toml", tmp_path / "again", shared_data, SMALL)
    assert second["test_accuracy"] == first["test_accuracy"]
    assert second["train_accuracy"] == first["train_accuracy"]
    a = without_timing(pl.read_parquet(first_out / "metrics.parquet"))
    b = without_timing(pl.read_parquet(tmp_path / "again" / "metrics.parquet"))
    assert a.equals(b), f"{a}\n!=\n{b}"


def test_multi_layer_preset_runs(shared_data: Path, tmp_path: Path) -> None:
    """The 3-layer SoftHebb preset with few channels, greedy, plus a validation split."""
    summary = run(
        RECIPES / "mnist_softhebb.toml",
        tmp_path / "three",
        shared_data,
        [
            "layers.0.channels=16",
            "layers.1.channels=32",
            "layers.2.channels=64",
            "data.train_subset=600",
            "data.test_subset=300",
            "data.validation=200",
            "readout.epochs=2",
        ],
    )
    assert len(summary["hebbian_images_per_second"]) == 3
    assert summary["validation_images"] == 200
    assert 0.0 <= summary["validation_accuracy"] <= 1.0
    assert summary["test_accuracy"] > 0.3  # chance is 0.1; few images, few epochs
    metrics = pl.read_parquet(tmp_path / "three" / "metrics.parquet")
    assert metrics.filter(pl.col("phase") == "hebbian")["layer"].to_list() == [0, 1, 2]


def test_kept_front_gives_the_numbers_of_a_run_that_computes_it(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 3-layer preset, small, 2 Hebbian epochs and a validation split: the run keeps the
    layers' inputs (layer 2's epochs write them, layer 3's read and convert them, the training
    features read them) and computes exactly what a run without them does."""
    overrides = [
        "layers.0.channels=8",
        "layers.1.channels=16",
        "layers.2.channels=32",
        "hebbian.epochs=2",
        "data.train_subset=400",
        "data.test_subset=200",
        "data.validation=100",
        "readout.epochs=2",
    ]
    kept = run(RECIPES / "mnist_softhebb.toml", tmp_path / "kept", shared_data, overrides)
    # one float32 row per image of the widest input, layer 1's output (8 × 14 × 14)
    assert kept["front_cache"] == {"layer": 2, "bytes": kept["train_images"] * 8 * 14 * 14 * 4}
    monkeypatch.setattr("hebbkit.runs.run.keep_front", lambda *args: None)
    plain = run(RECIPES / "mnist_softhebb.toml", tmp_path / "plain", shared_data, overrides)
    assert plain["front_cache"] is None
    for key in ("train_accuracy", "validation_accuracy", "test_accuracy"):
        assert kept[key] == plain[key]
    a = without_timing(pl.read_parquet(tmp_path / "kept" / "metrics.parquet"))
    b = without_timing(pl.read_parquet(tmp_path / "plain" / "metrics.parquet"))
    assert a.equals(b), f"{a}\n!=\n{b}"


def test_two_layer_all_at_once(shared_data: Path, tmp_path: Path) -> None:
    """Two Hebbian blocks of the preset (ZerO init) trained in one pass."""
    data = tomllib.loads((RECIPES / "mnist_softhebb.toml").read_text())
    data["layers"] = data["layers"][:2]
    recipe = tmp_path / "two.toml"
    recipe.write_text(tomli_w.dumps(data))
    summary = run(
        recipe,
        tmp_path / "two",
        shared_data,
        [
            "layers.0.channels=8",
            "layers.1.channels=16",
            'layers.*.init={name="zero", scale="study"}',
            "hebbian.mode=all-at-once",
            "data.train_subset=500",
            "data.test_subset=300",
            "readout.epochs=1",
        ],
    )
    assert len(summary["hebbian_layers"]) == 2
    assert 0.0 <= summary["test_accuracy"] <= 1.0
