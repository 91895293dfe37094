"""Grid files: expansion, validation (exit 2 naming the key), resuming, and a real tiny grid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hebbkit.errors import GridError
from hebbkit.registry import Registry
from hebbkit.runs.grid import load_grid, parse_seeds
from tests.conftest import REPO
from tests.grid_helpers import TINY_GRID as TINY_TEXT
from tests.grid_helpers import invoke, mnist_data, shared_tiny_grid, user_error, write_grid

# --- expansion -------------------------------------------------------------------------------

PRODUCT = """\
name = "ablation"
base = "base.toml"
seeds = [0, 1]
set = ["readout.epochs=2"]
label = "{layers.0.init}{layers.1.init}"

[grid]
"layers.0.init" = { R = { name = "random", radius = 25.0 }, Z = { name = "zero", scale = "study" } }
"layers.1.init" = { R = { name = "random", radius = 25.0 }, Z = { name = "zero", scale = "study" } }

[study]
figures = { RR = 98.9, ZZ = 70.0 }
"""


def test_product_expansion(tmp_path: Path, registry: Registry) -> None:
    plan = load_grid(write_grid(tmp_path, PRODUCT), registry)
    assert plan.labels == ["RR", "RZ", "ZR", "ZZ"]
    assert len(plan.runs) == 8  # 2 x 2 levels x 2 seeds
    zr = next(r for r in plan.runs if r.label == "ZR" and r.seed == 1)
    assert zr.factors == {"layers.0.init": "Z", "layers.1.init": "R"}
    assert zr.folder == Path("ZR") / "seed1"
    assert [layer.init.name for layer in zr.recipe.layers] == ["zero", "random"]
    assert zr.recipe.seed == 1
    assert zr.recipe.readout.epochs == 2
    # the grid's set first, the levels next, the seed last
    assert zr.overrides[0] == "readout.epochs=2"
    assert zr.overrides[-1] == "seed=1"


def test_runs_cross_the_grid_and_lists_name_their_levels(
    tmp_path: Path, registry: Registry
) -> None:
    text = """\
name = "cross"
base = "base.toml"
[[runs]]
label = "narrow"
set = ["layers.0.channels=4", "layers.1.channels=8"]
[[runs]]
label = "wide"
[grid]
"layers.*.init" = ["random", { name = "zero", scale = "study" }, "random-binary"]
"""
    plan = load_grid(write_grid(tmp_path, text), registry)
    assert plan.labels == [
        f"{width}/{init}"
        for width in ("narrow", "wide")
        for init in ("random", "zero", "random-binary")
    ]
    narrow_zero = next(r for r in plan.runs if r.label == "narrow/zero")
    assert narrow_zero.factors == {"run": "narrow", "layers.*.init": "zero"}
    assert [layer.channels for layer in narrow_zero.recipe.layers] == [4, 8]
    assert {layer.init.name for layer in narrow_zero.recipe.layers} == {"zero"}


def test_composite_run_and_cli_overrides(tmp_path: Path, registry: Registry) -> None:
    text = """\
name = "composite"
base = "base.toml"
seeds = [3]
[[runs]]
label = "zero-on-2"
set = ['layers.1.init={ name = "zero", scale = "study" }', "layers.1.channels=8"]
"""
    plan = load_grid(write_grid(tmp_path, text), registry, cli_overrides=["readout.epochs=4"])
    (run,) = plan.runs
    assert [layer.init.name for layer in run.recipe.layers] == ["random", "zero"]
    assert run.recipe.layers[1].channels == 8
    assert run.recipe.readout.epochs == 4
    assert run.seed == 3 and run.folder == Path("zero-on-2") / "seed3"


def test_only_and_seeds(tmp_path: Path, registry: Registry) -> None:
    plan = load_grid(write_grid(tmp_path, PRODUCT), registry, seeds=[5], only=["Z*"])
    assert [(r.label, r.seed) for r in plan.runs] == [("ZR", 5), ("ZZ", 5)]
    assert plan.labels == ["RR", "RZ", "ZR", "ZZ"]  # the plan still knows every label
    with pytest.raises(GridError, match="matches none"):
        load_grid(write_grid(tmp_path, PRODUCT), registry, only=["nothing*"])


def test_parse_seeds() -> None:
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("0,2, 5") == [0, 2, 5]
    for bad in ("", "a", "1,1", "-1"):
        with pytest.raises(Exception, match="--seeds"):
            parse_seeds(bad)


def test_repeated_auto_names_ask_for_named_levels(tmp_path: Path, registry: Registry) -> None:
    text = """\
