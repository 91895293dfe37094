"""Recipes: validation messages, ``--set`` overrides, TOML round trip, shipped recipes."""

from __future__ import annotations

import copy
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hebbkit.config.overrides import apply_overrides, parse_value, split_path
from hebbkit.config.recipe import load_recipe, recipe_dict, recipe_toml, validate_recipe
from hebbkit.config.toml import read_toml
from hebbkit.errors import HebbkitNotice, RecipeError, UnknownComponentError
from hebbkit.registry import Registry
from tests.conftest import RECIPES, TINY_RECIPE

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

SHIPPED = sorted(RECIPES.glob("*.toml"))


def invalid(registry: Registry, overrides: list[str], base: dict | None = None) -> str:
    """The validation message for TINY_RECIPE (or ``base``) with ``overrides``."""
    data = apply_overrides(copy.deepcopy(base or TINY_RECIPE), overrides)
    with pytest.raises(RecipeError) as caught:
        validate_recipe(data, registry, source="tiny.toml")
    message = str(caught.value)
    assert "tiny.toml" in message
    return message


def assert_lists_available(message: str, registry: Registry, family: str, ours: set[str]) -> None:
    """The message lists every registered name of ``family`` (ours plus installed plugins)."""
    names = registry.names(family)
    assert ours <= set(names)
    assert f"Available: {', '.join(names)}." in message


# --- validation ----------------------------------------------------------------------------


def test_tiny_recipe_is_valid_and_fills_defaults(registry: Registry) -> None:
    recipe = validate_recipe(copy.deepcopy(TINY_RECIPE), registry)
    layer = recipe.layers[0]
    assert layer.padding_mode == "reflect" and layer.batch_norm and layer.stride == 1
    assert layer.init.name == "random" and layer.init.radius == 25.0
    assert layer.plasticity.lr == 0.05 and layer.plasticity.adaptive
    assert layer.competition.t_invert == 1.0
    assert recipe.readout.lr == 1e-3 and recipe.readout.dropout == 0.5
    assert recipe.hebbian.mode == "greedy"


def test_unknown_component_names_closest_match_and_list(registry: Registry) -> None:
    message = invalid(registry, ["layers.0.init.name=zeor"])
    assert "layers.0.init.name" in message and "'zeor'" in message
    assert "Did you mean 'zero'?" in message
    assert_lists_available(message, registry, "initializer", {"random", "random-binary", "zero"})


def test_unknown_dataset_and_activation(registry: Registry) -> None:
    message = invalid(registry, ["data.dataset=mnsit"])
    assert "data.dataset" in message and "Did you mean 'mnist'?" in message
    message = invalid(registry, ["layers.0.activation=trinagle"])
    assert "layers.0.activation.name" in message and "'triangle'" in message
    assert_lists_available(message, registry, "activation", {"repu", "softmax", "triangle"})


def test_unknown_name_without_close_match_lists_all(registry: Registry) -> None:
    message = invalid(registry, ["layers.0.competition.name=xyzzy"])
    assert "Did you mean" not in message
    assert_lists_available(
        message, registry, "competition", {"hard", "hardkrotov", "soft", "softkrotov"}
    )
    with pytest.raises(UnknownComponentError) as caught:
        registry.get("pooling", "xyzzy")
    assert_lists_available(str(caught.value), registry, "pooling", {"avg", "identity", "max"})


def test_unknown_key_in_section_and_component(registry: Registry) -> None:
    message = invalid(registry, ["layers.0.kernal=3"])
    assert "layers.0.kernal: unknown key" in message and "Did you mean 'kernel'?" in message
    assert "padding_mode" in message  # the allowed keys are listed
    message = invalid(registry, ["layers.0.init.radus=3.0"])
    assert "layers.0.init.radus: unknown key" in message and "'radius'" in message
    assert "Allowed here: name, distribution, radius" in message
    message = invalid(registry, ["readoutt.epochs=1"])
    assert "readoutt: unknown key" in message and "Did you mean 'readout'?" in message


def test_bad_enum_value_lists_allowed_values(registry: Registry) -> None:
    message = invalid(registry, ['layers.0.init={name="zero", scale="big"}'])
    assert 'layers.0.init.scale = "big"' in message
    assert "'paper', 'orthonormal' or 'study'" in message
    message = invalid(registry, ["hebbian.mode=fast"])
    assert 'hebbian.mode = "fast"' in message and "'greedy' or 'all-at-once'" in message
    message = invalid(registry, ["layers.0.padding_mode=mirror"])
    assert "layers.0.padding_mode" in message and "'reflect'" in message


@pytest.mark.parametrize(
    ("override", "path"),
    [
        ("readout.epochs=-1", "readout.epochs = -1"),
        ("hebbian.epochs=-2", "hebbian.epochs = -2"),
        ("layers.0.channels=0", "layers.0.channels = 0"),
        ("layers.0.plasticity.lr=-0.1", "layers.0.plasticity.lr = -0.1"),
        ("layers.0.competition.t_invert=0", "layers.0.competition.t_invert = 0"),
        ("readout.dropout=1.0", "readout.dropout = 1.0"),
        ("data.train_subset=0", "data.train_subset = 0"),
        ("seed=-1", "seed = -1"),
        ('layers.0.kernel="three"', 'layers.0.kernel = "three"'),
    ],
)
def test_bad_values_name_key_and_value(registry: Registry, override: str, path: str) -> None:
    assert path in invalid(registry, [override])


