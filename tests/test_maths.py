"""The learning maths against slow, explicit Python loops on tiny tensors.

Every reference below is written from ``../shared/docs/algorithms.md`` §1 with plain loops in
float64, independently of the GEMM formulation hebbkit uses.
"""

from __future__ import annotations

import copy
import itertools
import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from hebbkit.config.recipe import validate_recipe
from hebbkit.engine import products
from hebbkit.engine.network import HebbianLayer
from hebbkit.plasticity import ADAPTIVE_EPSILON, HebbianBatch, apply_update, neuron_rates
from hebbkit.registry import Registry
from tests.conftest import TINY_RECIPE

# --- helpers -------------------------------------------------------------------------------


def layer_config(registry: Registry, **layer: Any) -> Any:
    """A validated layer config: TINY_RECIPE's layer with ``layer`` keys replaced."""
    data = copy.deepcopy(TINY_RECIPE)
    data["layers"][0].update(layer)
    return validate_recipe(data, registry).layers[0]


def make_layer(registry: Registry, in_channels: int, seed: int = 0, **layer: Any) -> HebbianLayer:
    config = layer_config(registry, **layer)
    return HebbianLayer(config, in_channels, registry, torch.Generator().manual_seed(seed))


def reflect(i: int, n: int) -> int:
    """Reflect padding index (edge not repeated), as numpy/torch 'reflect'."""
    if i < 0:
        return -i
    if i >= n:
        return 2 * (n - 1) - i
    return i


def ref_pad(x: torch.Tensor, p: int, mode: str) -> torch.Tensor:
    b, c, h, w = x.shape
    out = torch.zeros(b, c, h + 2 * p, w + 2 * p, dtype=torch.float64)
    for bi, ci, i, j in itertools.product(range(b), range(c), range(h + 2 * p), range(w + 2 * p)):
        si, sj = i - p, j - p
        if mode == "reflect":
            out[bi, ci, i, j] = x[bi, ci, reflect(si, h), reflect(sj, w)]
        elif 0 <= si < h and 0 <= sj < w:
            out[bi, ci, i, j] = x[bi, ci, si, sj]
    return out


