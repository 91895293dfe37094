"""Output activations over the channel axis (dim 1) of ``u`` ``(B, C, H, W)``.

The elementwise ones also offer ``f.in_place(u)``, which overwrites ``u``: the layer calls it
when it no longer needs ``u`` (the frozen network's forward pass, a block's output after its
update), saving a fresh allocation of the largest tensor of a run.
"""

from __future__ import annotations

import torch

from .params import PowerParams, SoftmaxParams


def _power(out: torch.Tensor, power: float) -> torch.Tensor:
    return out if power == 1 else out.pow_(power)


def triangle(params: PowerParams):
    """ReLU(u − mean over channels of u)^power."""

    def f(u: torch.Tensor) -> torch.Tensor:
        # one fresh tensor, then in place: these maps are the largest tensors of a run
        return _power((u - u.mean(dim=1, keepdim=True)).relu_(), params.power)

    def in_place(u: torch.Tensor) -> torch.Tensor:
        return _power(u.sub_(u.mean(dim=1, keepdim=True)).relu_(), params.power)

    f.in_place = in_place
    return f


def repu(params: PowerParams):
    """ReLU(u)^power."""

    def f(u: torch.Tensor) -> torch.Tensor:
        return _power(torch.relu(u), params.power)

    def in_place(u: torch.Tensor) -> torch.Tensor:
        return _power(u.relu_(), params.power)

    f.in_place = in_place
    return f


def softmax(params: SoftmaxParams):
    def f(u: torch.Tensor) -> torch.Tensor:
        return torch.softmax(params.t_invert * u, dim=1)

    return f
