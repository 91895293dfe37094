"""Reusing a Hebbian phase: the Hebbian config hash, ``--hebbian-from``, ``hebbkit eval``,
and grids and searches that learn one Hebbian phase per distinct Hebbian config."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import torch
from typer.testing import CliRunner

from hebbkit.cli.app import app
from hebbkit.config.recipe import (
    first_difference,
    hebbian_config,
    hebbian_hash,
    is_hebbian_path,
    validate_recipe,
)
from hebbkit.config.search_space import SearchConfig
from hebbkit.plugins import get_registry
from hebbkit.runs.evaluate import load_model
from hebbkit.runs.search import SearchPlan
from tests.grid_helpers import BASE_RECIPE, invoke, mnist_data, user_error, write_grid

runner = CliRunner()
TIMING = ("seconds", "images_per_second")


def recipe(**changes: Any) -> Any:
    data = copy.deepcopy(BASE_RECIPE)
    for path, value in changes.items():
        node = data
        *parents, last = path.split("__")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        node[last] = value
    return validate_recipe(data, get_registry())


# --- which keys decide the Hebbian weights ---------------------------------------------------


def test_read_out_keys_keep_the_hash_and_hebbian_keys_change_it() -> None:
    base = hebbian_hash(recipe())
    for same in (
        {"readout__lr": 0.01},
        {"readout__epochs": 7},
        {"data__test_subset": 50},
        {"hebbian__diagnostics": 0},
        {"name": "other"},
        {"description": "words"},
    ):
        assert hebbian_hash(recipe(**same)) == base, same
    for different in (
        {"seed": 1},
        {"deterministic": False},
        {"data__train_subset": 200},
        {"data__validation": 50},
        {"data__dataset": "fashion_mnist"},
        {"hebbian__batch_size": 16},
        {"layers__1__channels": 12},
        {"layers__0__plasticity": {"name": "softhebb", "lr": 0.01}},
    ):
        assert hebbian_hash(recipe(**different)) != base, different


def test_hebbian_paths() -> None:
    for path in ("seed", "layers.*.init", "layers.0.plasticity.lr", "hebbian.epochs", "data"):
        assert is_hebbian_path(path), path
    for path in ("readout.lr", "data.test_subset", "hebbian.diagnostics", "name", "seeds"):
        assert not is_hebbian_path(path), path


def test_first_difference_follows_recipe_order() -> None:
    mine = hebbian_config(recipe(**{"seed": 3, "layers__1__kernel": 5}))
    theirs = hebbian_config(recipe())
    assert first_difference(mine, theirs) == "seed"
    assert first_difference(mine, mine) is None
    assert first_difference({"a": 1}, {"a": 1, "b": 2}) == "b"


def test_searches_share_phases_only_over_read_out_keys_and_few_hebbian_values() -> None:
    def plan(space: dict[str, Any]) -> SearchPlan:
        search = SearchConfig.model_validate({"space": space})
        return SearchPlan("x.toml", {}, search, "x", 1)

    assert plan({"readout.lr": {"loguniform": [1e-4, 1e-2]}}).shares_hebbian_phases
    assert plan(
        {"readout.lr": {"grid": [0.1, 0.2]}, "seed": {"grid": [0, 1]}}
    ).shares_hebbian_phases
    assert not plan({"layers.0.plasticity.lr": {"grid": [0.1, 0.2]}}).shares_hebbian_phases
    both = {"readout.lr": {"grid": [0.1]}, "layers.0.plasticity.lr": {"uniform": [0.01, 0.1]}}
    assert not plan(both).shares_hebbian_phases


# --- --hebbian-from and eval on real runs ----------------------------------------------------


def run(recipe_path: Path, out: Path, *extra: str) -> dict[str, Any]:
    args = ["run", str(recipe_path), "--out", str(out), "--data-root", str(mnist_data())]
    result = runner.invoke(app, [*args, "--offline", "-q", *extra])
    assert result.exit_code == 0, result.output
    return json.loads((out / "summary.json").read_text())


def copy_with_summary(
    folder: Path, target: Path, edit: Callable[[dict[str, Any]], dict[str, Any]]
) -> Path:
    """A copy of the run ``folder``'s files at ``target``, its summary.json passed through
    ``edit``."""
    target.mkdir()
    for path in folder.iterdir():
        if path.is_file():
            (target / path.name).write_bytes(path.read_bytes())
    stored = json.loads((target / "summary.json").read_text())
    (target / "summary.json").write_text(json.dumps(edit(stored)))
    return target


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    """A finished two-layer run: (its recipe file, its folder, its summary)."""
    folder = tmp_path_factory.mktemp("reuse")
    write_grid(folder)  # writes base.toml
    out = folder / "source"
    return folder / "base.toml", out, run(folder / "base.toml", out)


@pytest.mark.integration
def test_hebbian_from_skips_the_phase_and_reproduces_the_run(
    source: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    recipe_path, folder, summary = source
    assert len(summary["hebbian_hash"]) == 16
    again = run(recipe_path, tmp_path / "again", "--hebbian-from", str(folder))
    assert again["hebbian_from"] == str(folder)
    assert again["hebbian_hash"] == summary["hebbian_hash"]
    # same seed, same weights: the same read-out, to the last bit
    assert again["test_accuracy"] == summary["test_accuracy"]
    assert again["train_accuracy"] == summary["train_accuracy"]
    assert again["seconds"]["hebbian"] < 0.5 * summary["seconds"]["hebbian"]
    assert again["hebbian_layers"] == summary["hebbian_layers"]
    old = torch.load(folder / "weights.pt", weights_only=True)
    new = torch.load(tmp_path / "again" / "weights.pt", weights_only=True)
    for key, value in old["network"].items():
        assert torch.equal(value, new["network"][key]), key
    # the run folder holds the reused phase's diagnostics, as if it had learnt them
    for name in ("metrics.parquet", "winners.parquet"):
        theirs = pl.read_parquet(folder / name)
        mine = pl.read_parquet(tmp_path / "again" / name)
        if "phase" in theirs.columns:
            theirs = theirs.filter(pl.col("phase").is_in(["hebbian", "hebbian_trace"]))
            mine = mine.filter(pl.col("phase").is_in(["hebbian", "hebbian_trace"]))
        assert mine.select(theirs.columns).equals(theirs), name


@pytest.mark.integration
def test_hebbian_from_trains_another_read_out(
    source: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    recipe_path, folder, summary = source
    other = run(
        recipe_path, tmp_path / "lr", "--hebbian-from", str(folder), "-s", "readout.lr=0.01"
    )
    assert other["hebbian_from"] == str(folder)
    assert other["test_accuracy"] != summary["test_accuracy"]


@pytest.mark.integration
def test_hebbian_from_refuses_another_hebbian_config(
    source: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    recipe_path, folder, summary = source
    args = ["run", recipe_path, "--out", tmp_path / "x", "--data-root", mnist_data()]
    output = user_error(*args, "--hebbian-from", folder, "-s", "layers.1.kernel=5")
    assert "layers.1.kernel is 3 there but 5 here" in output
    output = user_error(*args, "--hebbian-from", folder, "-s", "seed=2")
    assert "seed is 0 there but 2 here" in output
    assert "not a finished run" in user_error(*args, "--hebbian-from", tmp_path)
    # the same recipe learns other weights in bf16: a phase is reused only in its precision
    output = user_error(*args, "--hebbian-from", folder, "--precision", "bf16")
    assert f"learnt its Hebbian weights with --precision {summary['precision']}" in output
    assert not (tmp_path / "x").exists()


@pytest.mark.integration
def test_hebbian_from_on_auto_continues_in_the_runs_precision(
    source: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    """Without --precision a reuse computes in the precision of the run it reuses, whatever
    auto would pick on this machine; an explicit other precision is still refused."""
    recipe_path, folder, _ = source
    bf16 = copy_with_summary(
        folder, tmp_path / "bf16", lambda stored: {**stored, "precision": "bf16"}
    )
    again = run(recipe_path, tmp_path / "again", "--hebbian-from", str(bf16))
    assert again["precision"] == "bf16"
    assert [layer["product_dtype"] for layer in again["hebbian_layers"]] == ["bfloat16"] * 2
    args = ["run", recipe_path, "--out", tmp_path / "x", "--data-root", mnist_data()]
    output = user_error(*args, "--hebbian-from", bf16, "--precision", "fp32")
    assert "learnt its Hebbian weights with --precision bf16" in output


@pytest.mark.integration
def test_hebbian_from_an_older_run_without_the_hash(
    source: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    """Runs made before the hash existed: it is computed from their recipe.toml."""
    recipe_path, folder, summary = source

    def without_hash(stored: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in stored.items() if k != "hebbian_hash"}

    old = copy_with_summary(folder, tmp_path / "old", without_hash)
    again = run(recipe_path, tmp_path / "again", "--hebbian-from", str(old))
    assert again["test_accuracy"] == summary["test_accuracy"]
    args = ["run", recipe_path, "--out", tmp_path / "x", "--data-root", mnist_data()]
    output = user_error(*args, "--hebbian-from", old, "-s", "data.train_subset=200")
    assert "data.train_subset is 300 there but 200 here" in output


@pytest.mark.integration
def test_eval_reproduces_the_recorded_accuracy(
    source: tuple[Path, Path, dict[str, Any]],
) -> None:
    _, folder, summary = source
    result = invoke("eval", folder, "--data-root", mnist_data(), "--offline", "--json")
    assert result.exit_code == 0, result.output
    evaluation = json.loads(result.stdout)
    assert evaluation["dataset"] == "mnist"
    assert evaluation["test_images"] == summary["test_images"]
    assert evaluation["test_accuracy"] == summary["test_accuracy"]
    assert evaluation["recorded"] == {"test_accuracy": summary["test_accuracy"]}
    assert evaluation["precision"] == summary["precision"]  # the run's own
    args = ["eval", folder, "--data-root", mnist_data(), "--offline", "--json"]
    bf16 = json.loads(invoke(*args, "--precision", "bf16").stdout)
    assert bf16["precision"] == "bf16"
    assert abs(bf16["test_accuracy"] - summary["test_accuracy"]) < 0.05
    assert "is not a precision" in user_error(*args, "--precision", "fp8")
    table = invoke("eval", folder, "--data-root", mnist_data(), "--offline", "-q")
    assert table.exit_code == 0, table.output
    assert f"{100 * summary['test_accuracy']:.2f}%" in table.stdout


@pytest.mark.integration
def test_eval_on_another_dataset(
    source: tuple[Path, Path, dict[str, Any]], shared_data: Path
) -> None:
    _, folder, _ = source
    if not (shared_data / "FashionMNIST").is_dir():
        pytest.skip("no Fashion-MNIST in the shared datasets")
    result = invoke("eval", folder, "--dataset", "fashion_mnist", "--data-root", shared_data)
    assert result.exit_code == 0, result.output
    assert "fashion_mnist" in result.stdout
    assert "recorded" in result.stdout  # the column; nothing recorded on another dataset
    assert "unknown dataset" in user_error("eval", folder, "--dataset", "nope").lower()


@pytest.mark.integration
def test_load_model_classifies_like_the_run(source: tuple[Path, Path, dict[str, Any]]) -> None:
    _, folder, _ = source
    recipe_, network, readout = load_model(folder, get_registry(), torch.device("cpu"))
    assert recipe_.name == "grid_base"
    images = torch.rand(4, 1, 28, 28)
    assert readout(network(images).flatten(1)).shape == (4, 10)
    assert not readout.training and not network.training


# --- grids learn each distinct Hebbian phase once --------------------------------------------

READOUT_GRID = """\
name = "readout-lr"
base = "base.toml"
seeds = [0]

