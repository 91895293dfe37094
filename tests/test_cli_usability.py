"""What a new user touches first, through typer's runner: --version, examples in every --help,
shell completion, the plugins listing at 80 columns, one component's parameters, packaged
recipes by name, files given to the wrong command, overrides that drop keys or change what a
run is. Also: --help and the listings import no torch."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from hebbkit.cli.app import EXAMPLES, app
from hebbkit.config.grid_file import GridFile
from hebbkit.config.kinds import GRID_KEYS, RECIPE_KEYS, file_kind
from hebbkit.config.packaged import packaged_folder, packaged_recipes, resolve_recipe
from hebbkit.config.recipe import Recipe
from hebbkit.errors import RecipeError, UnknownComponentError
from hebbkit.plugins import get_registry
from hebbkit.registry import Component, Registry, describe_params
from tests.conftest import RECIPES, REPO

runner = CliRunner()


def invoke(*args: str, **kwargs):
    return runner.invoke(app, list(args), **kwargs)


def words(text: str) -> str:
    """Text with every run of whitespace (line wraps included) as one space."""
    return " ".join(text.split())


# --- version, examples, completion -------------------------------------------------------


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"hebbkit {importlib.metadata.version('hebbkit')}"


def command_paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    if hasattr(command, "commands"):  # a group (typer ships its own click)
        for name, sub in command.commands.items():
            paths += command_paths(sub, (*prefix, name))
    return paths


def test_every_help_ends_with_examples_of_that_command() -> None:
    paths = command_paths(typer.main.get_command(app))
    assert {" ".join(p) for p in paths} == set(EXAMPLES), "a command without examples"
    for path in paths:
        result = invoke(*path, "--help", terminal_width=200)
        assert result.exit_code == 0, result.output
        assert "Examples" in result.stdout, path
        for line in EXAMPLES[" ".join(path)]:
            assert words(line) in words(result.stdout), (path, line)
            argv = shlex.split(line, comments=True)
            assert argv[0] == "hebbkit"
            if path:  # each example runs the command whose help shows it
                assert tuple(argv[1 : 1 + len(path)]) == path, line


def test_examples_name_real_commands_and_options() -> None:
    """Each example parses: its command exists and takes every option the example gives."""
    root = typer.main.get_command(app)
    for lines in EXAMPLES.values():
        for line in lines:
            argv = shlex.split(line, comments=True)[1:]
            command, rest = root, argv
            while hasattr(command, "commands") and rest and rest[0] in command.commands:
                command, rest = command.commands[rest[0]], rest[1:]
            options = {name for p in command.params for name in (*p.opts, *p.secondary_opts)}
            for token in rest:
                if token.startswith("-") and token != "-":
                    assert token.split("=")[0] in options, (line, token)


def test_shell_completion_is_on() -> None:
    script = invoke("--show-completion", "bash", prog_name="hebbkit")
    assert script.exit_code == 0 and "_HEBBKIT_COMPLETE=complete_bash" in script.stdout
    env = {
        "_HEBBKIT_COMPLETE": "complete_bash",
        "COMP_WORDS": "hebbkit plugins show softk",
        "COMP_CWORD": "3",
    }
    completed = runner.invoke(app, [], prog_name="hebbkit", env=env)
    assert completed.stdout.split() == ["softkrotov"]


def run_fresh(*args: str) -> subprocess.CompletedProcess[str]:
    """``hebbkit ARGS`` in a fresh interpreter; prints, last, whether torch got imported."""
    code = (
        "import sys\n"
        "from hebbkit.cli.app import main\n"
        f"sys.argv = ['hebbkit', *{list(args)!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('torch imported:', 'torch' in sys.modules)\n"
    )
    # third-party plugins may import torch themselves: hebbkit's own must not
    env = {**os.environ, "HEBBKIT_DISABLE_PLUGIN_AUTOLOAD": "1", "COLUMNS": "100"}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["run", "--help"],
        ["plugins"],
        ["plugins", "show", "zero"],
        ["recipes"],
        ["recipe", "validate", "mnist_zero"],
    ],
    ids=" ".join,
)
def test_light_commands_import_no_torch(args: list[str]) -> None:
    result = run_fresh(*args)
    assert result.stdout.rstrip().endswith("torch imported: False"), result.stdout + result.stderr
    assert "Error" not in result.stderr, result.stderr


def test_building_a_component_imports_its_module() -> None:
    """The built-ins' factories are lazy; building one loads the component module."""
    code = (
        "import sys\n"
        "from hebbkit.plugins import get_registry\n"
        "zero = get_registry().get('initializer', 'zero')\n"
        "assert 'torch' not in sys.modules\n"
        "init = zero.build()\n"
        "print(init((4, 1, 3, 3), None).shape, 'hebbkit_zero.initializers' in sys.modules)\n"
    )
    env = {**os.environ, "HEBBKIT_DISABLE_PLUGIN_AUTOLOAD": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.stdout.strip() == "torch.Size([4, 1, 3, 3]) True", result.stderr


# --- plugins --------------------------------------------------------------------------------


def test_plugins_listing_has_every_description_uncut_at_80_columns() -> None:
    result = invoke("plugins", terminal_width=80)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in result.stdout
    # the description column, read down each table (its rows wrap onto several lines)
    column, descriptions = None, []
    for line in lines:
        if line.lstrip().startswith("name ") and "description" in line:
            column = line.index("description")
        elif column is not None:
            descriptions.append(line[column:])
    described = words(" ".join(descriptions))
    text = words(result.stdout)
    for component in get_registry():
        assert component.description and words(component.description) in described, component.name
        assert component.origin.plugin in text
    assert "initializer (layers.N.init)" in text and "dataset (data.dataset)" in text


def test_plugins_show_lists_parameters_with_types_defaults_and_descriptions() -> None:
    result = invoke("plugins", "show", "softkrotov", terminal_width=100)
    assert result.exit_code == 0, result.output
    text = words(result.stdout)
    assert "competition softkrotov" in text and "from plugin softhebb (hebbkit" in text
    assert '"lowest" | "position"' in text and "t_invert float 1 β, inverse temperature" in text
    assert "(> 0)" in text  # t_invert's bound
    assert 'competition = { name = "softkrotov", t_invert = 1.0' in text

    result = invoke("plugins", "show", "zero", "--family", "initializer", "--json")
    row = json.loads(result.stdout)
    assert row["family"] == "initializer" and row["recipe_key"] == "layers.N.init"
    (scale,) = row["parameters"]
    assert scale["name"] == "scale" and scale["default"] == "paper"
    assert scale["type"] == '"paper" | "orthonormal" | "study"' and scale["description"]


def test_plugins_show_unknown_or_ambiguous_names() -> None:
    result = invoke("plugins", "show", "softkrotof")
    assert result.exit_code == 2 and "Did you mean 'softkrotov'?" in words(result.stderr)
    result = invoke("plugins", "show", "zero", "--family", "pooling")
    assert result.exit_code == 2 and "Unknown pooling 'zero'" in words(result.stderr)
    registry = Registry()
    zero = get_registry().get("initializer", "zero")
    for family in ("initializer", "pooling"):
        registry.add(Component(family, "twin", zero.factory, zero.params, zero.origin, "x"))
    with pytest.raises(UnknownComponentError, match=r"several families \(initializer, pooling\)"):
        registry.find("twin")
    assert registry.find("twin", "pooling").family == "pooling"


def test_describe_params_reads_types_bounds_and_optional_fields() -> None:
    window = get_registry().get("pooling", "max").params
    rows = {p.name: p for p in describe_params(window)}
    assert rows["kernel"].type == "int" and rows["kernel"].constraints == "> 0"
    assert rows["stride"].type == "int (optional)" and rows["stride"].default is None
    assert rows["padding"].constraints == "≥ 0"


# --- packaged recipes and file kinds -------------------------------------------------------


def test_recipes_lists_the_packaged_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # nowhere near the checkout's recipes/
    result = invoke("recipes", "--json")
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["mnist_zero"]["kind"] == "recipe"
    assert rows["mnist_zero_search"]["kind"] == "search recipe"
    assert rows["study/table1"]["kind"] == "grid file"
    assert set(rows) == {
        p.relative_to(RECIPES).with_suffix("").as_posix() for p in RECIPES.rglob("*.toml")
    }
    shown = invoke("recipe", "show", "mnist_zero")
    assert shown.exit_code == 0 and 'name = "mnist_zero"' in shown.stdout
    plan = invoke("grid", "study/table2", "--dry-run", terminal_width=200)
    assert plan.exit_code == 0, plan.output
    assert "Every run's recipe is valid" in plan.stdout


def test_packaged_recipes_are_the_checkout_recipes() -> None:
    assert packaged_folder().resolve() == RECIPES.resolve()
    assert resolve_recipe("mnist_zero") == packaged_folder() / "mnist_zero.toml"
    assert resolve_recipe("study/table1.toml") == packaged_folder() / "study" / "table1.toml"
    assert resolve_recipe(RECIPES / "mnist_zero.toml") == RECIPES / "mnist_zero.toml"
    with pytest.raises(RecipeError, match="Did you mean the packaged 'mnist_zero'"):
        resolve_recipe("mnist_zer")
    assert {r.name for r in packaged_recipes()} >= {"mnist_zero", "study/figure1"}


def test_kind_keys_match_the_models() -> None:
    assert set(Recipe.model_fields) == RECIPE_KEYS
    assert {f.alias or name for name, f in GridFile.model_fields.items()} == GRID_KEYS
    assert file_kind({"name": "x", "base": "r.toml", "grid": {}}) == "grid file"
    assert file_kind({"name": "x", "layers": [], "search": {}}) == "search recipe"
    assert file_kind({"name": "x"}) is None


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["recipe", "validate", "recipes/study/table1.toml"], "is a grid file"),
        (["run", "study/table1"], "is a grid file"),
        (["inspect", "recipes/study/figure1.toml"], "is a grid file"),
        (["grid", "recipes/mnist_zero.toml"], "is a recipe"),
        (["grid", "mnist_zero_search"], "is a search recipe"),
    ],
)
def test_a_file_given_to_the_wrong_command_is_named(
    args: list[str], says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    result = invoke(*args, terminal_width=300)
    assert result.exit_code == 2
    message = words(result.stderr)
    assert says in message and "Traceback" not in result.output
    command = {
        "grid file": "hebbkit grid",
        "recipe": "hebbkit run",
        "search recipe": "hebbkit tune",
    }
    kind = says.removeprefix("is a ")
    # a packaged name is shown as typed, or as the checkout's file it links to
    typed = {args[-1], f"recipes/{args[-1]}.toml"}
    assert any(f"Run it with `{command[kind]} {name}`" in message for name in typed), message
    assert "unknown key" not in message


# --- overrides -----------------------------------------------------------------------------


def test_a_name_override_says_which_keys_it_drops() -> None:
    result = invoke(
        "recipe",
        "show",
        "mnist_zero",
        "-s",
        'data.dataset={name="stl10", unlabeled=true}',
        "-s",
        "data.dataset.name=cifar10",
    )
    assert result.exit_code == 0, result.output
    note = words(result.stderr)
    assert note.startswith("Note: -s data.dataset.name=cifar10")
    assert "changes from stl10 to cifar10, which drops unlabeled = true" in note
    assert 'dataset = { name = "cifar10" }' in result.stdout
    quiet = invoke("recipe", "show", "mnist_zero", "-s", "data.dataset.name=cifar10")
    assert "Note" not in quiet.stderr  # mnist had no parameters to drop


def test_overrides_are_named_in_the_description() -> None:
    result = invoke("recipe", "show", "mnist_zero", "-s", "data.dataset=fashion_mnist")
    shown = result.stdout
    assert (
        "(with -s data.dataset=fashion_mnist)" in shown.split("description = ")[1].splitlines()[0]
    )
    plain = invoke("recipe", "show", "mnist_zero").stdout
    assert "with -s" not in plain
