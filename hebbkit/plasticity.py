"""What every plasticity rule shares: its learning-rate settings and how the layer applies them.

A rule (a plugin) only computes the update direction ``delta(weight, batch)`` from a
:class:`HebbianBatch` (pre-activations ``u``, competition output ``y`` and the correlation
``Σ y·x`` that the layer computes as one convolution-gradient call). The
layer scales it by one global ``max|Δw|`` (when ``normalize = "max"``) and applies a per-neuron
rate: SoftHebb's adaptive ``η₀·(|‖w_k‖ − 1| + 1e-10)^q``, or ``η₀`` decaying linearly to 0
over the Hebbian epochs when ``adaptive = false``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Protocol

import torch

from hebbkit.registry import PlasticityParams

__all__ = [
    "ADAPTIVE_EPSILON",
    "HebbianBatch",
    "PlasticityParams",
    "PlasticityRule",
    "apply_update",
    "neuron_rates",
]

ADAPTIVE_EPSILON = 1e-10
NORMALIZE_EPSILON = 1e-30


class HebbianBatch:
    """One batch as a plasticity rule sees it, in the patch-matrix view of the convolution.

    ``u`` and ``y`` are ``(N, c_out)`` with N = batch × output positions. ``correlate(s)``
    returns ``Σ_N s_k·x_i`` as ``(c_out, n)`` — for a conv layer the weight gradient of a
    convolution, computed without building the patch matrix. ``patches`` (``(N, n)``) is
    built only if a rule asks for it.
    """

    def __init__(
        self,
        u: torch.Tensor,
        y: torch.Tensor,
        correlate: Callable[[torch.Tensor], torch.Tensor],
        patches: Callable[[], torch.Tensor],
    ) -> None:
        self.u = u
        self.y = y
        self._correlate = correlate
        self._patches = patches

    def correlate(self, signal: torch.Tensor | None = None) -> torch.Tensor:
        """``Σ_N signal_k·x_i`` (default ``signal = y``) as ``(c_out, n)``."""
        return self._correlate(self.y if signal is None else signal)

    @cached_property
    def patches(self) -> torch.Tensor:
        return self._patches()


class PlasticityRule(Protocol):
    def delta(self, weight: torch.Tensor, batch: HebbianBatch) -> torch.Tensor: ...


def neuron_rates(weight: torch.Tensor, params: PlasticityParams, progress: float) -> torch.Tensor:
    """Per-neuron learning rates for ``weight`` of shape ``(c_out, n)``.

    ``progress`` is the fraction of the Hebbian phase already done, in ``[0, 1]``.
    """
    if params.adaptive:
        norms = weight.norm(dim=1)
        return params.lr * ((norms - 1.0).abs() + ADAPTIVE_EPSILON) ** params.lr_power
    rate = params.lr * max(0.0, 1.0 - progress)
    return torch.full((weight.shape[0],), rate, dtype=weight.dtype, device=weight.device)


def apply_update(
    weight: torch.Tensor, delta: torch.Tensor, params: PlasticityParams, progress: float
) -> None:
    """``weight += η ⊙ Δw`` in place, after the optional global max normalisation.

    The normalisation is folded into the per-neuron rates, so ``Δw`` is read once.
    """
    rates = neuron_rates(weight, params, progress)
    if params.normalize == "max":
        low, high = torch.aminmax(delta)  # max |Δw| without an |Δw| temporary
        rates = rates / (torch.maximum(high, -low) + NORMALIZE_EPSILON)
    weight.addcmul_(delta, rates.unsqueeze(1))