[grid]
"readout.lr" = [0.001, 0.003, 0.01]
"""


@pytest.mark.integration
def test_grid_over_read_out_keys_learns_one_hebbian_phase(tmp_path: Path) -> None:
    """Runs to do that share a phase go through the grid's cache; a run added later takes it
    from a finished run's folder."""
    grid = write_grid(tmp_path, READOUT_GRID)
    out = tmp_path / "out"
    args = ["grid", grid, "--out", out, "--data-root", mnist_data(), "--offline", "-q"]
    result = invoke(*args, "--only", "0.001", "--only", "0.003")
    assert result.exit_code == 0, result.output
    assert result.output.count("(Hebbian phase reused)") == 1
    assert not (out / ".hebbian-cache").exists()  # removed once its runs finished
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert result.output.count("(Hebbian phase reused)") == 1
    summaries = {
        lr: json.loads((out / lr / "seed0" / "summary.json").read_text())
        for lr in ("0.001", "0.003", "0.01")
    }
    assert len({s["hebbian_hash"] for s in summaries.values()}) == 1
    assert "hebbian_from" not in summaries["0.001"]
    # through the cache: the summary names the run that learnt the phase
    assert summaries["0.003"]["hebbian_from"] == str(out / "0.001" / "seed0")
    assert summaries["0.01"]["hebbian_from"] in {str(out / lr / "seed0") for lr in summaries}
    assert summaries["0.01"]["hebbian_layers"] == summaries["0.001"]["hebbian_layers"]
    assert len({s["test_accuracy"] for s in summaries.values()}) == 3  # different read-outs
