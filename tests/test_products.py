"""The Hebbian step's matrix products: the patch-matrix and convolution-kernel ways agree, and
bfloat16 products stay close to float32 while weights and updates stay float32."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from hebbkit.config.recipe import validate_recipe
from hebbkit.engine import products
from hebbkit.engine.network import HebbianLayer
from hebbkit.engine.products import (
    ConvProducts,
    Geometry,
    PatchProducts,
    channels_last,
    patch_matrix,
    weight_rows,
)
from hebbkit.registry import Registry
from tests.conftest import TINY_RECIPE

GEOMETRIES = [Geometry(3, 1, 1), Geometry(3, 2, 2), Geometry(5, 1, 1), Geometry(1, 1, 1)]


def unfolded(x: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    """The patch matrix in the weight's (c_in, kh, kw) order, via torch's unfold."""
    columns = F.unfold(x, geometry.kernel, dilation=geometry.dilation, stride=geometry.stride)
    return columns.transpose(1, 2).reshape(-1, columns.shape[1])


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
@pytest.mark.parametrize("channels", [1, 3])
def test_patch_matrix_is_unfold_in_channels_last_order(geometry: Geometry, channels: int) -> None:
    x = torch.randn(2, channels, 11, 9, generator=torch.Generator().manual_seed(0))
    k = geometry.kernel
    expected = unfolded(x, geometry).view(-1, channels, k, k).permute(0, 2, 3, 1).flatten(1)
    assert torch.equal(patch_matrix(x, geometry), expected)


def to_patch_order(matrix: torch.Tensor, channels: int, kernel: int) -> torch.Tensor:
    """Columns in the weight's (c_in, kh, kw) order -> patch order (kh, kw, c_in)."""
    shaped = matrix.reshape(-1, channels, kernel, kernel).permute(0, 2, 3, 1)
    return shaped.reshape(matrix.shape[0], -1)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
