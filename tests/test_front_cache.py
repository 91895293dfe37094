"""The layers' inputs kept through a greedy Hebbian phase (hebbkit.engine.front.FrontCache):
the same numbers as computing them again, in the next layer's epochs, in a layer's later
epochs and in the features pass; a run keeps them only where it pays and fits
(hebbkit.runs.run.keep_front)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from hebbkit.config.recipe import load_recipe
from hebbkit.data import to_float
from hebbkit.engine.front import FrontCache
from hebbkit.engine.network import HebbianNetwork
from hebbkit.engine.progress import QuietProgress
from hebbkit.engine.training import extract_features, hebbian_phase
from hebbkit.runs.memory import MemoryLimit
from hebbkit.runs.run import keep_front
from tests.conftest import RECIPES

SMALL = ["layers.0.channels=8", "layers.1.channels=16", "layers.2.channels=24"]
CPU = torch.device("cpu")


def small_recipe(registry, *overrides: str):
    return load_recipe(
        RECIPES / "mnist_softhebb.toml",
        [*SMALL, "hebbian.diagnostics=0", "hebbian.batch_size=16", *overrides],
        registry,
    )


def images(count: int = 100) -> torch.Tensor:
    generator = torch.Generator().manual_seed(3)
    return torch.randint(0, 256, (count, 1, 28, 28), dtype=torch.uint8, generator=generator)


def trained(registry, recipe, data: torch.Tensor, front: FrontCache | None) -> HebbianNetwork:
    network = HebbianNetwork.from_recipe(recipe, 1, registry)
    hebbian_phase(
        network,
        data,
        recipe.hebbian,
        recipe.seed,
        CPU,
        QuietProgress(),
        lambda row: None,
        front=front,
    )
    return network


def test_kept_inputs_learn_and_extract_the_same_numbers(registry) -> None:
    recipe = small_recipe(registry, "hebbian.epochs=3")
    data = images()
    plain = trained(registry, recipe, data, None)
    network = HebbianNetwork.from_recipe(recipe, 1, registry)
    front = FrontCache.allocate(network, (1, 28, 28), len(data), CPU)
    assert front.shapes == {1: (8, 14, 14), 2: (16, 7, 7)}  # rows of 8·14·14 floats
    assert front.storage.shape == (len(data), 8 * 14 * 14) and not front.filled
    kept = trained(registry, recipe, data, front)
    assert front.layer == 2
    for a, b in zip(plain.state_dict().values(), kept.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # epochs 2-3 of layer 3 read the rows: same weights
    with torch.no_grad():
        kept.eval()
        assert torch.equal(front.rows(2), kept(to_float(data, CPU), upto=2))
        batch = front.read(2, torch.tensor([5, 0, 99]))
        assert batch.is_contiguous(memory_format=torch.channels_last)
    computed = extract_features(kept, data, torch.float32, CPU, QuietProgress(), "f", 32)
    read = extract_features(kept, data, torch.float32, CPU, QuietProgress(), "f", 32, front=front)
    assert torch.equal(computed, read)
    # a split that is the first rows of the Hebbian images (train before STL-10's unlabeled)
    first = extract_features(
        kept, data[:60], torch.float32, CPU, QuietProgress(), "f", 32, front=front
    )
    assert torch.equal(first, computed[:60])


def test_an_unfilled_front_is_refused_by_the_features_pass(registry) -> None:
    recipe = small_recipe(registry)
    network = HebbianNetwork.from_recipe(recipe, 1, registry)
    front = FrontCache.allocate(network, (1, 28, 28), 10, CPU)
    with pytest.raises(ValueError, match="not filled"):
        extract_features(network, images(10), torch.float32, CPU, QuietProgress(), "f", front=front)
    front.layer = 2
    with pytest.raises(ValueError, match="not filled for 11 images"):
        extract_features(network, images(11), torch.float32, CPU, QuietProgress(), "f", front=front)


def test_all_at_once_learning_leaves_the_front_alone(registry) -> None:
    recipe = small_recipe(registry, "hebbian.mode=all-at-once")
    network = HebbianNetwork.from_recipe(recipe, 1, registry)
    front = FrontCache.allocate(network, (1, 28, 28), 100, CPU)
    trained(registry, recipe, images(), front)
    assert not front.filled


@dataclass
class FakeMachine:
    device: torch.device
    limit: MemoryLimit | None

    def memory_limit(self) -> MemoryLimit | None:
        return self.limit


@dataclass
class FakeMemory:
    device_bytes: int


@dataclass
class FakePlan:
    memory: FakeMemory


def test_a_run_keeps_the_front_only_where_it_pays_and_fits(registry) -> None:
    recipe = small_recipe(registry)
    network = HebbianNetwork.from_recipe(recipe, 1, registry)
    plan = FakePlan(FakeMemory(device_bytes=10**9))
    roomy = FakeMachine(CPU, MemoryLimit(10**10, "test"))

    def kept(recipe=recipe, machine=roomy, plan=plan):
        return keep_front(recipe, network, plan, machine, (1, 28, 28), 1000)

    front = kept()
    assert front is not None and front.rows(2).shape == (1000, 16, 7, 7)
    rows = 1000 * 8 * 14 * 14 * 4  # layer 1's output, the widest input, decides
    roomy = FakeMachine(CPU, MemoryLimit(10**9 + 2 * rows, "test"))
    assert kept(machine=roomy) is not None
    # half of what the limit leaves above the peak, at most
    assert kept(machine=FakeMachine(CPU, MemoryLimit(10**9 + 2 * rows - 1, "test"))) is None
    assert kept(machine=FakeMachine(CPU, None)) is None
    assert kept(machine=FakeMachine(torch.device("cuda"), roomy.limit)) is None
    assert kept(recipe=small_recipe(registry, "hebbian.mode=all-at-once")) is None
    assert kept(recipe=small_recipe(registry, "hebbian.epochs=0")) is None
    one_layer = load_recipe(RECIPES / "mnist_zero.toml", [], registry)
    assert keep_front(one_layer, network, plan, roomy, (1, 28, 28), 1000) is None