def ref_bn(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """BatchNorm2d(affine=False) in training mode: per channel, biased variance."""
    x = x.double()
    out = torch.empty_like(x)
    for c in range(x.shape[1]):
        values = [float(v) for v in x[:, c].flatten()]
        mean = sum(values) / len(values)
        var = sum((v - mean) ** 2 for v in values) / len(values)
        out[:, c] = (x[:, c] - mean) / math.sqrt(var + eps)
    return out


def ref_soft(u: list[float], beta: float) -> list[float]:
    top = max(u)
    e = [math.exp(beta * (v - top)) for v in u]
    return [v / sum(e) for v in e]


def first_argmax(u: list[float]) -> int:
    best = 0
    for k, v in enumerate(u):
        if v > u[best]:
            best = k
    return best


def ref_compete(u: list[float], name: str, beta: float = 1.0, delta=0.4, rank=2) -> list[float]:
    winner = first_argmax(u)
    if name == "soft":
        return ref_soft(u, beta)
    if name == "softkrotov":
        y = ref_soft(u, beta)
        return [v if k == winner else -v for k, v in enumerate(y)]
    y = [0.0] * len(u)
    y[winner] = 1.0
    if name == "hardkrotov":
        order = sorted(range(len(u)), key=lambda k: (-u[k], k))  # ties: lower index first
        y[order[rank - 1]] -= delta
    return y


def ref_rule(name: str, w: list[list[float]], x: list[float], u, y) -> list[list[float]]:
    """One sample's contribution to Δw for rule ``name``."""
    out = []
    for k, row in enumerate(w):
        if name == "softhebb":
            out.append([y[k] * xi - y[k] * u[k] * wi for xi, wi in zip(x, row, strict=True)])
        elif name == "oja":
            out.append([y[k] * (xi - y[k] * wi) for xi, wi in zip(x, row, strict=True)])
        else:  # hebb: the radial part is removed after summing, see ref_conv_delta
            out.append([y[k] * xi for xi in x])
    return out


def ref_conv_delta(
    x: torch.Tensor,
    weight: torch.Tensor,
    *,
    padding: int,
    stride: int,
    dilation: int,
    mode: str = "reflect",
    rule: str = "softhebb",
    competition: str = "softkrotov",
    beta: float = 1.0,
    batch_norm: bool = False,
) -> torch.Tensor:
    """Δw summed over batch × output positions, each output pixel paired with its patch."""
    if batch_norm:
        x = ref_bn(x)
    xp = ref_pad(x.double(), padding, mode)
    c_out, c_in, k, _ = weight.shape
    w = weight.double().contiguous()
    rows = [[float(v) for v in w[o].flatten()] for o in range(c_out)]
    out_h = (xp.shape[2] - dilation * (k - 1) - 1) // stride + 1
    out_w = (xp.shape[3] - dilation * (k - 1) - 1) // stride + 1
    total = [[0.0] * len(rows[0]) for _ in range(c_out)]
    for b, oh, ow in itertools.product(range(xp.shape[0]), range(out_h), range(out_w)):
        patch = [
            float(xp[b, c, oh * stride + i * dilation, ow * stride + j * dilation])
            for c in range(c_in)
            for i in range(k)
            for j in range(k)
        ]
        u = [sum(a * b_ for a, b_ in zip(row, patch, strict=True)) for row in rows]
        y = ref_compete(u, competition, beta)
        for o, contribution in enumerate(ref_rule(rule, rows, patch, u, y)):
            total[o] = [t + c for t, c in zip(total[o], contribution, strict=True)]
    delta = torch.tensor(total, dtype=torch.float64)
    if rule == "hebb":
        w2 = w.view(c_out, -1)
        radial = (delta * w2).sum(1, keepdim=True) / (w2 * w2).sum(1, keepdim=True)
        delta = delta - radial * w2
    return delta.view(weight.shape)


def assert_close(actual: torch.Tensor, expected: torch.Tensor, rel: float = 2e-4) -> None:
    scale = float(expected.abs().max())
    torch.testing.assert_close(
        actual.double(), expected.double(), rtol=rel, atol=rel * max(scale, 1e-12)
    )


# --- the convolutional update through HebbianLayer.learn ------------------------------------


@pytest.fixture(params=["patches", "conv"])
def products_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with the patch-matrix products (the CPU default) and with the
    convolution kernels (the GPU's, and the CPU's for patch matrices over PATCH_BYTES)."""
    if request.param == "conv":
        monkeypatch.setattr(products, "PATCH_BYTES", 0)
    return request.param


GEOMETRY = {"kernel": 3, "stride": 2, "dilation": 2, "padding": 2}


def _learned_delta(registry: Registry, x: torch.Tensor, lr: float = 0.5, **layer: Any):
    """Run one learn step with a plain rate and no normalisation; recover Δw."""
    plasticity = {
        "name": "softhebb",
        "lr": lr,
        "adaptive": False,
        "normalize": "none",
        **layer.pop("plasticity", {}),
    }
    spec = {
        "channels": 4,
        "init": {"name": "random", "radius": 1.0},
        "batch_norm": False,
        **GEOMETRY,
        **layer,
    }
    spec["plasticity"] = plasticity
    layer_ = make_layer(registry, x.shape[1], **spec)
    before = layer_.weight.clone()
    out = layer_.learn(x, progress=0.0)
    return layer_, before, (layer_.weight - before) / lr, out


@pytest.mark.parametrize("competition", ["soft", "softkrotov", "hard", "hardkrotov"])
def test_softhebb_conv_delta_matches_loops(
    registry: Registry, products_path: str, competition: str
) -> None:
    # non-square input, reflect padding 2, stride 2, dilation 2
    x = torch.randn(2, 2, 9, 11, generator=torch.Generator().manual_seed(1))
    beta = 0.7
    _, before, delta, _ = _learned_delta(
        registry,
        x,
        plasticity={"name": "softhebb"},
        competition={"name": competition}
        if competition == "hardkrotov"
        else {"name": competition, "t_invert": beta},
    )
    expected = ref_conv_delta(
        x,
        before,
        **{k: v for k, v in GEOMETRY.items() if k != "kernel"},
        competition=competition,
        beta=beta,
    )
    assert_close(delta, expected)


@pytest.mark.parametrize("rule", ["softhebb", "oja", "hebb"])
@pytest.mark.parametrize("mode", ["reflect", "zeros"])
def test_rule_conv_delta_matches_loops(
    registry: Registry, products_path: str, rule: str, mode: str
) -> None:
    x = torch.randn(2, 3, 8, 7, generator=torch.Generator().manual_seed(2))
    _, before, delta, _ = _learned_delta(
        registry, x, plasticity={"name": rule}, padding_mode=mode, competition={"name": "soft"}
    )
    expected = ref_conv_delta(
        x, before, padding=2, stride=2, dilation=2, mode=mode, rule=rule, competition="soft"
    )
    assert_close(delta, expected)


def test_hebb_update_is_orthogonal_to_weights(registry: Registry) -> None:
    x = torch.randn(2, 1, 6, 6, generator=torch.Generator().manual_seed(3))
    _, before, delta, _ = _learned_delta(registry, x, plasticity={"name": "hebb"})
    radial = (delta.flatten(1).double() * before.flatten(1).double()).sum(1)
    assert radial.abs().max() < 1e-4 * delta.abs().max()


def test_batch_norm_is_applied_before_padding_and_learning(
    registry: Registry, products_path: str
) -> None:
    x = 3.0 + 2.0 * torch.randn(3, 2, 6, 5, generator=torch.Generator().manual_seed(4))
    layer, before, delta, _ = _learned_delta(registry, x, batch_norm=True)
    expected = ref_conv_delta(x, before, padding=2, stride=2, dilation=2, batch_norm=True)
    assert_close(delta, expected, rel=5e-4)
    # the running statistics move only while the block learns (momentum 0.1 from 0 / 1)
    mean = x.double().mean(dim=(0, 2, 3))
    torch.testing.assert_close(layer.bn.running_mean.double(), 0.1 * mean, rtol=1e-5, atol=1e-6)


def test_learn_output_is_activation_of_preactivation(
    registry: Registry, products_path: str
) -> None:
    """learn() passes on pool(activation(u)) of the old weights, with u laid out as (B,C,H,W)."""
    x = torch.randn(2, 2, 9, 11, generator=torch.Generator().manual_seed(5))
    layer, before, _, out = _learned_delta(
        registry,
        x,
        activation={"name": "repu", "power": 2.0},
        pool={"name": "identity"},
    )
    u = F.conv2d(ref_pad(x, 2, "reflect").float(), before, stride=2, dilation=2)
    assert out.shape == u.shape == (2, 4, 5, 6)
    torch.testing.assert_close(out, torch.relu(u) ** 2, rtol=1e-4, atol=1e-4)
    # forward() (frozen path) computes the same pre-activation with the current weight
    torch.testing.assert_close(
        layer.preactivation(x),
        F.conv2d(ref_pad(x, 2, "reflect").float(), layer.weight, stride=2, dilation=2),
        rtol=1e-4,
        atol=1e-4,
    )


def test_identical_zero_filters_split_only_by_argmax_ties(
    registry: Registry, products_path: str
) -> None:
    """ZerO layer 1 (c_in = 1): identical filters, so the lowest index wins every tie."""
    layer = make_layer(
        registry,
        1,
        channels=8,
        kernel=3,
        padding=1,
        batch_norm=False,
        init={"name": "zero", "scale": "study"},
        competition={"name": "softkrotov"},
    )
    assert torch.unique(layer.weight_matrix(), dim=0).shape[0] == 1
    x = torch.rand(4, 1, 6, 6, generator=torch.Generator().manual_seed(6))
    layer.learn(x, progress=0.0)
    rows = layer.weight_matrix()
    # neuron 0 wins everywhere (Hebbian); 1..7 all receive the same anti-Hebbian update
    for k in range(2, 8):
        torch.testing.assert_close(rows[k], rows[1], rtol=1e-6, atol=1e-7)
    assert (rows[0] - rows[1]).abs().max() > 1e-3


# --- the rules on the patch-matrix view ----------------------------------------------------


@pytest.mark.parametrize("rule", ["softhebb", "oja", "hebb"])
def test_rule_delta_matches_loops(registry: Registry, rule: str) -> None:
    g = torch.Generator().manual_seed(7)
    weight, patches = torch.randn(3, 5, generator=g), torch.randn(6, 5, generator=g)
    u = patches @ weight.T
    y = torch.softmax(u, dim=1)
    batch = HebbianBatch(u=u, y=y, correlate=lambda s: s.T @ patches, patches=lambda: patches)
    delta = registry.get("plasticity", rule).build().delta(weight, batch)
    rows = weight.double().tolist()
    expected = torch.zeros(3, 5, dtype=torch.float64)
    for n in range(6):
        part = ref_rule(rule, rows, patches[n].double().tolist(), u[n].tolist(), y[n].tolist())
        expected += torch.tensor(part, dtype=torch.float64)
    if rule == "hebb":
        w = weight.double().contiguous()
        expected -= (expected * w).sum(1, keepdim=True) / (w * w).sum(1, keepdim=True) * w
    assert_close(delta, expected, rel=1e-5)


# --- normalisation and learning rates ------------------------------------------------------


def params(registry: Registry, **values: Any):
    return registry.get("plasticity", "softhebb").params(**values)


def test_global_max_normalisation(registry: Registry) -> None:
    """Δw is divided by one global max|Δw|, not per neuron."""
    weight = torch.zeros(3, 4)
    delta = torch.tensor([[1.0, -8.0, 2.0, 0.0], [0.5, 0.5, 0.5, 0.5], [4.0, 0.0, 0.0, -2.0]])
    apply_update(weight, delta, params(registry, lr=0.5, adaptive=False), progress=0.0)
    torch.testing.assert_close(weight, 0.5 * delta / 8.0)
    # normalize = "none" applies the raw direction
    weight = torch.zeros(3, 4)
    apply_update(
        weight, delta, params(registry, lr=0.5, adaptive=False, normalize="none"), progress=0.0
    )
    torch.testing.assert_close(weight, 0.5 * delta)


def test_adaptive_rate_per_neuron(registry: Registry) -> None:
    weight = torch.tensor([[0.5, 0.0], [0.6, 0.8], [3.0, 4.0], [0.0, 0.0]])  # norms .5, 1, 5, 0
    p = params(registry, lr=0.08, lr_power=0.5)
    expected = [0.08 * (abs(n - 1.0) + ADAPTIVE_EPSILON) ** 0.5 for n in (0.5, 1.0, 5.0, 0.0)]
    torch.testing.assert_close(
        neuron_rates(weight, p, 0.3), torch.tensor(expected), rtol=1e-5, atol=1e-12
    )
    # the rate vanishes at unit norm: η₀·(1e-10)^q (allowing float32 rounding of the norm)
    assert neuron_rates(weight, p, 0.0)[1] < 1e-3 * 0.08
    # q = 0 gives η₀ for every neuron
    flat = neuron_rates(weight, params(registry, lr=0.08, lr_power=0.0), 0.0)
    torch.testing.assert_close(flat, torch.full((4,), 0.08))


def test_adaptive_rate_recomputed_from_new_norms(registry: Registry) -> None:
    p = params(registry, lr=0.1, lr_power=0.5, normalize="none")
    weight = torch.tensor([[2.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    delta = torch.tensor([[1.0, 1.0], [-1.0, 2.0]], dtype=torch.float64)
    expected = weight.clone()
    for _ in range(3):
        norms = [math.hypot(*row) for row in expected.tolist()]
        rates = [0.1 * (abs(n - 1) + 1e-10) ** 0.5 for n in norms]
        expected = expected + torch.tensor(rates, dtype=torch.float64).unsqueeze(1) * delta
        apply_update(weight, delta, p, progress=0.0)
    torch.testing.assert_close(weight, expected)


@pytest.mark.parametrize(
    ("progress", "factor"), [(0.0, 1.0), (0.25, 0.75), (0.5, 0.5), (1.0, 0.0), (1.5, 0.0)]
)
def test_linear_decay_without_adaptive_rate(
    registry: Registry, progress: float, factor: float
) -> None:
    weight = torch.tensor([[0.5, 0.0], [3.0, 4.0]])
    rates = neuron_rates(weight, params(registry, lr=0.08, adaptive=False), progress)
    torch.testing.assert_close(rates, torch.full((2,), 0.08 * factor))


def test_full_softhebb_update_through_learn(registry: Registry) -> None:
    """The preset's update: max-normalised Δw, adaptive per-neuron rate from the old norms."""
    x = torch.randn(2, 1, 7, 7, generator=torch.Generator().manual_seed(8))
    layer = make_layer(
        registry,
        1,
        channels=5,
        kernel=3,
        padding=1,
        batch_norm=False,
        init={"name": "random", "radius": 2.0},
        plasticity={"name": "softhebb", "lr": 0.08, "lr_power": 0.5},
        competition={"name": "softkrotov", "t_invert": 1.0},
    )
    before = layer.weight.clone().double()
    layer.learn(x, progress=0.0)
    delta = ref_conv_delta(x, before, padding=1, stride=1, dilation=1)
    delta = delta / delta.abs().max()
    norms = before.flatten(1).norm(dim=1)
    rates = 0.08 * ((norms - 1).abs() + 1e-10) ** 0.5
    assert_close(layer.weight, before + rates.view(-1, 1, 1, 1) * delta, rel=1e-5)


# --- competition ---------------------------------------------------------------------------

TIES = torch.tensor(
    [
        [1.0, 3.0, 3.0, 0.0],  # tie for first between 1 and 2
        [2.0, 2.0, 2.0, 2.0],  # all equal (ZerO layer 1)
        [0.0, 1.0, -1.0, 1.0],  # tie between 1 and 3, runner-up tie
        [5.0, -2.0, 4.0, 4.0],  # runner-up tie
    ]
)


@pytest.mark.parametrize("name", ["soft", "softkrotov", "hard", "hardkrotov"])
def test_competition_matches_loops(registry: Registry, name: str) -> None:
    random_u = torch.randn(20, 6, generator=torch.Generator().manual_seed(9)) * 3
    component = registry.get("competition", name)
    if name == "hardkrotov":
        kwargs: dict[str, Any] = {"delta": 0.3, "rank": 3}
        ref_kwargs: dict[str, Any] = {"delta": 0.3, "rank": 3}
    else:
        kwargs = {"t_invert": 0.65}
        ref_kwargs = {"beta": 0.65}
    compete = component.build(component.params(**kwargs))
    for u in (random_u, TIES):
        y = compete(u)
        expected = torch.tensor([ref_compete(row.tolist(), name, **ref_kwargs) for row in u])
        torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-6, msg=f"{name} on {u}")


