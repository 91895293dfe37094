"""The two matrix products of a Hebbian step over every patch of a batch: ``u = W·x`` and
``Σ_N s·x``, in the patch-matrix view of a convolution.

Patches, weight rows and correlations share one column order, the patch order ``(kh, kw,
c_in)``: a layer keeps its weight buffer ``(c_out, c_in, k, k)`` channels-last, so its rows
in that order are a view (:func:`weight_rows`), and a channels-last input holds each patch as
``k·k`` contiguous runs. Two ways to compute the products, equal up to float rounding
(``benchmarks/hebbian_step.py`` times both per layer):

- :class:`PatchProducts` (CPU: bfloat16, a small fan-in such as layer 1's, and float32 on
  CPUs without AVX512): one copy out of a strided view of the padded input gives the patch
  matrix ``(N, k·k·c_in)``, then two GEMMs. ``u`` comes out as rows ``(N, c_out)`` and as
  a channels-last ``(B, c_out, H, W)`` view without a transpose, and layer 1 (``c_in = 1``)
  escapes the slow convolution kernels for one input channel.
- :class:`ConvProducts` (GPU; AVX512 CPUs in float32 with a large fan-in over many
  positions; a patch matrix over :data:`PATCH_BYTES`): the convolution kernels, forward and
  weight gradient, on channels-last tensors.

Identical filters (ZerO) must stay exactly identical: every output column of ``u`` and every
row of a correlation is computed with the same arithmetic for the GEMM shapes used here,
which ``tests/test_products.py`` checks at the recipes' shapes. Inputs reach the products in
the layer's compute dtype (bfloat16 under ``--precision bf16``, and ``bf16-auto`` in wide
layers); ``u``, the correlations and the patches handed to a rule are float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torch
import torch.nn.functional as F

#: Largest patch matrix PatchProducts builds; beyond it the convolution kernels are used.
PATCH_BYTES = 256 * 1024**2
#: Below this fan-in float32 products use the patch matrix, and the correlation is formed as
#: (Pᵀ·s)ᵀ: several times faster on CPUs for one-channel inputs, and ``sᵀ·P`` would round
#: tied rows differently there.
SMALL_FAN_IN = 64
#: On CPUs with AVX512, float32 products of a large fan-in use the patch GEMMs only when a
#: batch has at most this many output positions per input of a neuron: the convolution's
#: weight gradient is slow when its reduction (over positions) is short.
FEW_POSITIONS_PER_INPUT = 1 / 3
#: CPU capabilities (``torch.backends.cpu.get_cpu_capability()``) whose float32 convolution
#: kernels beat the patch GEMMs on large fan-ins over many positions. Elsewhere the GEMMs won
#: at every batch measured: SoftHebb's 1536 × 384×3×3 layer on a 7×7 map on a 2-core AVX2 CPU
#: (``benchmarks/hebbian_step.py --recipe recipes/mnist_softhebb.toml --batch B --precision
#: fp32``), patch GEMMs / conv kernels in images per second: batch 4 96/56, 10 129/54,
#: 16 147/100, 20 148/81, 32 144/105 and 127/88.
FAST_CONVOLUTION_CPUS = ("AVX512",)


@dataclass(frozen=True)
class Geometry:
    kernel: int
    stride: int
    dilation: int

    def out_hw(self, height: int, width: int) -> tuple[int, int]:
        span = self.dilation * (self.kernel - 1) + 1
        if span > min(height, width):
            # torch's own wording, so searches record the same error as the conv kernels give
            raise RuntimeError(
                f"Kernel size can't be greater than actual input size: kernel {self.kernel} "
                f"(dilation {self.dilation}) spans {span} pixels, the padded input is "
                f"{height}×{width}"
            )
        return (height - span) // self.stride + 1, (width - span) // self.stride + 1


def channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def weight_rows(weight: torch.Tensor) -> torch.Tensor:
    """A channels-last weight ``(c_out, c_in, k, k)`` as rows ``(c_out, k·k·c_in)`` in patch
    order: a view sharing its storage."""
    return weight.permute(0, 2, 3, 1).view(weight.shape[0], -1)


class PatchProducts:
    """``u`` and correlations from the patch matrix of a channels-last padded input."""

    def __init__(self, x_padded: torch.Tensor, rows: torch.Tensor, geometry: Geometry) -> None:
        """``rows``: :func:`weight_rows` in the compute dtype."""
        self.batch = x_padded.shape[0]
        self.hw = geometry.out_hw(x_padded.shape[2], x_padded.shape[3])
        self.matrix = patch_matrix(x_padded, geometry)
        if rows.dtype == torch.float32 and rows.shape[1] < SMALL_FAN_IN:
            # one product per image: MKL's batched kernel is about 1.5× faster than one
            # tall product for these few-column shapes, with the same arithmetic per entry
            per_image = self.matrix.view(self.batch, -1, rows.shape[1])
            u = torch.bmm(per_image, rows.T.expand(self.batch, -1, -1))
            self.u = u.view(self.matrix.shape[0], -1)
        else:
            self.u = (self.matrix @ rows.T).float()  # .float() is a no-op in float32

    def u_map(self) -> torch.Tensor:
        """``u`` as ``(B, c_out, H, W)``: a channels-last view of the rows."""
        return self.u.view(self.batch, *self.hw, -1).permute(0, 3, 1, 2)

    def correlate(self, signal: torch.Tensor) -> torch.Tensor:
        """``Σ_N signal_k·x_i`` as ``(c_out, n)`` in patch order, float32."""
        signal = signal.to(self.matrix.dtype)
        if self.matrix.shape[1] < SMALL_FAN_IN:
            return (self.matrix.T @ signal).T.float().contiguous()
        return (signal.T @ self.matrix).float()

    def patches(self) -> torch.Tensor:
        return self.matrix.float()


def patch_matrix(x_padded: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    """``(B·H·W, k·k·c_in)`` patches of a ``(B, c_in, H', W')`` input, in patch order: one
    copy out of a strided view of its channels-last layout (no ``unfold``)."""
    x = channels_last(x_padded)
    batch, channels = x.shape[:2]
    height, width = geometry.out_hw(x.shape[2], x.shape[3])
    k, s, d = geometry.kernel, geometry.stride, geometry.dilation
    sb, sc, sh, sw = x.stride()
    view = x.as_strided(
        (batch, height, width, k, k, channels), (sb, sh * s, sw * s, sh * d, sw * d, sc)
    )
    return view.reshape(batch * height * width, k * k * channels)


class ConvProducts:
    """``u`` and correlations from the convolution kernels (forward and weight gradient)."""

    def __init__(self, x_padded: torch.Tensor, kernel: torch.Tensor, geometry: Geometry) -> None:
        """``kernel``: the weight ``(c_out, c_in, k, k)`` in the compute dtype."""
        self.x = channels_last(x_padded)
        self.weight = channels_last(kernel)
        self.geometry = geometry
        u_map = F.conv2d(self.x, self.weight, stride=geometry.stride, dilation=geometry.dilation)
        u_map = u_map.float()
        self.shape = u_map.shape
        # a view when the kernel returned channels-last maps, else one copy
        self.u = u_map.permute(0, 2, 3, 1).reshape(-1, u_map.shape[1])

    def u_map(self) -> torch.Tensor:
        batch, channels, height, width = self.shape
        return self.u.view(batch, height, width, channels).permute(0, 3, 1, 2)

    def correlate(self, signal: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = self.shape
        signal_map = signal.to(self.x.dtype).reshape(batch, height, width, channels)
        grad = torch.ops.aten.convolution_backward(
            signal_map.permute(0, 3, 1, 2),
            self.x,
            self.weight,
            None,
            [self.geometry.stride] * 2,
            [0, 0],
            [self.geometry.dilation] * 2,
            False,
            [0, 0],
            1,
            [False, True, False],
        )[1]
        return grad.permute(0, 2, 3, 1).reshape(channels, -1).float()

    def patches(self) -> torch.Tensor:
        k, channels = self.geometry.kernel, self.x.shape[1]
        columns = F.unfold(
            self.x, k, dilation=self.geometry.dilation, stride=self.geometry.stride
        ).transpose(1, 2)
        # unfold's (c_in, kh, kw) columns -> patch order (kh, kw, c_in)
        shaped = columns.reshape(-1, channels, k, k).permute(0, 2, 3, 1)
        return shaped.reshape(shaped.shape[0], -1).float()


@cache
def fast_float32_convolutions() -> bool:
    """Whether this CPU is one of :data:`FAST_CONVOLUTION_CPUS`."""
    return torch.backends.cpu.get_cpu_capability().startswith(FAST_CONVOLUTION_CPUS)


def use_patches(x_padded: torch.Tensor, fan_in: int, geometry: Geometry) -> bool:
    """Whether :class:`PatchProducts` suits this input: on a CPU, for bfloat16 products, a
    small fan-in, a CPU without fast float32 convolutions (:data:`FAST_CONVOLUTION_CPUS`) or
    few positions per input (:data:`FEW_POSITIONS_PER_INPUT`), while its patch matrix fits in
    :data:`PATCH_BYTES`.

    On CPUs torch sends float32 matrix products to MKL and convolutions to oneDNN, whose
    AVX512 float32 kernels are the faster ones for the large layers
    (``benchmarks/hebbian_step.py``) and whose AVX2 kernels are not; bfloat16 products go to
    oneDNN either way, and there the GEMMs beat the convolution's weight gradient. One input
    channel is slow in every convolution kernel.
    """
    if x_padded.device.type != "cpu":
        return False
    height, width = geometry.out_hw(x_padded.shape[2], x_padded.shape[3])
    positions = x_padded.shape[0] * height * width
    few_positions = positions <= FEW_POSITIONS_PER_INPUT * fan_in
    if (
        x_padded.dtype == torch.float32
        and fan_in >= SMALL_FAN_IN
        and not few_positions
        and fast_float32_convolutions()
    ):
        return False
    return positions * fan_in * x_padded.element_size() <= PATCH_BYTES
