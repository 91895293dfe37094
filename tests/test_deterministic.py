"""Deterministic distinct-filter initialisers (plugins/hebbkit_deterministic) and the
competition's tie-break option: exact values for small shapes against slow references,
"no two filters identical" wherever promised, norms, determinism, refused shapes."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hebbkit_deterministic.initializers import (
    ImpossibleShapeError,
    msequence_plan,
    msequence_starts,
)
from typer.testing import CliRunner

from hebbkit.cli.app import app
from hebbkit.config.recipe import load_recipe
from hebbkit.engine.diagnostics import describe_layers, distinct_rows
from hebbkit.engine.network import HebbianNetwork
from hebbkit.errors import RecipeError
from hebbkit.hadamard import (
    SCALES,
    gf2_mulmod,
    primitive_polynomial,
    sylvester_hadamard,
    walsh_signs,
)
from hebbkit.registry import Registry
from tests.conftest import RECIPES

INITS = ["hadamard-distinct", "zero-distinct"]
ORDERS = ["sylvester", "msequence"]
#: the MNIST presets: 3-layer (mnist_softhebb.toml) and the study's 2-layer (mnist_zero.toml)
PRESET_SHAPES = [(96, 1, 5, 5), (384, 96, 3, 3), (1536, 384, 3, 3), (128, 1, 3, 3)]
#: small and edge shapes: c_out = 2^n (every sign pattern), c_out > n, linear, 1×1 kernels
EDGE_SHAPES = [
    (4, 1, 2, 2),
    (8, 2, 3, 3),
    (6, 4),
    (2, 1),
    (4, 2),
    (8, 3, 1, 1),
    (7, 3),
    (1024, 10),
    (1000, 10),
    (16, 4, 1, 1),
    (1, 1, 1, 1),
    (96, 3, 5, 5),
    (32, 10),
]


def init(registry: Registry, name: str, shape: tuple[int, ...], seed: int = 0, **params):
    component = registry.get("initializer", name)
    return component.build(component.params(**params))(shape, torch.Generator().manual_seed(seed))


def sylvester(size: int) -> torch.Tensor:
    """Sylvester's definition, H_{m+1} = H_2 ⊗ H_m, independent of the popcount formula."""
    h = torch.ones(1, 1)
    while h.shape[0] < size:
        h = torch.kron(torch.tensor([[1.0, 1.0], [1.0, -1.0]]), h)
    return h


def walsh_reference(rows: list[int], columns: list[int]) -> torch.Tensor:
    return torch.tensor(
        [[(-1.0) ** bin(i & j).count("1") for j in columns] for i in rows], dtype=torch.float32
    )


# --- the shared maths -----------------------------------------------------------------------


def test_walsh_signs_are_sylvester_entries() -> None:
    h = sylvester(64)
    torch.testing.assert_close(sylvester_hadamard(64), h, rtol=0, atol=0)
    rows, columns = torch.tensor([0, 5, 63, 17]), torch.tensor([1, 2, 3, 40, 0])
    torch.testing.assert_close(walsh_signs(rows, columns), h[rows][:, columns], rtol=0, atol=0)


def test_zero_still_uses_the_same_hadamard_and_scales() -> None:
    from hebbkit_zero import initializers as zero

    assert zero.sylvester_hadamard is sylvester_hadamard and zero.SCALES is SCALES


def _period(poly: int, degree: int) -> int:
    state, steps = 1, 0
    while True:
        state = gf2_mulmod(state, 0b10, poly, degree)
        steps += 1
        if state == 1 or steps > 2**degree:
            return steps


@pytest.mark.parametrize("degree", range(2, 11))
def test_primitive_polynomial_is_the_smallest_of_full_period(degree: int) -> None:
    poly = primitive_polynomial(degree)
    assert poly >> degree == 1 and poly & 1
    assert _period(poly, degree) == 2**degree - 1
    smaller = range(2**degree + 1, poly, 2)
    assert all(_period(p, degree) != 2**degree - 1 for p in smaller)


