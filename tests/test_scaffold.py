"""``hebbkit plugin new``: every family's template imports, registers and meets the contract
(installing it and running its own tests is in tests/test_plugin_install.py)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hebbkit.cli.app import app
from hebbkit.contract import check_component
from hebbkit.errors import HebbkitError
from hebbkit.plugins import build_registry, make_plugin_manager
from hebbkit.scaffold import TEMPLATES, PluginNames, write_plugin
from tests.plugin_helpers import unique

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

runner = CliRunner()


def test_names_derive_from_the_component_name() -> None:
    names = PluginNames.from_name("hebbkit-Sparse-Ternary")
    assert names == PluginNames(
        "sparse-ternary", "hebbkit-sparse-ternary", "hebbkit_sparse_ternary"
    )
    for bad in ("", "9lives", "two words", "a--b", "ümlaut"):
        with pytest.raises(HebbkitError, match="is not usable"):
            PluginNames.from_name(bad)


@pytest.mark.parametrize("family", sorted(TEMPLATES))
def test_generated_plugin_registers_a_component_that_meets_the_contract(
    family: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique(f"new_{family}")
    folder = write_plugin(name, family, tmp_path / "pkg")
    names = PluginNames.from_name(name)
    pyproject = tomllib.loads((folder / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == names.distribution
    assert pyproject["project"]["entry-points"]["hebbkit"] == {names.component: names.package}
    assert (folder / "README.md").is_file()
    tests = list((folder / "tests").glob("test_*.py"))
    assert len(tests) == 1 and names.package in tests[0].read_text()

    monkeypatch.syspath_prepend(str(folder / "src"))
    module = importlib.import_module(names.package)
    registry = build_registry(make_plugin_manager(plugins=[module], load_entrypoints=False))
    assert registry.names(family) == [names.component]
    check_component(registry.get(family, names.component))


def test_cli_plugin_new(tmp_path: Path) -> None:
    out = tmp_path / "hebbkit-lp"
    result = runner.invoke(app, ["plugin", "new", "lp", "--family", "pooling", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"pip install -e {out}" in result.stdout
    assert "register_poolings" in (out / "src" / "hebbkit_lp" / "__init__.py").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plugin", "new", "Two Words"], "is not usable"),
        (["plugin", "new", "x", "--family", "banana"], "'banana' is not one of"),
    ],
)
def test_cli_plugin_new_user_errors(args: list[str], message: str, tmp_path: Path) -> None:
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


def test_cli_plugin_new_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["plugin", "new", "x", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "already exists" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_dataset_template_shows_the_recipe_form_and_ships_its_data(tmp_path: Path) -> None:
    folder = write_plugin("bars", "dataset", tmp_path / "bars")
    readme = (folder / "README.md").read_text()
    assert '[data]\ndataset = { name = "bars", train_size = 2000, size = 16 }' in readme
    source = (folder / "src" / "hebbkit_bars" / "__init__.py").read_text()
    assert "root`` and ``download``\n    are ignored" in source and "register_datasets" in source
