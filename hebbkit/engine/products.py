"""The two matrix products of a Hebbian step over every patch of a batch: ``u = W·x`` and
``Σ_N s·x``, in the patch-matrix view of a convolution.

Two ways to compute them, equal up to float rounding (``benchmarks/hebbian_step.py`` times
both per layer):

- :class:`PatchProducts` (CPU): the padded input in channels-last layout, so each patch's
  ``k·k·c_in`` values are ``k·k`` contiguous runs; one copy out of a strided view gives the
  patch matrix ``(N, k·k·c_in)``, then two GEMMs. ``u`` comes out as rows ``(N, c_out)`` and
  as a channels-last ``(B, c_out, H, W)`` view without a transpose, and layer 1 (``c_in = 1``)
  escapes the slow convolution kernels for one input channel.
- :class:`ConvProducts` (GPU, or a patch matrix over :data:`PATCH_BYTES`): the convolution
  kernels, forward and weight gradient, on channels-last tensors.

Inputs reach the products in the layer's compute dtype (bfloat16 under ``--precision
bf16``); ``u``, the correlations and the patches handed to a rule are float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

#: Largest patch matrix PatchProducts builds; beyond it the convolution kernels are used.
PATCH_BYTES = 256 * 1024**2


@dataclass(frozen=True)
class Geometry:
    kernel: int
    stride: int
    dilation: int

    def out_hw(self, height: int, width: int) -> tuple[int, int]:
        span = self.dilation * (self.kernel - 1) + 1
        return (height - span) // self.stride + 1, (width - span) // self.stride + 1


def channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def weight_rows(weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The weight ``(c_out, c_in, k, k)`` as rows in patch order ``(c_out, k·k·c_in)``."""
    return weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1).to(dtype)


def to_weight_order(rows: torch.Tensor, weight_shape: torch.Size) -> torch.Tensor:
    """Columns in patch order ``(kh, kw, c_in)`` -> the weight's ``(c_in, kh, kw)``, float32."""
    c_in, k = weight_shape[1], weight_shape[2]
    shaped = rows.reshape(rows.shape[0], k, k, c_in).permute(0, 3, 1, 2)
    return shaped.reshape(rows.shape[0], -1).float()


class PatchProducts:
    """``u`` and correlations from the patch matrix of a channels-last padded input."""

    def __init__(
        self,
        x_padded: torch.Tensor,
        rows: torch.Tensor,
        weight_shape: torch.Size,
        geometry: Geometry,
    ) -> None:
        """``rows``: the weight from :func:`weight_rows`, in the compute dtype."""
        self.weight_shape = weight_shape
        self.batch = x_padded.shape[0]
        self.hw = geometry.out_hw(x_padded.shape[2], x_padded.shape[3])
        self.matrix = patch_matrix(x_padded, geometry)
        u = self.matrix @ rows.T
        self.u = u.float()  # a no-op in float32

    def u_map(self) -> torch.Tensor:
        """``u`` as ``(B, c_out, H, W)``: a channels-last view of the rows."""
        return self.u.view(self.batch, *self.hw, -1).permute(0, 3, 1, 2)

    def correlate(self, signal: torch.Tensor) -> torch.Tensor:
        """``Σ_N signal_k·x_i`` as ``(c_out, n)`` in the weight's order, float32."""
        # (Pᵀ·s)ᵀ rather than sᵀ·P: MKL is several times faster on this shape when c_in = 1
        grown = (self.matrix.T @ signal.to(self.matrix.dtype)).T
        return to_weight_order(grown, self.weight_shape)

    def patches(self) -> torch.Tensor:
        return to_weight_order(self.matrix, self.weight_shape)


def patch_matrix(x_padded: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    """``(B·H·W, k·k·c_in)`` patches of a channels-last ``(B, c_in, H', W')`` input, columns in
    ``(kh, kw, c_in)`` order: one copy out of a strided view (no ``unfold``)."""
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
        u_map = F.conv2d(
            self.x, self.weight, stride=geometry.stride, dilation=geometry.dilation
        ).float()
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
        return grad.reshape(channels, -1).float()

    def patches(self) -> torch.Tensor:
        columns = F.unfold(
            self.x,
            self.geometry.kernel,
            dilation=self.geometry.dilation,
            stride=self.geometry.stride,
        )
        return columns.transpose(1, 2).reshape(-1, columns.shape[1]).float()


def use_patches(x_padded: torch.Tensor, fan_in: int, geometry: Geometry) -> bool:
    """Whether :class:`PatchProducts` suits this input: on a CPU, while its patch matrix fits
    in :data:`PATCH_BYTES`."""
    if x_padded.device.type != "cpu":
        return False
    height, width = geometry.out_hw(x_padded.shape[2], x_padded.shape[3])
    size = x_padded.shape[0] * height * width * fan_in * x_padded.element_size()
    return size <= PATCH_BYTES