def test_component_parameter_validator(registry: Registry) -> None:
    message = invalid(registry, ['layers.0.pool={name="max", kernel=2, padding=2}'])
    assert "layers.0.pool" in message and "more than half the kernel" in message


def test_missing_keys(registry: Registry) -> None:
    data = copy.deepcopy(TINY_RECIPE)
    del data["name"], data["layers"][0]["init"]
    with pytest.raises(RecipeError) as caught:
        validate_recipe(data, registry, source="tiny.toml")
    message = str(caught.value)
    assert "2 problems" in message
    assert "name: required key is missing" in message
    assert "layers.0.init: required key is missing" in message


def test_component_without_name(registry: Registry) -> None:
    message = invalid(registry, ["layers.0.competition={t_invert=2.0}"])
    assert "layers.0.competition: a component needs a name" in message
    assert "softkrotov" in message


def test_empty_layers_and_bad_recipe_name(registry: Registry) -> None:
    data = copy.deepcopy(TINY_RECIPE)
    data["layers"] = []
    with pytest.raises(RecipeError, match="layers"):
        validate_recipe(data, registry)
    assert "name = " in invalid(registry, ['name="has space"'])


def test_several_problems_reported_at_once(registry: Registry) -> None:
    message = invalid(registry, ["readout.epochs=-1", "layers.0.init.name=nope"])
    assert "2 problems" in message
    assert "readout.epochs" in message and "layers.0.init.name" in message


# --- overrides -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("0.5", 0.5),
        ("true", True),
        ('"zero"', "zero"),
        ("zero", "zero"),  # not TOML: a bare string
        ("random-binary", "random-binary"),
        ("[1, 2]", [1, 2]),
        ('{name="zero", scale="study"}', {"name": "zero", "scale": "study"}),
        ("1e-3", 1e-3),
    ],
)
def test_parse_value(text: str, value: Any) -> None:
    assert parse_value(text) == value


def test_override_changing_name_drops_old_params(registry: Registry) -> None:
    with pytest.warns(HebbkitNotice, match=r"changes from random to zero, which drops radius = 25"):
        recipe = load_recipe(RECIPES / "mnist_softhebb.toml", ["layers.0.init.name=zero"], registry)
    assert recipe.layers[0].init.name == "zero"
    assert recipe.layers[0].init.scale == "paper"  # default, radius did not carry over
    assert recipe.layers[1].init.name == "random" and recipe.layers[1].init.radius == 25.0


def test_override_same_name_keeps_params() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", HebbkitNotice)  # nothing dropped, nothing to say
        data = apply_overrides(TINY_RECIPE, ["layers.0.plasticity.name=softhebb"])
    assert data["layers"][0]["plasticity"] == {"name": "softhebb", "lr": 0.05}


def test_override_star_sets_every_layer(registry: Registry) -> None:
    recipe = load_recipe(
        RECIPES / "mnist_softhebb.toml", ['layers.*.init={name="zero", scale="study"}'], registry
    )
    assert [(layer.init.name, layer.init.scale) for layer in recipe.layers] == [
        ("zero", "study")
    ] * 3
    recipe = load_recipe(
        RECIPES / "mnist_softhebb.toml",
        ["layers.*.init=random-binary", "layers.*.competition.t_invert=2.0"],
        registry,
    )
    assert {layer.init.name for layer in recipe.layers} == {"random-binary"}
    assert [layer.competition.t_invert for layer in recipe.layers] == [2.0, 2.0, 2.0]
    assert [layer.competition.name for layer in recipe.layers] == ["softkrotov"] * 3


def test_override_values_are_typed(registry: Registry) -> None:
    recipe = load_recipe(
        RECIPES / "mnist_zero.toml",
        ["readout.epochs=3", "layers.0.plasticity.lr=0.01", "data.validation=0.1", "seed=5"],
        registry,
    )
    assert recipe.readout.epochs == 3 and recipe.seed == 5
    assert recipe.layers[0].plasticity.lr == 0.01 and recipe.data.validation == 0.1


def test_override_on_shorthand_component() -> None:
    data = {"layers": [{"pool": "max"}]}
    assert apply_overrides(data, ["layers.0.pool.kernel=3"]) == {
        "layers": [{"pool": {"name": "max", "kernel": 3}}]
    }
    assert data == {"layers": [{"pool": "max"}]}  # the input is not modified


def test_override_creates_missing_tables() -> None:
    assert apply_overrides({}, ["readout.epochs=2"]) == {"readout": {"epochs": 2}}


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("layers.5.init=zero", "use an index 0..0 or '*', not '5'"),
        ("layers.x.init=zero", "not 'x'"),
        ("layers.-1.init=zero", "not '-1'"),
        ("readout.epochs.x=1", "readout.epochs is a value, not a table"),
        ("noequals", "not of the form dotted.path=VALUE"),
        ("=3", "not of the form dotted.path=VALUE"),
    ],
)
def test_bad_overrides(override: str, fragment: str) -> None:
    with pytest.raises(RecipeError) as caught:
        apply_overrides(TINY_RECIPE, [override])
    assert fragment in str(caught.value)
    assert f"Override '{override.partition('=')[0]}" in str(caught.value)  # names the key