def test_primitive_polynomials_known_values() -> None:
    # x²+x+1, x³+x+1, x⁴+x+1, x⁵+x²+1, x⁸+x⁴+x³+x²+1 (0x11D; 0x11B, AES's, is not primitive)
    assert [primitive_polynomial(d) for d in (2, 3, 4, 5, 8)] == [7, 11, 19, 37, 0x11D]


# --- hadamard-distinct: exact values ----------------------------------------------------------


def test_hadamard_distinct_4_1_2_2_exact(registry: Registry) -> None:
    # rows 1..4, columns 1..4 of H_8; c = 25/√4
    expected = torch.tensor(
        [[-1, 1, -1, 1], [1, -1, -1, 1], [-1, -1, 1, 1], [1, 1, 1, -1]], dtype=torch.float32
    )
    weight = init(registry, "hadamard-distinct", (4, 1, 2, 2))
    torch.testing.assert_close(weight, (expected * 12.5).view(4, 1, 2, 2), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("shape", "size", "columns"),
    [
        ((8, 2, 3, 3), 32, list(range(1, 19))),  # c_out ≤ n: rows 1..8, columns 1..n
        ((384, 96, 3, 3), 1024, list(range(1, 865))),
        ((6, 4), 8, [1, 2, 3, 4]),  # linear
        # c_out > n: the 7 powers of two 1..64 are needed, then the non-powers 3, 5, 6, 7, 9..
        ((96, 1, 5, 5), 128, [*range(1, 24), 32, 64]),
        ((128, 1, 3, 3), 256, [1, 2, 3, 4, 8, 16, 32, 64, 128]),
    ],
)
def test_hadamard_distinct_sylvester_exact(
    registry: Registry, shape: tuple, size: int, columns: list[int]
) -> None:
    c_out, n = shape[0], math.prod(shape[1:])
    expected = sylvester(size)[1 : c_out + 1][:, columns] * (25 / math.sqrt(n))
    weight = init(registry, "hadamard-distinct", shape)
    assert weight.dtype == torch.float32 and weight.shape == shape
    torch.testing.assert_close(weight.reshape(c_out, n), expected, rtol=0, atol=1e-6)


def test_hadamard_distinct_every_sign_pattern_when_c_out_is_2_to_the_n(registry: Registry) -> None:
    # (4, 2): rows 0..3 on the columns 1, 2 — all four sign patterns, row 0 included
    for order in ORDERS:
        weight = init(registry, "hadamard-distinct", (4, 2), order=order, scale="paper")
        expected = torch.tensor([[1.0, 1], [-1, 1], [1, -1], [-1, -1]]) * SCALES["paper"](2)
        torch.testing.assert_close(weight, expected, rtol=0, atol=0)


def test_msequence_4_1_2_2_exact(registry: Registry) -> None:
    # degree 4 (x⁴+x+1), stride 4: s = 1000 1001 1010 1110 …, period 15; filter k = s[4k:4k+4]
    # (s₁₅ = s₀), bit 1 ↦ −1
    assert msequence_plan(4, 4) == (4, 4)
    expected = torch.tensor(
        [[-1, 1, 1, 1], [-1, 1, 1, -1], [-1, 1, -1, 1], [-1, -1, -1, -1]], dtype=torch.float32
    )
    weight = init(registry, "hadamard-distinct", (4, 1, 2, 2), order="msequence")
    torch.testing.assert_close(weight, (expected * 12.5).view(4, 1, 2, 2), rtol=0, atol=0)