@pytest.mark.parametrize("name", ["softkrotov", "hard", "hardkrotov"])
def test_ties_go_to_the_lowest_index(registry: Registry, name: str) -> None:
    y = registry.get("competition", name).build()(TIES)
    winners = [1, 0, 1, 0]
    for row, winner in enumerate(winners):
        assert y[row, winner] > 0, f"{name}: row {row} should be won by neuron {winner}"
        others = [k for k in range(4) if k != winner]
        assert (y[row, others] <= 0).all(), f"{name}: only neuron {winner} is Hebbian in row {row}"


def test_hardkrotov_with_fewer_neurons_than_rank(registry: Registry) -> None:
    component = registry.get("competition", "hardkrotov")
    y = component.build(component.params(rank=3))(torch.tensor([[0.0, 1.0]]))
    torch.testing.assert_close(y, torch.tensor([[0.0, 1.0]]))


# --- activations ---------------------------------------------------------------------------


def ref_activation(u: torch.Tensor, name: str, value: float) -> torch.Tensor:
    out = torch.empty_like(u, dtype=torch.float64)
    b, c, h, w = u.shape
    for bi, i, j in itertools.product(range(b), range(h), range(w)):
        column = [float(u[bi, k, i, j]) for k in range(c)]
        if name == "triangle":
            mean = sum(column) / c
            values = [max(0.0, v - mean) ** value for v in column]
        elif name == "repu":
            values = [max(0.0, v) ** value for v in column]
        else:
            values = ref_soft(column, value)
        for k in range(c):
            out[bi, k, i, j] = values[k]
    return out


