"""Output activations over the channel axis (dim 1) of ``u`` ``(B, C, H, W)``.

The elementwise ones also offer ``f.in_place(u)``, which overwrites ``u``: the layer calls it
when it no longer needs ``u`` (the frozen network's forward pass, a block's output after its
update), saving a fresh allocation of the largest tensor of a run.
"""

from __future__ import annotations

from functools import cache

import torch
import torch.nn.functional as F

from .params import PowerParams, SoftmaxParams


def exact_power(power: float) -> bool:
    """Powers left to torch's ``pow``: integers (2 and 3 are products there, the others keep
    its last-ulp accuracy) and 0.5 (a square root)."""
    return power.is_integer() or power == 0.5


@cache
def _zero_below(power: float, floor: float) -> float:
    """Just above ``floor ** power`` as the float32 path computes it: results up to it are
    those of values at or below the floor, and become zero."""
    computed = torch.tensor(floor, dtype=torch.float32).log2_().mul_(power).exp2_().item()
    return computed * (1 + 2**-20)


def relu_power_(out: torch.Tensor, power: float) -> torch.Tensor:
    """``ReLU(out)^power``, in place.

    On CPUs a fractional power of float32 goes through ``exp2(power · log2(·))``: 3.5-4×
    faster than torch's ``pow`` (``benchmarks/relu_power.py``; ``pow`` was most of
    ``mnist_zero``'s frozen layer), within about 2 + 1.5·|power · log2 x| ulps (a few for
    activations near 1, where ``pow`` keeps 1). ``log2`` of zero and ``exp2`` into subnormals
    take slow paths, so values up to zero are first raised to a floor whose log and power are
    normal numbers, and results up to the floor's power are set to zero after; positive values
    below the floor also give zero, an error under the floor's power (2⁻⁸⁸ at power 0.7, 2⁻¹²⁶
    for powers ≥ 1). Thresholds rather than a mask: multiplying by a boolean mask converts it
    to float first, which cost more than the power. GPUs keep ``pow``, fast there, and so do
    other dtypes.
    """
    if power == 1:
        return out.relu_()
    if exact_power(power) or out.dtype != torch.float32 or out.device.type != "cpu":
        return out.relu_().pow_(power)
    floor = torch.finfo(out.dtype).tiny ** min(1.0, 1.0 / power)
    F.threshold_(out, 0.0, floor).log2_().mul_(power).exp2_()
    return F.threshold_(out, _zero_below(power, floor), 0.0)


def triangle(params: PowerParams):
    """ReLU(u − mean over channels of u)^power."""

    def f(u: torch.Tensor) -> torch.Tensor:
        # one fresh tensor, then in place: these maps are the largest tensors of a run
        return relu_power_(u - u.mean(dim=1, keepdim=True), params.power)

    def in_place(u: torch.Tensor) -> torch.Tensor:
        return relu_power_(u.sub_(u.mean(dim=1, keepdim=True)), params.power)

    f.in_place = in_place
    return f


def repu(params: PowerParams):
    """ReLU(u)^power."""

    def f(u: torch.Tensor) -> torch.Tensor:
        return relu_power_(u.clone(), params.power)

    def in_place(u: torch.Tensor) -> torch.Tensor:
        return relu_power_(u, params.power)

    f.in_place = in_place
    return f


def softmax(params: SoftmaxParams):
    def f(u: torch.Tensor) -> torch.Tensor:
        return torch.softmax(params.t_invert * u, dim=1)

    return f
