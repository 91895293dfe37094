"""Tests of the sparse-binary initializer; run them after installing the plugin."""

from __future__ import annotations

import importlib.metadata

import pytest
import torch
from pydantic import ValidationError

from hebbkit.contract import check_component, check_recipe_roundtrip
from hebbkit.errors import RecipeError
from hebbkit.plugins import build_registry, get_registry, make_plugin_manager
from hebbkit.recipe import validate_recipe

# hebbkit's own test run collects these too; skip (visibly) where the plugin is not installed
hebbkit_sparse_binary = pytest.importorskip(
    "hebbkit_sparse_binary", reason="not installed: pip install ./plugins/hebbkit-sparse-binary"
)
from hebbkit_sparse_binary import SparseBinaryParams, sparse_binary  # noqa: E402
from hebbkit_sparse_binary.initializer import nonzeros_per_filter  # noqa: E402


def make(shape, seed=0, **params):
    init = sparse_binary(SparseBinaryParams(**params))
    return init(shape, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("shape", [(96, 1, 5, 5), (384, 96, 3, 3), (10, 784), (3, 2, 1, 1)])
@pytest.mark.parametrize("density", [0.01, 0.1, 0.25, 0.5, 1.0])
def test_every_filter_has_the_same_number_of_ones(shape, density):
    weight = make(shape, density=density)
    fan_in = weight[0].numel()
    counts = (weight != 0).reshape(shape[0], -1).sum(1)
    assert weight.shape == shape and weight.dtype == torch.float32
    assert set(weight.unique().tolist()) <= {0.0, 1.0}
    assert (counts == nonzeros_per_filter(density, fan_in)).all()


def test_count_rounds_and_never_drops_to_zero():
    assert nonzeros_per_filter(0.25, 25) == 6
    assert nonzeros_per_filter(0.01, 25) == 1
    assert nonzeros_per_filter(1.0, 25) == 25


def test_radius_scale_gives_every_filter_that_norm():
    weight = make((64, 3, 5, 5), scale="radius", radius=25.0, density=0.2)
    norms = weight.reshape(64, -1).norm(dim=1)
    assert torch.allclose(norms, torch.full_like(norms, 25.0))
    assert len(weight.unique()) == 2


def test_deterministic_under_the_generator_and_seed_dependent():
    torch.manual_seed(1)
    first = make((32, 3, 3, 3), seed=7)
    torch.manual_seed(2)  # the global RNG must not matter
    assert torch.equal(first, make((32, 3, 3, 3), seed=7))
    assert not torch.equal(first, make((32, 3, 3, 3), seed=8))


def test_filters_get_distinct_patterns():
    weight = make((96, 1, 5, 5), density=0.25).reshape(96, -1)
    assert len({tuple(row.tolist()) for row in weight}) == 96


def test_params_are_validated():
    with pytest.raises(ValidationError, match="has no effect"):
        SparseBinaryParams(radius=25.0)
    with pytest.raises(ValidationError):
        SparseBinaryParams(density=0)
    with pytest.raises(ValidationError):
        SparseBinaryParams(density=1.5)


@pytest.fixture(scope="module")
def registry():
    """Only this plugin (plus hebbkit's own), so the test ignores other installed plugins."""
    return build_registry(
        make_plugin_manager(plugins=[hebbkit_sparse_binary], load_entrypoints=False)
    )


def test_meets_hebbkits_component_contract(registry):
    component = registry.get("initializer", "sparse-binary")
    check_component(component)


def test_recipe_round_trip_and_messages():
    registry = get_registry()  # the installed plugins, hebbkit's own included
    check_recipe_roundtrip(registry.get("initializer", "sparse-binary"), registry)
    recipe = {
        "name": "t",
        "data": {"dataset": "mnist"},
        "layers": [
            {
                "channels": 4,
                "kernel": 3,
                "init": {"name": "sparse-binary", "densty": 0.1},
                "plasticity": "softhebb",
                "competition": "softkrotov",
                "activation": "triangle",
            }
        ],
    }
    with pytest.raises(RecipeError, match=r"layers\.0\.init\.densty: unknown key.*'density'"):
        validate_recipe(recipe, registry)


def test_installed_through_the_entry_point():
    names = {ep.name for ep in importlib.metadata.entry_points(group="hebbkit")}
    assert "sparse-binary" in names
    origin = get_registry().get("initializer", "sparse-binary").origin
    assert origin.distribution == "hebbkit-sparse-binary"