@pytest.mark.parametrize("shape", [(4, 1, 2, 2), (8, 2, 3, 3), (96, 1, 5, 5), (6, 4), (40, 7)])
def test_msequence_is_a_block_of_sylvester(registry: Registry, shape: tuple) -> None:
    """Filter k = H[r_k, α^t]: rows r_k = the first A bits of window k, columns α^t."""
    c_out, n = shape[0], math.prod(shape[1:])
    degree, stride = msequence_plan(c_out, n)
    assert degree <= n and math.gcd(stride, 2**degree - 1) == 1 and stride >= n
    poly = primitive_polynomial(degree)
    columns, element = [], 1
    for _ in range(n):
        columns.append(element)
        element = gf2_mulmod(element, 0b10, poly, degree)
    assert columns[:degree] == [1 << b for b in range(degree)]  # the powers of two come first
    # the m-sequence bit s_j = coef₀(α^j), from the starts α^(k·stride)
    rows = []
    for start in msequence_starts(c_out, degree, stride):
        bits, x = 0, start
        for b in range(degree):
            bits |= (x & 1) << b
            x = gf2_mulmod(x, 0b10, poly, degree)
        rows.append(bits)
    weight = init(registry, "hadamard-distinct", shape, order="msequence", scale="orthonormal")
    expected = walsh_reference(rows, columns) * SCALES["orthonormal"](math.ceil(math.log2(c_out)))
    torch.testing.assert_close(weight.reshape(c_out, n), expected, rtol=0, atol=1e-7)


# --- zero-distinct: exact values --------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "flat"),
    [
        ((4, 1, 2, 2), [3, 1, 2, 0]),  # centre (1, 1) of an even kernel, then by distance
        ((8, 2, 3, 3), [4, 13, 1, 10, 3, 12, 5, 14]),  # centre of both channels, then tap 1, 3..
        ((3, 5), [0, 1, 2]),  # linear: partial identity
    ],
)
def test_zero_distinct_one_hot_exact(registry: Registry, shape: tuple, flat: list[int]) -> None:
    weight = init(registry, "zero-distinct", shape)
    expected = torch.zeros(shape[0], math.prod(shape[1:]))
    expected[range(shape[0]), flat] = 25.0
    torch.testing.assert_close(weight.reshape(shape[0], -1), expected, rtol=0, atol=0)