def test_patch_and_conv_products_agree(geometry: Geometry) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 4, 12, 10, generator=g)
    weight = channels_last(torch.randn(6, 4, geometry.kernel, geometry.kernel, generator=g))
    by_patches = PatchProducts(x, weight_rows(weight), geometry)
    by_conv = ConvProducts(x, weight, geometry)
    u_map = F.conv2d(x, weight, stride=geometry.stride, dilation=geometry.dilation)
    torch.testing.assert_close(by_patches.u_map(), u_map, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(by_conv.u_map(), u_map, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(by_patches.u, by_conv.u, rtol=1e-5, atol=1e-5)
    signal = torch.randn(by_patches.u.shape, generator=g)
    patches = to_patch_order(unfolded(x, geometry), 4, geometry.kernel)
    expected = signal.T @ patches
    torch.testing.assert_close(by_patches.correlate(signal), expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(by_conv.correlate(signal), expected, rtol=1e-4, atol=1e-4)
    assert torch.equal(by_patches.patches(), patches)
    torch.testing.assert_close(by_conv.patches(), patches)


def test_weight_rows_are_a_view_in_patch_order() -> None:
    weight = channels_last(torch.randn(5, 3, 2, 2))
    rows = weight_rows(weight)
    assert rows.data_ptr() == weight.data_ptr()
    assert torch.equal(rows, to_patch_order(weight.reshape(5, -1), 3, 2))
    rows[0, 0] = 7.0  # shares storage: updates through the rows reach the buffer
    assert weight[0, 0, 0, 0] == 7.0


#: (c_in, padded size, kernel, c_out, batch) of the recipes' layers: mnist_zero, the 3-layer
#: preset at the study's batch 32 and at SoftHebb's batch 10 (layer 3: float32 patch GEMMs)
RECIPE_LAYERS = [
    (1, 32, 3, 128, 32),
    (1, 32, 5, 96, 32),
    (96, 16, 3, 384, 32),
    (384, 9, 3, 1536, 32),
    (96, 16, 3, 384, 10),
    (384, 9, 3, 1536, 10),
]


UNCACHED_FAST_CONVOLUTIONS = products.fast_float32_convolutions.__wrapped__


def on_cpu(monkeypatch: pytest.MonkeyPatch, capability: str) -> None:
    """Pick products as if torch ran on a CPU of this capability."""
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    monkeypatch.setattr(products, "fast_float32_convolutions", UNCACHED_FAST_CONVOLUTIONS)


@pytest.mark.parametrize("layer", RECIPE_LAYERS, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("capability", ["AVX2", "AVX512"])
def test_identical_filters_stay_bit_identical(
    layer: tuple[int, int, int, int, int], dtype, capability: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ZerO's identical filters, through the products a layer picks (on either kind of CPU):
    tied columns of u and tied rows of Σ s·x must come out bit-identical, or rounding silently
    breaks the ties the study is about."""
    on_cpu(monkeypatch, capability)
    c_in, size, kernel, c_out, batch = layer
    g = torch.Generator().manual_seed(2)
    x = torch.randn(batch, c_in, size, size, generator=g).to(dtype)
    weight = torch.randn(1, c_in, kernel, kernel, generator=g).expand(c_out, -1, -1, -1).clone()
    weight[:3] = torch.randn(3, c_in, kernel, kernel, generator=g)  # the rest are tied
    weight = channels_last(weight.to(dtype))
    geometry = Geometry(kernel, 1, 1)
    if products.use_patches(x, c_in * kernel * kernel, geometry):
        chosen: PatchProducts | ConvProducts = PatchProducts(x, weight_rows(weight), geometry)
    else:
        chosen = ConvProducts(x, weight, geometry)
    assert (chosen.u[:, 3:] == chosen.u[:, 3:4]).all()
    count = chosen.u.shape[0]
    signal = torch.randn(count, 1, generator=g).expand(count, c_out).clone()
    signal[:, :3] = torch.randn(count, 3, generator=g)
    grown = chosen.correlate(signal)
    assert (grown[3:] == grown[3:4]).all()


def test_which_products_a_layer_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    on_cpu(monkeypatch, "AVX512")
    geometry = Geometry(3, 1, 1)
    small, large = torch.zeros(2, 3, 10, 10), torch.zeros(2, 8, 10, 10)
    assert products.use_patches(small, 27, geometry)  # a small fan-in
    assert not products.use_patches(large, 72, geometry)  # float32, large fan-in: conv
    assert products.use_patches(large.bfloat16(), 72, geometry)  # bfloat16: GEMMs
    # float32, large fan-in, few positions per input (a batch of 10 on a 7×7 map): GEMMs
    layer3 = Geometry(3, 1, 1)
    assert products.use_patches(torch.zeros(10, 384, 9, 9), 3456, layer3)  # 490 positions
    assert not products.use_patches(torch.zeros(32, 384, 9, 9), 3456, layer3)  # 1568
    # without AVX512 the GEMMs win in float32 at every batch
    on_cpu(monkeypatch, "AVX2")
    assert products.use_patches(large, 72, geometry)
    assert products.use_patches(torch.zeros(32, 384, 9, 9), 3456, layer3)
    size = 2 * 8 * 8 * 27 * 4
    monkeypatch.setattr(products, "PATCH_BYTES", size)
    assert products.use_patches(small, 27, geometry)
    monkeypatch.setattr(products, "PATCH_BYTES", size - 1)
    assert not products.use_patches(small, 27, geometry)


def make_layer(registry: Registry, in_channels: int = 2, **layer: Any) -> HebbianLayer:
    data = copy.deepcopy(TINY_RECIPE)
    data["layers"][0].update({"channels": 8, "padding": 1, **layer})
    config = validate_recipe(data, registry).layers[0]
    return HebbianLayer(config, in_channels, registry, torch.Generator().manual_seed(3))


def test_bf16_products_stay_close_and_keep_float32_state(registry: Registry) -> None:
    x = torch.randn(4, 2, 10, 10, generator=torch.Generator().manual_seed(4))
    exact, mixed = make_layer(registry), make_layer(registry)
    mixed.compute_dtype = torch.bfloat16
    seen: list[torch.dtype] = []
    compete = mixed.compete

    def spy(u: torch.Tensor) -> torch.Tensor:
        seen.append(u.dtype)
        return compete(u)

    mixed.compete = spy
    before = exact.weight.clone()
    out_exact = exact.learn(x, 0.0)
    out_mixed = mixed.learn(x, 0.0)
    assert seen == [torch.float32]  # the competition sees float32 u
    assert mixed.weight.dtype == torch.float32 and out_mixed.dtype == torch.float32
    step_exact, step_mixed = exact.weight - before, mixed.weight - before
    assert step_mixed.abs().max() > 0
    # bfloat16 keeps 8 bits: the step agrees to a few per cent, not to float32 rounding
    assert (step_mixed - step_exact).norm() < 0.05 * step_exact.norm()
    assert (step_mixed - step_exact).norm() > 0
    assert (out_mixed - out_exact).norm() < 0.02 * out_exact.norm()


def test_bf16_forward_is_close_to_float32(registry: Registry) -> None:
    layer = make_layer(registry).eval()
    x = torch.randn(4, 2, 10, 10, generator=torch.Generator().manual_seed(5))
    exact = layer(x)
    layer.compute_dtype = torch.bfloat16
    mixed = layer(x)
    assert mixed.dtype == torch.float32
    assert (mixed - exact).norm() < 0.02 * exact.norm()


@pytest.mark.parametrize("name", ["triangle", "repu"])
def test_in_place_activations_match_and_forward_uses_them(registry: Registry, name: str) -> None:
    f = registry.get("activation", name).build(registry.get("activation", name).params(power=0.7))
    u = torch.randn(2, 5, 4, 3).contiguous(memory_format=torch.channels_last)
    kept = u.clone()
    expected = f(u)
    assert torch.equal(u, kept)  # the plain call leaves u alone
    assert torch.equal(f.in_place(u), expected)
    assert torch.equal(u, expected)  # in_place overwrote u
    layer = make_layer(registry, activation={"name": name, "power": 0.7}).eval()
    x = torch.randn(3, 2, 8, 8, generator=torch.Generator().manual_seed(6))
    reference = layer.pool(layer.activation(layer.preactivation(x)))
    torch.testing.assert_close(layer(x), reference)


def test_winners_are_reused_for_the_same_unchanged_u(registry: Registry) -> None:
    compete = registry.get("competition", "softkrotov").build()
    u = torch.randn(50, 6, generator=torch.Generator().manual_seed(7))
    compete(u)
    first = compete.winners(u)
    assert compete.winners(u) is first  # the layer's win counts reuse compete's winners
    assert torch.equal(first, u.argmax(1))
    u[:, 0] += 100.0  # changed in place: recomputed
    assert (compete.winners(u) == 0).all()
    other = torch.randn(50, 6, generator=torch.Generator().manual_seed(8))
    assert torch.equal(compete.winners(other), other.argmax(1))


def test_a_kernel_larger_than_the_input_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="Kernel size can't be greater"):
        patch_matrix(torch.zeros(1, 1, 5, 5), Geometry(3, 1, 3))
