"""Winner-take-all competition modes on pre-activations ``u`` of shape ``(N, c_out)``."""

from __future__ import annotations

import torch
from pydantic import Field

from hebbkit.registry import Params


class SoftParams(Params):
    t_invert: float = Field(1.0, gt=0, description="β, inverse temperature of the softmax")


class HardKrotovParams(Params):
    delta: float = Field(
        0.4, ge=0, description="strength of the anti-Hebbian push on the rank-r neuron"
    )
    rank: int = Field(2, ge=2, description="which runner-up is pushed away (2 = second best)")


def _winner_mask(u: torch.Tensor) -> torch.Tensor:
    # argmax takes the first maximum, so ties (identical ZerO filters) resolve to the lowest index
    return one_hot(u.argmax(dim=1), u.shape[1], u.dtype)


def one_hot(index: torch.Tensor, classes: int, dtype: torch.dtype) -> torch.Tensor:
    out = torch.zeros(index.shape[0], classes, dtype=dtype, device=index.device)
    return out.scatter_(1, index.unsqueeze(1), 1.0)


def soft(params: SoftParams):
    def compete(u: torch.Tensor) -> torch.Tensor:
        return torch.softmax(params.t_invert * u, dim=1)

    return compete


def softkrotov(params: SoftParams):
    """Soft WTA, then every neuron but the winner turns anti-Hebbian (sign flipped)."""

    def compete(u: torch.Tensor) -> torch.Tensor:
        y = torch.softmax(params.t_invert * u, dim=1)
        sign = 2.0 * _winner_mask(u) - 1.0
        return y * sign

    return compete


def hard(params: SoftParams):
    def compete(u: torch.Tensor) -> torch.Tensor:
        return _winner_mask(u)

    return compete


def hardkrotov(params: HardKrotovParams):
    def compete(u: torch.Tensor) -> torch.Tensor:
        if u.shape[1] < params.rank:
            return _winner_mask(u)
        # repeated argmax, so ties rank the lower index first (as in the other modes); topk
        # leaves the order of ties unspecified
        first = u.argmax(dim=1)
        masked, index = u.clone(), first
        for _ in range(params.rank - 1):
            masked.scatter_(1, index.unsqueeze(1), float("-inf"))
            index = masked.argmax(dim=1)
        winner = one_hot(first, u.shape[1], u.dtype)
        loser = one_hot(index, u.shape[1], u.dtype)
        return winner - params.delta * loser

    return compete
