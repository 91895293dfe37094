"""Initialisers: exact ZerO values for small shapes, statistics of the random ones, and the
study's non-zero / distinct-filter counts (algorithms.md §2)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from hebbkit.config.recipe import load_recipe
from hebbkit.engine.diagnostics import describe_layers
from hebbkit.engine.network import HebbianNetwork
from hebbkit.registry import Registry
from tests.conftest import RECIPES

# Sylvester Hadamard H_3 (8 × 8), written out: H_m = [[H, H], [H, -H]].
H8 = torch.tensor(
    [
        [1, 1, 1, 1, 1, 1, 1, 1],
        [1, -1, 1, -1, 1, -1, 1, -1],
        [1, 1, -1, -1, 1, 1, -1, -1],
        [1, -1, -1, 1, 1, -1, -1, 1],
        [1, 1, 1, 1, -1, -1, -1, -1],
        [1, -1, 1, -1, -1, 1, -1, 1],
        [1, 1, -1, -1, -1, -1, 1, 1],
        [1, -1, -1, 1, -1, 1, 1, -1],
    ],
    dtype=torch.float32,
)


def scale(kind: str, m: int) -> float:
    return {
        "paper": 2 ** (-(m - 1) / 2),
        "orthonormal": 2 ** (-m / 2),
        "study": 2 ** (-m / 2) * 2 ** (-(m - 1) / 2),
    }[kind]


def init(registry: Registry, name: str, shape: tuple[int, ...], seed: int = 0, **params):
    component = registry.get("initializer", name)
    return component.build(component.params(**params))(shape, torch.Generator().manual_seed(seed))


def conv_with_centre(matrix: torch.Tensor, k: int) -> torch.Tensor:
    weight = torch.zeros(matrix.shape[0], matrix.shape[1], k, k)
    weight[:, :, k // 2, k // 2] = matrix
    return weight


SCALES = ["paper", "orthonormal", "study"]


def test_zero_scales_have_the_documented_values() -> None:
    # m = 3: paper 1/2, orthonormal 1/(2√2), study 1/(4√2)
    assert scale("paper", 3) == pytest.approx(0.5)
    assert scale("orthonormal", 3) == pytest.approx(1 / (2 * math.sqrt(2)))
    assert scale("study", 3) == pytest.approx(1 / (4 * math.sqrt(2)))


@pytest.mark.parametrize("kind", SCALES)
@pytest.mark.parametrize(
    ("shape", "m"),
    [
        ((4, 1, 3, 3), 2),  # a column of ones: every filter identical
        ((8, 3, 3, 3), 3),
        ((6, 2, 3, 3), 3),  # c_out not a power of two: m = ceil(log2 6) = 3
        ((5, 3, 5, 5), 3),
        ((2, 1, 1, 1), 1),
    ],
)
def test_zero_hadamard_block(registry: Registry, kind: str, shape: tuple, m: int) -> None:
    c_out, c_in, k, _ = shape
    weight = init(registry, "zero", shape, scale=kind)
    expected = conv_with_centre(H8[:c_out, :c_in] * scale(kind, m), k)
    assert weight.dtype == torch.float32
    torch.testing.assert_close(weight, expected, rtol=0, atol=1e-7)


def test_zero_hadamard_block_16(registry: Registry) -> None:
    """m = 4 needs H_4 = [[H8, H8], [H8, -H8]]: rows 8.. of column 0..2 repeat, columns 8.. flip."""
    h16 = torch.cat([torch.cat([H8, H8], 1), torch.cat([H8, -H8], 1)], 0)
    weight = init(registry, "zero", (12, 9, 3, 3), scale="paper")
    torch.testing.assert_close(weight, conv_with_centre(h16[:12, :9] * 2**-1.5, 3))


@pytest.mark.parametrize("kind", SCALES)
def test_zero_identity_when_square(registry: Registry, kind: str) -> None:
    weight = init(registry, "zero", (3, 3, 3, 3), scale=kind)
    torch.testing.assert_close(weight, conv_with_centre(torch.eye(3), 3), rtol=0, atol=0)


@pytest.mark.parametrize("kind", SCALES)
def test_zero_partial_identity_when_narrowing(registry: Registry, kind: str) -> None:
    weight = init(registry, "zero", (2, 5, 3, 3), scale=kind)
    expected = torch.zeros(2, 5, 3, 3)
    expected[0, 0, 1, 1] = expected[1, 1, 1, 1] = 1.0
    torch.testing.assert_close(weight, expected, rtol=0, atol=0)


@pytest.mark.parametrize(("k", "centre"), [(1, 0), (2, 1), (4, 2), (5, 2), (6, 3)])
def test_zero_centre_tap_even_and_odd_kernels(registry: Registry, k: int, centre: int) -> None:
    weight = init(registry, "zero", (4, 4, k, k))
    nonzero = weight.nonzero().tolist()
    assert nonzero == [[i, i, centre, centre] for i in range(4)]


@pytest.mark.parametrize("kind", SCALES)
def test_zero_linear_shapes(registry: Registry, kind: str) -> None:
    torch.testing.assert_close(
        init(registry, "zero", (5, 3), scale=kind), H8[:5, :3] * scale(kind, 3)
    )
    torch.testing.assert_close(init(registry, "zero", (3, 3), scale=kind), torch.eye(3))
    torch.testing.assert_close(init(registry, "zero", (2, 4), scale=kind), torch.eye(2, 4))


def test_zero_ignores_the_generator(registry: Registry) -> None:
    assert torch.equal(
        init(registry, "zero", (8, 3, 3, 3), seed=1), init(registry, "zero", (8, 3, 3, 3), seed=2)
    )


def test_zero_default_scale_is_paper(registry: Registry) -> None:
    torch.testing.assert_close(
        init(registry, "zero", (8, 3, 3, 3)), init(registry, "zero", (8, 3, 3, 3), scale="paper")
    )


# --- random ---------------------------------------------------------------------------------

SHAPE = (512, 16, 5, 5)  # fan_in n = 400, 204 800 values


def test_random_normal_std_and_neuron_norm(registry: Registry) -> None:
    weight = init(registry, "random", SHAPE, radius=25.0)
    n = 16 * 25
    assert weight.mean().abs() < 0.02
    assert weight.std().item() == pytest.approx(25 / math.sqrt(n), rel=0.02)
    assert weight.flatten(1).norm(dim=1).mean().item() == pytest.approx(25.0, rel=0.02)
    assert (weight < 0).any()


def test_random_uniform_range_and_norm(registry: Registry) -> None:
    weight = init(registry, "random", SHAPE, radius=10.0, distribution="uniform")
    upper = math.sqrt(3 * 10.0**2 / 400)
    assert weight.min() >= 0 and weight.max() < upper
    assert weight.max().item() == pytest.approx(upper, rel=0.01)
    assert weight.mean().item() == pytest.approx(upper / 2, rel=0.02)
    # E[w²] = upper²/3 = R²/n, so the mean neuron norm is close to R
    assert weight.flatten(1).norm(dim=1).mean().item() == pytest.approx(10.0, rel=0.02)


def test_random_linear_fan_in(registry: Registry) -> None:
    weight = init(registry, "random", (300, 100), radius=5.0)
    assert weight.std().item() == pytest.approx(0.5, rel=0.03)


@pytest.mark.parametrize("p", [0.5, 0.2])
def test_random_binary_values_and_fraction(registry: Registry, p: float) -> None:
    weight = init(registry, "random-binary", SHAPE, p=p)
    assert set(weight.unique().tolist()) == {0.0, 1.0}
    assert weight.mean().item() == pytest.approx(p, abs=0.005)
    # neuron norms ≈ √(p·n)
    assert weight.flatten(1).norm(dim=1).mean().item() == pytest.approx(
        math.sqrt(p * 400), rel=0.03
    )


def test_random_binary_default_p_and_p_one(registry: Registry) -> None:
    assert init(registry, "random-binary", (64, 64)).mean().item() == pytest.approx(0.5, abs=0.02)
    assert torch.equal(init(registry, "random-binary", (4, 3), p=1.0), torch.ones(4, 3))


@pytest.mark.parametrize(
    ("name", "params"),
    [("random", {}), ("random", {"distribution": "uniform"}), ("random-binary", {})],
)
def test_random_inits_are_deterministic_per_seed(registry: Registry, name: str, params) -> None:
    shape = (8, 3, 3, 3)
    first = init(registry, name, shape, seed=7, **params)
    assert torch.equal(first, init(registry, name, shape, seed=7, **params))
    assert not torch.equal(first, init(registry, name, shape, seed=8, **params))


def test_network_layers_get_distinct_but_reproducible_seeds(registry: Registry) -> None:
    spec = load_recipe(RECIPES / "mnist_softhebb.toml", ["layers.*.channels=4"], registry)
    a = HebbianNetwork.from_recipe(spec, 1, registry)
    b = HebbianNetwork.from_recipe(spec, 1, registry)
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert torch.equal(la.weight, lb.weight)
    other = load_recipe(
        RECIPES / "mnist_softhebb.toml", ["layers.*.channels=4", "seed=1"], registry
    )
    c = HebbianNetwork.from_recipe(other, 1, registry)
    assert not torch.equal(a.layers[0].weight, c.layers[0].weight)


# --- the study's Table 2 --------------------------------------------------------------------


def describe(registry: Registry, recipe: Path, overrides: list[str]) -> list[dict]:
    spec = load_recipe(recipe, overrides, registry)
    return describe_layers(HebbianNetwork.from_recipe(spec, 1, registry))


def test_zero_on_mnist_preset_nonzeros_and_distinct_filters(registry: Registry) -> None:
    rows = describe(
        registry, RECIPES / "mnist_softhebb.toml", ['layers.*.init={name="zero", scale="study"}']
    )
    assert [r["shape"] for r in rows] == [[96, 1, 5, 5], [384, 96, 3, 3], [1536, 384, 3, 3]]
    # one non-zero per (out, in) pair at the centre tap: 96·1, 384·96, 1536·384
    assert [r["nonzero_weights"] for r in rows] == [96, 36_864, 589_824]
    # Row i of the Sylvester Hadamard matrix restricted to columns j < c_in is
    # (-1)^popcount(i & j); with c_in ≤ 2^b only the low b bits of i matter, so the block has
    # min(c_out, 2^ceil(log2 c_in)) distinct rows: c_in = 1 → 1 (all 96 filters identical),
    # c_in = 96 → 128 of 384, c_in = 384 → 512 of 1536.
    assert [r["distinct_filters"] for r in rows] == [1, 128, 512]
    # every neuron's norm is scale·√c_in: study scale with m = 7, 9, 11
    for row, m, c_in in zip(rows, (7, 9, 11), (1, 96, 384), strict=True):
        expected = scale("study", m) * math.sqrt(c_in)
        assert row["mean_norm"] == pytest.approx(expected, rel=1e-5)
        assert row["min_norm"] == pytest.approx(row["max_norm"], rel=1e-5)


def test_random_and_binary_inits_on_mnist_preset(registry: Registry) -> None:
    rows = describe(registry, RECIPES / "mnist_softhebb.toml", ["layers.*.channels=64"])
    assert [r["distinct_filters"] for r in rows] == [64, 64, 64]
    assert rows[0]["mean_norm"] == pytest.approx(25.0, rel=0.1)
    # the initial rate is η₀·(|‖w‖−1|)^q, about 0.08·√24 for layer 1
    assert rows[0]["initial_lr"] == pytest.approx(0.08 * math.sqrt(24), rel=0.1)
    binary = describe(
        registry,
        RECIPES / "mnist_softhebb.toml",
        ["layers.*.channels=64", "layers.*.init=random-binary"],
    )
    assert binary[1]["nonzero_weights"] == pytest.approx(0.5 * 64 * 64 * 9, rel=0.05)


def test_zero_on_tuned_two_layer_model(registry: Registry) -> None:
    (row,) = describe(registry, RECIPES / "mnist_zero.toml", [])
    assert row["shape"] == [128, 1, 3, 3]
    assert row["nonzero_weights"] == 128 and row["distinct_filters"] == 1
    assert row["mean_norm"] == pytest.approx(scale("study", 7), rel=1e-5)
