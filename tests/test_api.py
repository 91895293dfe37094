"""The Python API for notebooks: ``hebbkit.run`` and ``hebbkit.load_run``; provenance (git
commit and dirty flag, command line) in the summary and the report."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import torch

import hebbkit
from hebbkit.engine.network import HebbianNetwork
from hebbkit.errors import HebbkitError
from hebbkit.reports.collect import collect
from hebbkit.reports.report import runs_frame, write_report
from hebbkit.runs.provenance import git_state
from tests.conftest import REPO, TINY_RECIPE
from tests.grid_helpers import mnist_data


def test_import_hebbkit_stays_light() -> None:
    code = (
        "import sys, hebbkit; assert 'torch' not in sys.modules; "
        "assert callable(hebbkit.run) and callable(hebbkit.load_run); "
        "assert 'torch' in sys.modules; "
        "assert {'run', 'load_run', 'RunResult'} <= set(dir(hebbkit))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        hebbkit.nothing  # noqa: B018


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> hebbkit.RunResult:
    recipe = copy.deepcopy(TINY_RECIPE)
    recipe["data"].update(train_subset=400, test_subset=200)
    out = tmp_path_factory.mktemp("api") / "run"
    return hebbkit.run(
        recipe,
        overrides=["readout.epochs=2", "name=notebook"],
        out=out,
        data_root=mnist_data(),
        offline=True,
        track=[],
        precision="bf16",
        progress=False,
    )


def test_run_checks_the_precision_before_running(tmp_path: Path) -> None:
    with pytest.raises(HebbkitError, match="'fp8' is not a precision"):
        hebbkit.run(TINY_RECIPE, out=tmp_path / "run", precision="fp8", progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.integration
def test_run_returns_a_typed_result(result: hebbkit.RunResult) -> None:
    assert result.recipe.name == "notebook" and result.recipe.readout.epochs == 2
    assert result.summary["precision"] == "bf16"
    assert 0.1 < result.test_accuracy <= 1 and 0.1 < result.train_accuracy <= 1
    assert result.validation_accuracy is None
    assert result.summary["test_images"] == 200
    assert set(result.seconds) >= {"hebbian", "features", "readout", "total"}
    assert isinstance(result.metrics, pl.DataFrame)
    readout = result.metrics.filter(pl.col("phase") == "readout")
    assert readout["epoch"].to_list() == [1, 2]
    assert readout["test_accuracy"][-1] == result.test_accuracy
    for path in (result.recipe_path, result.summary_path, result.metrics_path, result.weights_path):
        assert path.is_file() and path.parent == result.folder
    assert isinstance(result.network, HebbianNetwork)
    logits = result.model(torch.rand(3, 1, 28, 28))
    assert logits.shape == (3, 10)


@pytest.mark.integration
def test_load_run_reads_the_same_run(result: hebbkit.RunResult) -> None:
    again = hebbkit.load_run(result.folder)
    assert again.folder == result.folder
    assert again.test_accuracy == result.test_accuracy
    assert again.recipe == result.recipe
    assert again.metrics.equals(result.metrics)
    images = torch.rand(2, 1, 28, 28)
    assert torch.equal(again.model(images), result.model(images))


@pytest.mark.integration
def test_summary_and_report_record_provenance(result: hebbkit.RunResult, tmp_path: Path) -> None:
    summary = result.summary
    assert summary["command"] == sys.argv
    if git_state(REPO) is not None:  # a git checkout (CI's clone is one)
        state = summary["git"]["hebbkit"]
        assert state["commit"] == git_state(REPO)["commit"]
        assert isinstance(state["dirty"], bool)
    assert "recipe" not in summary["git"]  # a recipe given as data has no folder
    frame = runs_frame(collect([result.folder]))
    expected = _short(summary["git"].get("hebbkit"))
    assert frame["hebbkit_commit"].to_list() == [expected]
    report = write_report([result.folder], tmp_path / "report").read_text()
    if expected:
        assert f"hebbkit at `{expected}`" in report


def _short(state: dict | None) -> str | None:
    if not state:
        return None
    return state["commit"][:7] + ("+dirty" if state["dirty"] else "")


def test_git_state_of_a_recipe_folder(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    recipe = tmp_path / "recipes" / "r.toml"
    recipe.parent.mkdir()
    recipe.write_text("name = 'r'\n")
    assert git_state(recipe) is None  # not a repository
    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    assert git_state(recipe) is None  # no commit yet
    (tmp_path / "other.txt").write_text("x")
    git("add", "other.txt")
    git("commit", "-qm", "first")
    state = git_state(recipe)
    assert state is not None and len(state["commit"]) == 40
    assert state["dirty"] is False and state["file"] == "untracked"
    git("add", "recipes/r.toml")
    git("commit", "-qm", "recipe")
    assert git_state(recipe)["file"] == "committed"
    recipe.write_text("name = 'changed'\n")
    state = git_state(recipe)
    assert state["dirty"] is True and state["file"] == "modified"
    assert git_state(recipe.parent)["dirty"] is True
