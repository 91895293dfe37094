"""Output activations over the channel axis (dim 1) of ``u`` ``(B, C, H, W)``."""

from __future__ import annotations

import torch

from .params import PowerParams, SoftmaxParams


def triangle(params: PowerParams):
    """ReLU(u − mean over channels of u)^power."""

    def f(u: torch.Tensor) -> torch.Tensor:
        # one fresh tensor, then in place: these maps are the largest tensors of a run
        out = (u - u.mean(dim=1, keepdim=True)).relu_()
        return out if params.power == 1 else out.pow_(params.power)

    return f


def repu(params: PowerParams):
    """ReLU(u)^power."""

    def f(u: torch.Tensor) -> torch.Tensor:
        out = torch.relu(u)
        return out if params.power == 1 else out.pow_(params.power)

    return f


def softmax(params: SoftmaxParams):
    def f(u: torch.Tensor) -> torch.Tensor:
        return torch.softmax(params.t_invert * u, dim=1)

    return f
