"""The command line through typer's runner, including user errors (exit 2, message, no
traceback)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hebbkit.cli.app import app
from tests.conftest import RECIPES, TINY_RECIPE

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

runner = CliRunner()
ZERO = str(RECIPES / "mnist_zero.toml")


def invoke(*args: str):
    return runner.invoke(app, list(args))


def user_error(*args: str) -> str:
    """Run a command that must fail as a user error; return its combined output."""
    result = invoke(*args)
    output = result.output
    assert result.exit_code == 2, output
    assert "Traceback" not in output
    assert "Error:" in result.stderr
    assert isinstance(result.exception, SystemExit)
    return output


# --- commands that work --------------------------------------------------------------------


def test_plugins_table() -> None:
    result = invoke("plugins")
    assert result.exit_code == 0, result.output
    for word in ("initializer", "plasticity", "competition", "softhebb", "zero", "hebbkit"):
        assert word in result.stdout


def test_plugins_json() -> None:
    result = invoke("plugins", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    names = {(row["family"], row["name"]) for row in rows}
    expected = {
        ("initializer", "zero"),
        ("initializer", "random"),
        ("initializer", "random-binary"),
        ("plasticity", "softhebb"),
        ("plasticity", "oja"),
        ("plasticity", "hebb"),
        ("competition", "soft"),
        ("competition", "softkrotov"),
        ("competition", "hard"),
        ("competition", "hardkrotov"),
        ("activation", "softmax"),
        ("activation", "repu"),
        ("activation", "triangle"),
        ("pooling", "max"),
        ("pooling", "avg"),
        ("pooling", "identity"),
        ("dataset", "mnist"),
        ("dataset", "fashion_mnist"),
        ("dataset", "cifar10"),
        ("dataset", "stl10"),
    }
    assert expected <= names
    zero = next(row for row in rows if row["name"] == "zero")
    assert zero["distribution"] == "hebbkit" and zero["version"]
    assert zero["plugin"] and zero["parameters"] == ["scale"]


def test_recipe_show_applies_overrides_and_reloads() -> None:
    result = invoke("recipe", "show", ZERO, "-s", "readout.epochs=3", "--set", "layers.0.init=zero")
    assert result.exit_code == 0, result.output
    shown = tomllib.loads(result.stdout)
    assert shown["readout"]["epochs"] == 3
    assert shown["layers"][0]["init"] == {"name": "zero", "scale": "paper"}
    assert shown["layers"][0]["padding_mode"] == "reflect"  # defaults filled in


def test_recipe_validate() -> None:
    result = invoke("recipe", "validate", ZERO)
    assert result.exit_code == 0, result.output
    assert "valid" in result.stdout and "mnist_zero" in result.stdout


def test_inspect_json_reports_the_study_counts() -> None:
    result = invoke(
        "inspect",
        str(RECIPES / "mnist_softhebb.toml"),
        "-s",
        'layers.*.init={name="zero", scale="study"}',
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = report["layers"]
    assert [row["input_map"] for row in rows] == [[1, 28, 28], [96, 14, 14], [384, 7, 7]]
    assert [row["output_map"] for row in rows] == [[96, 14, 14], [384, 7, 7], [1536, 3, 3]]
    memory = report["memory"]
    cache = [p for p in memory["parts"] if p["what"].startswith("cached features")]
    # 70 000 images × 1536·3·3 features; float16 above 2 GiB of float32
    assert cache[0]["bytes"] == 70_000 * 13_824 * 2
    assert memory["peak_bytes"] >= cache[0]["bytes"]
    assert [row["nonzero_weights"] for row in rows] == [96, 36_864, 589_824]
    assert [row["distinct_filters"] for row in rows] == [1, 128, 512]
    assert [row["init"] for row in rows] == ["zero"] * 3
    assert rows[0]["parameters"] == 96 * 25
    for key in ("shape", "mean_norm", "initial_lr"):
        assert key in rows[0]


def test_inspect_table() -> None:
    result = invoke("inspect", ZERO)
    assert result.exit_code == 0, result.output
    # the table may wrap at the runner's 80 columns; the parameter count fits in a cell
    assert "mnist_zero" in result.stdout and "1152" in result.stdout and "zero" in result.stdout


# --- user errors ---------------------------------------------------------------------------


def test_missing_recipe_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    for command in (["recipe", "validate"], ["recipe", "show"], ["inspect"], ["run"]):
        assert str(missing) in user_error(*command, str(missing))


def test_invalid_toml(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[data\n')
    output = user_error("recipe", "validate", str(bad))
    assert str(bad) in output and "not valid TOML" in output


def test_unknown_component(write_recipe: Callable[..., Path]) -> None:
    path = write_recipe()
    output = user_error("recipe", "validate", str(path), "-s", "layers.0.init.name=zeor")
    assert "layers.0.init.name" in output and "Did you mean 'zero'?" in output
    assert str(path) in output


def test_bad_value(write_recipe: Callable[..., Path]) -> None:
    data = {**TINY_RECIPE, "readout": {"epochs": -3}}
    output = user_error("inspect", str(write_recipe(data)))
    assert "readout.epochs = -3" in output


def test_bad_set_form() -> None:
    output = user_error("recipe", "show", ZERO, "-s", "readout.epochs")
    assert "'readout.epochs'" in output and "dotted.path=VALUE" in output
    output = user_error("recipe", "show", ZERO, "-s", "layers.4.init=zero")
    assert "layers.4.init" in output


@pytest.mark.parametrize("device", ["tpu", "gpu0"])
def test_bad_device(tmp_path: Path, device: str) -> None:
    out = tmp_path / "run"
    output = user_error("run", ZERO, "--device", device, "--out", str(out), "--offline", "-q")
    assert repr(device) in output and "--device" in output
    assert not out.exists()


def test_missing_data_root(tmp_path: Path) -> None:
    out = tmp_path / "run"
    output = user_error(
        "run", ZERO, "--data-root", "/nonexistent", "--offline", "--out", str(out), "-q"
    )
    assert "/nonexistent" in output
    assert not out.exists()  # a failed run never becomes the run folder


def test_missing_dataset_files(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    output = user_error(
        "run", ZERO, "--data-root", str(root), "--offline", "--out", str(tmp_path / "r"), "-q"
    )
    assert str(root / "MNIST" / "raw") in output
    assert "train-images-idx3-ubyte" in output and "--offline" in output


def test_out_folder_not_empty_is_left_untouched(tmp_path: Path) -> None:
    out = tmp_path / "earlier"
    out.mkdir()
    (out / "summary.json").write_text('{"test_accuracy": 0.5}\n')
    (out / "notes.txt").write_text("keep me\n")
    output = user_error("run", ZERO, "--out", str(out), "--data-root", "/nonexistent", "--offline")
    assert str(out) in output and "--overwrite" in output
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "summary.json"]
    assert (out / "summary.json").read_text() == '{"test_accuracy": 0.5}\n'
    assert (out / "notes.txt").read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier"]


def test_failed_run_with_overwrite_keeps_earlier_folder(tmp_path: Path) -> None:
    """--overwrite replaces a folder only once the new run succeeded."""
    out = tmp_path / "earlier"
    out.mkdir()
    (out / "summary.json").write_text("{}\n")
    user_error(
        "run", ZERO, "--out", str(out), "--overwrite", "--data-root", "/nonexistent", "--offline"
    )
    assert (out / "summary.json").read_text() == "{}\n"


def test_no_command_shows_help() -> None:
    result = invoke()
    assert "run" in result.output and "inspect" in result.output and "plugins" in result.output
