"""The component contract, timm style: every registered component — hebbkit's own and every
installed plugin's — goes through the same checks (hebbkit.contract): output shape and dtype,
determinism under a seeded generator, no NaN/Inf, params round-trip through the recipe model,
on the CPU and, where available, on CUDA. A new component is tested for free."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hebbkit import contract
from hebbkit.data import ImageSet
from hebbkit.errors import DataError
from hebbkit.plugins import get_registry
from hebbkit.registry import Component, describe_params
from tests.data_files import SIZES, write_all

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
    for parameter in describe_params(component.params):  # `hebbkit plugins show` lists them
        assert parameter.description, f"{component.name}: {parameter.name} has no description"


# --- datasets: the contract on files in each built-in's real on-disk format ---------------

DATASETS = [c for c in COMPONENTS if c.family == "dataset"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_all(tmp_path_factory.mktemp("data"))


@pytest.mark.parametrize("component", DATASETS, ids=[c.name for c in DATASETS])
def test_dataset_contract(component: Component, data_root: Path) -> None:
    ours = component.origin.distribution == "hebbkit"
    try:
        contract.check_dataset(component, root=data_root, sizes=SIZES.get(component.name))
    except DataError as error:
        if ours:
            raise
        pytest.skip(f"{component.name} needs its own files: {error}")
    if ours:
        assert component.name in SIZES, "a built-in dataset without test files in data_files.py"


def _dataset(load) -> Component:
    mnist = REGISTRY.get("dataset", "mnist")

    class Source:
        def load(self, root, *, train, download):
            return load(root, train)

    return Component("dataset", "probe", lambda p: Source(), mnist.params, mnist.origin)


def _images(n: int, value: int = 0) -> torch.Tensor:
    images = torch.zeros(n, 1, 4, 4, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8) + value
    return images


def _labelled(n: int, value: int = 0) -> ImageSet:
    return ImageSet(_images(n, value), torch.arange(n) % 2, ["even", "odd"])


@pytest.mark.parametrize(
    ("load", "message"),
    [
        (lambda root, train: _labelled(4), "return the same images"),
        (lambda root, train: _labelled(4, int(torch.randint(9, ()))), "two loads"),
        (lambda root, train: _labelled(4 if train else 0), "no images"),
        (lambda root, train: (_images(4), torch.zeros(4)), "not hebbkit.data.ImageSet"),
        (lambda root, train: (Path(root) / "x.bin").read_bytes(), "FileNotFoundError"),
        (lambda root, train: _labelled(6 if train else 3, 9 * train), "expected 5 and 3"),
        (
            lambda root, train: ImageSet(
                _images(2, 9 * train), torch.zeros(2, dtype=torch.long), ["only"]
            ),
            "a classifier needs 2",
        ),
    ],
)
def test_dataset_check_catches(load, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        contract.check_dataset(_dataset(load), sizes=(5, 3))


def test_dataset_check_wants_the_folder_named_when_files_are_missing(tmp_path: Path) -> None:
    def vague(root, train):
        raise DataError("no data")

    with pytest.raises(AssertionError, match="does not name the folder"):
        contract.check_dataset(_dataset(vague))

    def honest(root, train):
        raise DataError(f"nothing in {root}")

    contract.check_dataset(_dataset(honest))  # a file-based dataset without root: passes
    with pytest.raises(DataError):
        contract.check_dataset(_dataset(honest), root=tmp_path)


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


def _activation(f) -> Component:
    triangle = REGISTRY.get("activation", "triangle")
    return Component("activation", "probe", lambda p: f, triangle.params, triangle.origin)


def test_activation_check_catches_a_modified_input() -> None:
    with pytest.raises(AssertionError, match="modified u in place"):
        contract.check_activation(_activation(lambda u: u.relu_()))


def test_activation_check_catches_an_in_place_variant_that_differs() -> None:
    def f(u: torch.Tensor) -> torch.Tensor:
        return torch.relu(u)

    f.in_place = lambda u: u.abs_()  # not the same function
    with pytest.raises(AssertionError, match="in_place"):
        contract.check_activation(_activation(f))