name = "same"
base = "base.toml"
[grid]
"layers.0.init" = [{ name = "zero" }, { name = "zero" }]
"""
    with pytest.raises(GridError, match="name them instead"):
        load_grid(write_grid(tmp_path, text), registry)


# --- validation through the command line (exit 2, the key named, no traceback) ---------------


def test_unknown_key_is_named(tmp_path: Path) -> None:
    grid = write_grid(tmp_path, TINY_TEXT.replace("seeds = [0]", "seeds = [0]\nsede = 1"))
    output = user_error("grid", grid, "--dry-run")
    assert "sede: unknown key" in output
    assert "Allowed here" in output


def test_unknown_run_key_is_named(tmp_path: Path) -> None:
    grid = write_grid(tmp_path, TINY_TEXT.replace('label = "zero"', 'label = "zero"\nsett = []'))
    output = user_error("grid", grid, "--dry-run")
    assert "runs.1.sett: unknown key" in output
    assert "Did you mean 'set'?" in output


def test_bad_override_names_run_and_recipe_key(tmp_path: Path) -> None:
    grid = write_grid(tmp_path, TINY_TEXT.replace("set = []", 'set = ["readout.epoch=3"]'))
    output = user_error("grid", grid, "--dry-run")
    assert "run 'random'" in output
    assert "readout.epoch: unknown key" in output
    assert "none was started" in output


def test_a_shape_the_initializer_refuses_stops_the_grid_before_it_starts(tmp_path: Path) -> None:
    refused = 'set = ["layers.0.init=hadamard-distinct", "layers.0.kernel=1"]'
    grid = write_grid(tmp_path, TINY_TEXT.replace("set = []", refused))
    output = " ".join(user_error("grid", grid, "--dry-run").split())
    assert "run 'random': ImpossibleShapeError" in output
    assert "none was started" in output


def test_bad_override_value_and_form(tmp_path: Path) -> None:
    grid = write_grid(tmp_path, TINY_TEXT.replace("set = []", 'set = ["layers.0.channels=-4"]'))
    assert "layers.0.channels = -4" in user_error("grid", grid, "--dry-run")
    grid = write_grid(tmp_path, TINY_TEXT.replace("set = []", 'set = ["readout.epochs"]'))
    assert "dotted.path=VALUE" in user_error("grid", grid, "--dry-run")
    assert "not a run label" in user_error(
        "grid", write_grid(tmp_path, TINY_TEXT.replace("zero = 50.0", "zeroo = 50.0")), "--dry-run"
    )
    assert "seeds = [...]" in user_error("grid", grid, "-s", "seed=3", "--dry-run")


def test_missing_grid_file_and_base(tmp_path: Path) -> None:
    assert "does not exist" in user_error("grid", tmp_path / "nope.toml")
    grid = write_grid(tmp_path, TINY_TEXT.replace('base = "base.toml"', 'base = "other.toml"'))
    assert "base = 'other.toml'" in user_error("grid", grid, "--dry-run")


def test_dry_run_lists_runs_and_starts_nothing(tmp_path: Path) -> None:
    grid = write_grid(tmp_path, PRODUCT)
    out = tmp_path / "out"
    result = invoke("grid", grid, "--out", out, "--dry-run")
    assert result.exit_code == 0, result.output
    for label in ("RR", "RZ", "ZR", "ZZ"):
        assert label in result.stdout
    assert "8 to run" in result.stdout
    assert not out.exists()


# --- a real grid: two runs on 300 MNIST images -------------------------------------------------


@pytest.fixture(scope="module")
def tiny_grid(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return shared_tiny_grid(tmp_path_factory)


def test_grid_writes_run_folders_and_manifest(tiny_grid: tuple[Path, Path]) -> None:
    _, out = tiny_grid
    for label in ("random", "zero"):
        folder = out / label / "seed0"
        for name in ("summary.json", "recipe.toml", "metrics.parquet", "weights.pt"):
            assert (folder / name).is_file(), (label, name)
    manifest = json.loads((out / "grid.json").read_text())
    assert manifest["grid"] == "tiny"
    assert manifest["labels"] == ["random", "zero"]
    assert manifest["study"]["figures"] == {"random": 90.0, "zero": 50.0}
    assert manifest["command"][:2] == ["hebbkit", "grid"]
    zero = json.loads((out / "zero" / "seed0" / "summary.json").read_text())
    assert zero["components"]["layers.0.init"]["name"] == "zero"


def test_second_invocation_runs_nothing(tiny_grid: tuple[Path, Path]) -> None:
    grid, out = tiny_grid
    summary = out / "random" / "seed0" / "summary.json"
    before = summary.stat().st_mtime_ns
    result = invoke("grid", grid, "--out", out, "--data-root", mnist_data(), "--offline", "-q")
    assert result.exit_code == 0, result.output
    assert "2 finished before, 0 to run" in result.output
    assert summary.stat().st_mtime_ns == before
    # the closing table: both runs, the study's figure and the difference
    random = json.loads(summary.read_text())["test_accuracy"] * 100
    assert f"{random:.2f}" in result.stdout
    assert f"{random - 90.0:+.2f}" in result.stdout


def test_changed_recipe_is_not_silently_reused(tiny_grid: tuple[Path, Path]) -> None:
    grid, out = tiny_grid
    output = user_error("grid", grid, "--out", out, "-s", "readout.epochs=2")
    assert "made by a different recipe" in output
    assert "readout.epochs" in output


def test_another_grid_refuses_the_folder(tiny_grid: tuple[Path, Path], tmp_path: Path) -> None:
    _, out = tiny_grid
    other = write_grid(tmp_path, TINY_TEXT.replace('name = "tiny"', 'name = "other"'))
    assert "holds the grid 'tiny'" in user_error("grid", other, "--out", out)


@pytest.mark.ray
def test_grid_through_ray(tmp_path: Path) -> None:
    """One run through a local Ray (Tune schedules, the trial is an ordinary run)."""
    pytest.importorskip("ray")
    grid = write_grid(tmp_path, TINY_TEXT)
    out = tmp_path / "out"
    result = invoke(
        "grid", grid, "--out", out, "--only", "zero", "--address", "local",
        "--data-root", mnist_data(), "--offline", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (out / "zero" / "seed0" / "summary.json").is_file()
    assert not (out / "random").exists()
    assert "[1/1] zero seed 0 finished" in result.output
    assert "Last result" not in result.output  # Ray's own trial lines stay out


@pytest.mark.parametrize(
    "path", sorted((REPO / "recipes" / "study").glob("*.toml")), ids=lambda p: p.name
)
def test_shipped_grids_validate(path: Path) -> None:
    """Every grid in recipes/study plans runs whose recipes all validate."""
    result = invoke("grid", path, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Every run's recipe is valid" in result.output