def test_zero_distinct_on_384_96_3_3(registry: Registry) -> None:
    weight = init(registry, "zero-distinct", (384, 96, 3, 3), scale="study")
    taps = [4, 1, 3, 5]  # the centre, then the four neighbours in row-major order
    expected = torch.zeros(384, 96, 3, 3)
    for group, tap in enumerate(taps):
        for channel in range(96):
            expected[group * 96 + channel, channel, tap // 3, tap % 3] = 1.0
    torch.testing.assert_close(weight, expected, rtol=0, atol=0)


@pytest.mark.parametrize("scale", ["paper", "orthonormal", "study"])
@pytest.mark.parametrize("shape", [(3, 5, 3, 3), (4, 4, 1, 1), (2, 6), (5, 5)])
def test_zero_distinct_is_zero_when_c_out_le_c_in(registry: Registry, shape, scale) -> None:
    torch.testing.assert_close(
        init(registry, "zero-distinct", shape, scale=scale),
        init(registry, "zero", shape, scale=scale),
        rtol=0,
        atol=0,
    )


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("shape", [(96, 1, 5, 5), (6, 4), (128, 1, 3, 3)])
def test_zero_distinct_is_dense_when_c_out_gt_n(registry: Registry, shape, order) -> None:
    torch.testing.assert_close(
        init(registry, "zero-distinct", shape, order=order),
        init(registry, "hadamard-distinct", shape, order=order),
        rtol=0,
        atol=0,
    )


# --- promises over many shapes ----------------------------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("name", INITS)
@pytest.mark.parametrize("shape", PRESET_SHAPES + EDGE_SHAPES)
def test_every_filter_distinct_values_and_norms(registry: Registry, shape, name, order) -> None:
    c_out, n = shape[0], math.prod(shape[1:])
    weight = init(registry, name, shape, order=order, norm=10.0)
    matrix = weight.reshape(c_out, n)
    assert distinct_rows(matrix) == c_out
    one_hot = name == "zero-distinct" and c_out <= n
    nonzeros = 1 if one_hot else n
    c = 10.0 / math.sqrt(nonzeros)
    # values in {0, ±c}, exactly `nonzeros` non-zeros per filter, every norm = 10
    assert all(v == 0 or v == pytest.approx(c, rel=1e-6) for v in matrix.abs().unique().tolist())
    assert ((matrix != 0).sum(dim=1) == nonzeros).all()
    torch.testing.assert_close(matrix.norm(dim=1), torch.full((c_out,), 10.0))


@pytest.mark.parametrize("scale", ["paper", "orthonormal", "study"])
def test_zero_scales(registry: Registry, scale: str) -> None:
    # dense: ZerO's Hadamard scale with m = ⌈log₂ 96⌉ = 7; one-hot: 1, like ZerO's identity
    weight = init(registry, "hadamard-distinct", (96, 1, 5, 5), scale=scale)
    assert weight.abs().unique().tolist() == [pytest.approx(SCALES[scale](7))]
    assert init(registry, "zero-distinct", (384, 96, 3, 3), scale=scale).max() == 1.0


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("name", INITS)
def test_ignores_the_generator_and_global_rng(registry: Registry, name: str, order: str) -> None:
    shape = (96, 1, 5, 5)
    torch.manual_seed(1)
    first = init(registry, name, shape, seed=1, order=order)
    torch.manual_seed(2)
    second = init(registry, name, shape, seed=2, order=order)
    assert torch.equal(first, second)
    first.zero_()  # the cached sign matrix is not handed out
    assert torch.equal(init(registry, name, shape, order=order), second)


def test_msequence_differs_from_sylvester(registry: Registry) -> None:
    a = init(registry, "hadamard-distinct", (96, 1, 5, 5))
    b = init(registry, "hadamard-distinct", (96, 1, 5, 5), order="msequence")
    assert not torch.equal(a, b)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("name", INITS)
@pytest.mark.parametrize("shape", [(3, 1, 1, 1), (5, 2), (1025, 10), (17, 4, 1, 1)])
def test_impossible_shapes_are_refused(registry: Registry, name, order, shape) -> None:
    with pytest.raises(ImpossibleShapeError, match=r"Weight shape \(") as error:
        init(registry, name, shape, order=order)
    assert isinstance(error.value, ValueError) and isinstance(error.value, RecipeError)
    assert str(tuple(shape)) in str(error.value)


def test_impossible_shape_is_a_user_error_on_the_command_line() -> None:
    result = CliRunner().invoke(
        app,
        [
            "inspect",
            str(RECIPES / "mnist_zero.toml"),
            "-s",
            "layers.0.kernel=1",
            "-s",
            "layers.0.init=hadamard-distinct",
        ],
    )
    assert result.exit_code == 2, result.output
    assert "(128, 1, 1, 1)" in result.output and "Traceback" not in result.output


# --- the presets, through hebbkit inspect -----------------------------------------------------


@pytest.mark.parametrize(
    "init_override",
    [
        "layers.*.init=hadamard-distinct",
        'layers.*.init={name="hadamard-distinct", order="msequence"}',
        "layers.*.init=zero-distinct",
    ],
)
def test_inspect_shows_every_filter_distinct(init_override: str) -> None:
    result = CliRunner().invoke(
        app, ["inspect", str(RECIPES / "mnist_softhebb.toml"), "-s", init_override, "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["layers"]
    assert [r["distinct_filters"] for r in rows] == [96, 384, 1536]
    assert [r["mean_norm"] for r in rows] == pytest.approx([25.0] * 3)


def test_deterministic_recipes(registry: Registry) -> None:
    for recipe in ("mnist_deterministic.toml", "fashion_mnist_deterministic.toml"):
        spec = load_recipe(RECIPES / recipe, [], registry)
        rows = describe_layers(HebbianNetwork.from_recipe(spec, 1, registry))
        assert [r["init"] for r in rows] == ["hadamard-distinct"] * 3
        assert [r["distinct_filters"] for r in rows] == [96, 384, 1536]
        assert [r["nonzero_weights"] for r in rows] == [2400, 331_776, 5_308_416]
    two_layer = load_recipe(RECIPES / "mnist_zero.toml", ["layers.*.init=zero-distinct"], registry)
    (row,) = describe_layers(HebbianNetwork.from_recipe(two_layer, 1, registry))
    assert row["distinct_filters"] == 128 and row["mean_norm"] == pytest.approx(25.0)


# --- the competition's tie-break --------------------------------------------------------------


def reference_winners(u: torch.Tensor, tie_break: str, tolerance: float = 0.0) -> list[int]:
    """One row at a time: the tied neurons in index order, then the rule's pick."""
    out = []
    for p, row in enumerate(u.tolist()):
        top = max(row)
        tied = [k for k, v in enumerate(row) if v >= top - tolerance * abs(top)]
        out.append(tied[0] if tie_break == "lowest" else tied[p % len(tied)])
    return out


def tied_inputs() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    ties = torch.randint(0, 3, (300, 7), generator=generator).float()  # many ties
    ties[:50] = 5.0  # whole rows tied, like identical ZerO filters
    return ties


def compete(registry: Registry, name: str, **params):
    component = registry.get("competition", name)
    return component.build(component.params(**params))


@pytest.mark.parametrize("tie_break", ["lowest", "position"])
@pytest.mark.parametrize("name", ["hard", "softkrotov"])
def test_tie_break_winner_matches_the_slow_reference(registry, name: str, tie_break: str) -> None:
    u = tied_inputs()
    y = compete(registry, name, tie_break=tie_break)(u)
    # the winner is the one neuron with a positive signal (softkrotov) or the 1 (hard)
    assert ((y > 0).sum(dim=1) == 1).all()
    assert y.argmax(dim=1).tolist() == reference_winners(u, tie_break)


def test_tie_break_with_tolerance(registry: Registry) -> None:
    u = tied_inputs() * 100 + torch.rand(300, 7, generator=torch.Generator().manual_seed(1)) * 1e-3
    for tie_break in ("lowest", "position"):
        y = compete(registry, "hard", tie_break=tie_break, tie_tolerance=1e-4)(u)
        assert y.argmax(dim=1).tolist() == reference_winners(u, tie_break, 1e-4)
    # without tolerance only exact ties count
    exact = compete(registry, "hard", tie_break="position")(u)
    assert exact.argmax(dim=1).tolist() == reference_winners(u, "position")
    assert reference_winners(u, "position") != reference_winners(u, "position", 1e-4)


@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("tie_break", ["lowest", "position"])
def test_hardkrotov_tie_break_ranks(registry: Registry, tie_break: str, rank: int) -> None:
    u = tied_inputs()
    y = compete(registry, "hardkrotov", tie_break=tie_break, rank=rank, delta=0.5)(u)
    masked = u.clone()
    expected_winner = reference_winners(masked, tie_break)
    index = expected_winner
    for _ in range(rank - 1):
        masked[range(len(index)), index] = float("-inf")
        index = reference_winners(masked, tie_break)
    assert y.argmax(dim=1).tolist() == expected_winner
    assert y.argmin(dim=1).tolist() == index
    assert ((y == -0.5).sum(dim=1) == 1).all()


@pytest.mark.parametrize("name", ["hard", "softkrotov", "hardkrotov"])
def test_default_tie_break_is_the_lowest_index(registry: Registry, name: str) -> None:
    u = tied_inputs()
    default = compete(registry, name)(u)
    assert torch.equal(default, compete(registry, name, tie_break="lowest")(u))
    assert default.argmax(dim=1).tolist() == u.argmax(dim=1).tolist()


def test_position_tie_break_separates_identical_zero_filters(registry: Registry) -> None:
    """All 128 ZerO filters of the 2-layer model start identical; one Hebbian step with the
    lowest-index tie-break leaves 2 distinct (the winner and the rest), by position all 128."""
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    counts = {}
    for tie_break in ("lowest", "position"):
        spec = load_recipe(
            RECIPES / "mnist_zero.toml",
            [f'layers.0.competition={{name="softkrotov", tie_break="{tie_break}"}}'],
            registry,
        )
        layer = HebbianNetwork.from_recipe(spec, 1, registry).layers[0]
        assert distinct_rows(layer.weight_matrix()) == 1
        layer.learn(x, 0.0, want_output=False)
        counts[tie_break] = distinct_rows(layer.weight_matrix())
    assert counts == {"lowest": 2, "position": 128}
