"""The component contract, timm style: every registered component — hebbkit's own and every
installed plugin's — goes through the same checks (hebbkit.contract): output shape and dtype,
determinism under a seeded generator, no NaN/Inf, params round-trip through the recipe model,
on the CPU and, where available, on CUDA. A new component is tested for free."""

from __future__ import annotations

import pytest
import torch

from hebbkit import contract
from hebbkit.plugins import get_registry
from hebbkit.registry import Component

REGISTRY = get_registry()
COMPONENTS = list(REGISTRY)
IDS = [f"{c.family}:{c.name}" for c in COMPONENTS]
#: Families whose components compute on the layer's device (initializers return CPU tensors
#: by contract, and datasets return uint8 images that the engine moves).
DEVICE_FAMILIES = {"plasticity", "competition", "activation", "pooling"}


def test_every_family_has_components() -> None:
    for family in contract.CHECKS:
        assert REGISTRY.names(family), f"no {family} registered"


@pytest.mark.parametrize("component", COMPONENTS, ids=IDS)
def test_behaviour_on_cpu(component: Component) -> None:
    contract.CHECKS[component.family](component, "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize(
    "component", [c for c in COMPONENTS if c.family in DEVICE_FAMILIES], ids=lambda c: c.name
)
def test_behaviour_on_cuda(component: Component) -> None:
    contract.CHECKS[component.family](component, "cuda")


@pytest.mark.parametrize("component", COMPONENTS, ids=IDS)
def test_params_round_trip(component: Component) -> None:
    contract.check_params_roundtrip(component)


@pytest.mark.parametrize(
    "component",
    [c for c in COMPONENTS if c.family in contract.RECIPE_FAMILIES],
    ids=lambda c: f"{c.family}:{c.name}",
)
def test_recipe_round_trip(component: Component) -> None:
    contract.check_recipe_roundtrip(component, REGISTRY)


@pytest.mark.parametrize("component", COMPONENTS, ids=IDS)
def test_described(component: Component) -> None:
    assert component.description, f"{component.family} {component.name!r} has no description"
    assert "\n" not in component.description


# --- the checks catch what they claim to catch ---------------------------------------------


def _initializer(init) -> Component:
    zero = REGISTRY.get("initializer", "zero")
    return Component("initializer", "probe", lambda p: init, zero.params, zero.origin)


@pytest.mark.parametrize(
    ("init", "message"),
    [
        (lambda shape, g: torch.randn(shape), "differs between two calls"),  # global RNG
        (lambda shape, g: torch.zeros(shape, dtype=torch.float64), "dtype torch.float64"),
        (lambda shape, g: torch.zeros(shape[0], 3), "has shape"),
        (lambda shape, g: torch.full(shape, float("nan")), "NaN or Inf"),
        (lambda shape, g: torch.zeros(shape).numpy(), "not Tensor"),
    ],
)
def test_initializer_check_catches(init, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        contract.check_initializer(_initializer(init))


def test_plasticity_check_catches_in_place_updates() -> None:
    softhebb = REGISTRY.get("plasticity", "softhebb")

    class InPlace:
        def delta(self, weight, batch):
            return weight.mul_(0.5)

    probe = Component("plasticity", "probe", lambda p: InPlace(), softhebb.params, softhebb.origin)
    with pytest.raises(AssertionError, match="changed weight in place"):
        contract.check_plasticity(probe)


def test_activation_check_catches_overflow() -> None:
    triangle = REGISTRY.get("activation", "triangle")
    probe = Component("activation", "probe", lambda p: torch.exp, triangle.params, triangle.origin)
    with pytest.raises(AssertionError, match="NaN or Inf"):
        contract.check_activation(probe)