# --- files and round trip ------------------------------------------------------------------


def test_read_toml_errors(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="does not exist"):
        read_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(RecipeError, match="is not valid TOML"):
        read_toml(bad)
    with pytest.raises(RecipeError, match="is a folder, not a TOML file"):
        read_toml(tmp_path)


def skip_if_plugin_missing(path: Path, registry: Registry) -> None:
    """Skip a recipe that says it needs a separately installed plugin, when it is missing.

    A recipe naming an unknown component without saying so still fails (a typo)."""
    data = read_toml(path)
    wanted = [("dataset", _name(data.get("data", {}).get("dataset")))]
    for layer in data.get("layers", []):
        for key, family in FAMILY_OF.items():
            wanted.append((family, _name(layer.get(key))))
    missing = [
        f"{family} {name!r}"
        for family, name in wanted
        if name and name not in registry.names(family)
    ]
    if missing and "pip install" in path.read_text():
        names = ", ".join(dict.fromkeys(missing))
        pytest.skip(f"{path.name} needs a plugin that is not installed: {names}")


FAMILY_OF = {
    "init": "initializer",
    "plasticity": "plasticity",
    "competition": "competition",
    "activation": "activation",
    "pool": "pooling",
}


def _name(spec: Any) -> str | None:
    return spec if isinstance(spec, str) else spec.get("name") if isinstance(spec, dict) else None


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_recipes_validate_and_round_trip(registry: Registry, path: Path) -> None:
    skip_if_plugin_missing(path, registry)
    recipe = load_recipe(path, registry=registry)
    text = recipe_toml(recipe)
    again = validate_recipe(tomllib.loads(text), registry)
    assert again == recipe
    assert recipe_toml(again) == text
    # components are written name first
    first_layer = tomllib.loads(text)["layers"][0]
    assert next(iter(first_layer["init"])) == "name"


def test_round_trip_after_overrides(registry: Registry, write_recipe: Callable[..., Path]) -> None:
    recipe = load_recipe(
        write_recipe(),
        ['layers.0.init={name="zero", scale="orthonormal"}', "data.train_subset=100"],
        registry,
    )
    reloaded = load_recipe(
        write_recipe(tomllib.loads(recipe_toml(recipe)), "again.toml"), [], registry
    )
    assert reloaded == recipe
    assert recipe_dict(reloaded)["layers"][0]["init"] == {"name": "zero", "scale": "orthonormal"}


def test_shipped_recipes_exist_and_cite_their_numbers() -> None:
    names = {p.name for p in SHIPPED}
    assert {"mnist_zero.toml", "mnist_softhebb.toml"} <= names
    for path in SHIPPED:
        assert path.read_text().lstrip().startswith("#"), f"{path.name} needs a source comment"


def test_mnist_presets_match_the_docs(registry: Registry) -> None:
    zero = load_recipe(RECIPES / "mnist_zero.toml", registry=registry)
    (layer,) = zero.layers
    assert (layer.channels, layer.kernel, layer.padding) == (128, 3, 2)
    assert (layer.plasticity.lr, layer.plasticity.lr_power) == (0.07, 0.4)
    assert layer.init.name == "zero" and layer.init.scale == "study"
    softhebb = load_recipe(RECIPES / "mnist_softhebb.toml", registry=registry)
    assert [lay.channels for lay in softhebb.layers] == [96, 384, 1536]
    assert [lay.competition.t_invert for lay in softhebb.layers] == [1.0, 0.65, 0.25]
    assert [lay.plasticity.lr for lay in softhebb.layers] == [0.08, 0.005, 0.01]
    assert [lay.pool.name for lay in softhebb.layers] == ["max", "max", "avg"]
    assert {lay.competition.name for lay in softhebb.layers} == {"softkrotov"}


@pytest.mark.parametrize(
    ("key", "parts"),
    [
        ("readout.epochs", ["readout", "epochs"]),
        ('search.space."layers.0.kernel"', ["search", "space", "layers.0.kernel"]),
        (
            "search.space.'layers.*.init.norm'.grid",
            ["search", "space", "layers.*.init.norm", "grid"],
        ),
    ],
)
def test_override_paths_quote_keys_that_hold_dots(key: str, parts: list[str]) -> None:
    assert split_path(key) == parts
    data = apply_overrides({"search": {"space": {}}, "readout": {}}, [f"{key}=1"])
    node = data
    for part in parts[:-1]:
        node = node[part]
    assert node[parts[-1]] == 1


@pytest.mark.parametrize("key", ['a."b', 'a."b"c'])
def test_override_paths_with_broken_quotes_are_user_errors(key: str) -> None:
    with pytest.raises(RecipeError, match="quote"):
        apply_overrides({}, [f"{key}=1"])
