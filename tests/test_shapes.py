"""The shape walk and the memory estimate against what torch and a real network do."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest
import torch
from torch import nn

from hebbkit.config.recipe import validate_recipe
from hebbkit.engine.network import HebbianNetwork
from hebbkit.engine.shapes import (
    Counts,
    _window_output,
    estimate_memory,
    plan_recipe,
    walk_shapes,
)
from hebbkit.errors import ShapeError
from hebbkit.registry import Registry
from tests.conftest import TINY_RECIPE


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("kind", [nn.MaxPool2d, nn.AvgPool2d])
def test_pool_arithmetic_matches_torch(kind: type[nn.Module], ceil_mode: bool) -> None:
    """Every small map, kernel, stride and padding torch accepts: the same output size."""
    for size, kernel, stride, padding in itertools.product(
        range(1, 10), range(1, 6), range(1, 4), range(3)
    ):
        if 2 * padding > kernel:
            continue
        module = kind(kernel, stride, padding, ceil_mode=ceil_mode)
        try:
            expected = tuple(module(torch.zeros(1, 1, size, size + 1)).shape[2:])
        except RuntimeError:  # torch: "output size is too small"
            expected = None
        got = _window_output(module, size, size + 1)
        if expected is None:
            assert got is not None and min(got) < 1, (size, kernel, stride, padding)
        else:
            assert got == expected, (size, kernel, stride, padding)


def recipe(registry: Registry, **layer: Any) -> Any:
    data = copy.deepcopy(TINY_RECIPE)
    data["layers"][0].update(layer)
    return validate_recipe(data, registry)


@pytest.mark.parametrize(
    "layer",
    [
        {},
        {"kernel": 5, "padding": 2, "stride": 2},
        {"kernel": 3, "padding": 0, "dilation": 3, "pool": {"name": "avg", "kernel": 3}},
        {"padding_mode": "zeros", "padding": 4, "pool": "identity"},
        {
            "padding_mode": "circular",
            "padding": 3,
            "pool": {"name": "max", "kernel": 4, "stride": 3, "padding": 2},
        },
    ],
)
def test_walk_matches_the_network(registry: Registry, layer: dict[str, Any]) -> None:
    spec = recipe(registry, **layer)
    shapes = walk_shapes(spec, (1, 28, 28), registry)
    network = HebbianNetwork.from_recipe(spec, 1, registry)
    assert shapes[-1].output == network.feature_shape((1, 28, 28))


def test_walk_names_the_layer_map_and_key(registry: Registry) -> None:
    with pytest.raises(ShapeError, match=r"layers\.0\.kernel = 31: .* 28×28 \(30×30 padded by 1\)"):
        walk_shapes(recipe(registry, kernel=31), (1, 28, 28), registry)
    with pytest.raises(ShapeError, match=r"layers\.0\.pool = .*shrinks layer 0's 4×4 map"):
        walk_shapes(recipe(registry, pool={"name": "max", "kernel": 5}), (1, 4, 4), registry)


def test_estimate_counts_what_a_run_holds(registry: Registry) -> None:
    spec = recipe(registry)  # 4 channels, 3×3, padding 1, max pool 2: 4×14×14 features
    counts = Counts(train=1000, validation=100, test=200, loaded=1300)
    plan = plan_recipe(spec, registry, (1, 28, 28), counts)
    memory = plan.memory
    cache = next(i for i in memory.phases["features"] if i.what.startswith("cached"))
    assert cache.bytes == 1300 * 4 * 14 * 14 * 4  # float32 below 2 GiB
    weights = next(i for i in memory.phases["hebbian"] if i.what == "layer 0 weights")
    assert weights.bytes == 4 * 1 * 3 * 3 * 4
    assert memory.device_bytes == memory.host_bytes >= cache.bytes
    # ten times the channels: the features, and so the peak, grow about ten times
    wide = plan_recipe(recipe(registry, channels=40), registry, (1, 28, 28), counts).memory
    grown = next(i for i in wide.phases["features"] if i.what.startswith("cached"))
    assert grown.bytes == 10 * cache.bytes
    # on a GPU the images stay on the host
    gpu = estimate_memory(spec, (1, 28, 28), plan.layers, counts, "cuda")
    assert gpu.host_bytes < memory.host_bytes and gpu.device_bytes < memory.device_bytes