@pytest.mark.parametrize(
    ("name", "key", "value"),
    [
        ("triangle", "power", 0.7),
        ("triangle", "power", 1.0),
        ("triangle", "power", 1.4),
        ("repu", "power", 2.0),
        ("repu", "power", 1.0),
        ("softmax", "t_invert", 2.5),
    ],
)
def test_activation_matches_loops(registry: Registry, name: str, key: str, value: float) -> None:
    u = torch.randn(2, 5, 3, 4, generator=torch.Generator().manual_seed(10))
    component = registry.get("activation", name)
    f = component.build(component.params(**{key: value}))
    assert_close(f(u), ref_activation(u, name, value), rel=1e-5)


#: Values that stress ReLU(x)^p: signed zeros, negatives, subnormals, the smallest normal
#: float32, ordinary and huge values, inf and NaN.
EDGE_VALUES = [0.0, -0.0, -3.0, -1e-30, 1e-45, 1e-39, 1.2e-38, 1e-30, 1e-10, 0.3, 1.0, 7.5,
               1e3, 1e20, math.inf, math.nan]  # fmt: skip


@pytest.mark.parametrize("power", [0.05, 0.5, 0.7, 1.0, 1.4, 2.0, 2.5, 3.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_repu_power_of_edge_values_matches_float64_pow(
    registry: Registry, power: float, dtype: torch.dtype
) -> None:
    component = registry.get("activation", "repu")
    f = component.build(component.params(power=power))
    x = torch.tensor(EDGE_VALUES, dtype=dtype).reshape(1, -1, 1, 1)
    result = f(x).flatten().double()
    exact = torch.tensor([max(v, 0.0) ** power for v in EDGE_VALUES], dtype=torch.float64)
    expected = exact.to(dtype).double()  # overflows to inf where dtype does
    expected[-1] = math.nan  # NaN stays NaN
    # float32 goes through exp2(p·log2 x) on the CPU: about 2 + 1.5·|p·log2 x| ulps, and
    # positive values up to a floor (the smallest normal number, or its 1/p-th power for
    # p > 1) give zero, an error under the floor's power
    size = torch.tensor(EDGE_VALUES, dtype=torch.float64).abs().clamp_min(1e-300).log2()
    ulps = 2 + 1.5 * (power * size).abs()
    floor = torch.finfo(dtype).tiny ** min(1.0, 1.0 / power)
    allowed = ulps * torch.finfo(dtype).eps * expected.abs() + 1.001 * floor**power
    finite = expected.isfinite()
    assert ((result - expected).abs()[finite] <= allowed[finite]).all(), (result, expected)
    assert torch.equal(result[~finite].nan_to_num(), expected[~finite].nan_to_num())
    assert (result[:4] == 0).all()  # zeros and negatives rectify to exactly zero
    assert result[-2] == math.inf


@pytest.mark.parametrize("power", [0.7, 1.4])
def test_fractional_powers_of_layer_sized_maps_stay_within_16_ulps(
    registry: Registry, power: float
) -> None:
    component = registry.get("activation", "repu")
    f = component.build(component.params(power=power))
    u = torch.randn(4, 32, 12, 12, generator=torch.Generator().manual_seed(11)) * 30
    expected = u.double().relu().pow(power)
    result = f(u).double()
    assert torch.equal(result == 0, expected == 0)
    positive = expected > 0
    ulp = torch.finfo(torch.float32).eps * torch.exp2(torch.floor(torch.log2(expected[positive])))
    assert ((result[positive] - expected[positive]).abs() / ulp).max() <= 16


# --- poolings ------------------------------------------------------------------------------


def ref_pool(x: torch.Tensor, kind: str, k: int, s: int, p: int, include_pad: bool = True):
    b, c, h, w = x.shape
    out_h, out_w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = torch.empty(b, c, out_h, out_w, dtype=torch.float64)
    for bi, ci, oi, oj in itertools.product(range(b), range(c), range(out_h), range(out_w)):
        window = [(oi * s + i - p, oj * s + j - p) for i in range(k) for j in range(k)]
        inside = [float(x[bi, ci, i, j]) for i, j in window if 0 <= i < h and 0 <= j < w]
        if kind == "max":
            out[bi, ci, oi, oj] = max(inside)
        else:
            out[bi, ci, oi, oj] = sum(inside) / (k * k if include_pad else len(inside))
    return out


@pytest.mark.parametrize(
    ("kind", "k", "s", "p", "include_pad"),
    [
        ("max", 4, 2, 1, True),  # SoftHebb blocks 1 and 2
        ("avg", 2, 2, 0, True),  # SoftHebb block 3
        ("avg", 4, 2, 1, True),  # the study's tuned 2-layer ZerO model
        ("avg", 3, 2, 1, False),
        ("max", 3, 3, 0, True),
    ],
)
def test_pooling_matches_loops(
    registry: Registry, kind: str, k: int, s: int, p: int, include_pad: bool
) -> None:
    x = torch.randn(2, 3, 9, 10, generator=torch.Generator().manual_seed(11))
    values: dict[str, Any] = {"kernel": k, "stride": s, "padding": p}
    if kind == "avg":
        values["count_include_pad"] = include_pad
    component = registry.get("pooling", kind)
    pool = component.build(component.params(**values))
    assert_close(pool(x), ref_pool(x, kind, k, s, p, include_pad), rel=1e-6)


def test_pooling_stride_defaults_to_kernel_and_identity(registry: Registry) -> None:
    x = torch.randn(1, 2, 6, 6, generator=torch.Generator().manual_seed(12))
    component = registry.get("pooling", "max")
    assert component.build(component.params(kernel=3))(x).shape == (1, 2, 2, 2)
    assert torch.equal(registry.get("pooling", "identity").build()(x), x)
