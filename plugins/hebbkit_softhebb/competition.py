"""Winner-take-all competition modes on pre-activations ``u`` of shape ``(N, c_out)``."""

from __future__ import annotations

import torch

from .params import HardKrotovParams, SoftParams, TieBreakParams, WinnerParams


def winners(u: torch.Tensor, params: TieBreakParams | None = None) -> torch.Tensor:
    """The winning neuron of every row of ``u`` ``(N, C)``, ties broken by ``params``."""
    if params is None or (params.tie_break == "lowest" and params.tie_tolerance == 0):
        # argmax takes the first maximum: ties (identical ZerO filters) go to the lowest index
        return u.argmax(dim=1)
    top = u.max(dim=1, keepdim=True).values
    tied = u >= top - params.tie_tolerance * top.abs() if params.tie_tolerance else u == top
    if params.tie_break == "lowest":
        choice = torch.zeros(u.shape[0], dtype=torch.long, device=u.device)
    else:
        # the row index is the position: fixed for a fixed data order, and consecutive rows
        # (neighbouring pixels, then images) cycle through the tied neurons
        count = tied.sum(dim=1).clamp_min(1)
        choice = torch.arange(u.shape[0], device=u.device) % count
    rank = tied.cumsum(dim=1) - 1  # rank of each tied neuron among its row's tied ones
    return (tied & (rank == choice[:, None])).int().argmax(dim=1)


def _winner_mask(u: torch.Tensor, params: TieBreakParams | None = None) -> torch.Tensor:
    return one_hot(winners(u, params), u.shape[1], u.dtype)


def one_hot(index: torch.Tensor, classes: int, dtype: torch.dtype) -> torch.Tensor:
    out = torch.zeros(index.shape[0], classes, dtype=dtype, device=index.device)
    return out.scatter_(1, index.unsqueeze(1), 1.0)


def soft(params: SoftParams):
    def compete(u: torch.Tensor) -> torch.Tensor:
        return torch.softmax(params.t_invert * u, dim=1)

    return compete


def softkrotov(params: WinnerParams):
    """Soft WTA, then every neuron but the winner turns anti-Hebbian (sign flipped)."""

    def compete(u: torch.Tensor) -> torch.Tensor:
        y = torch.softmax(params.t_invert * u, dim=1)
        sign = 2.0 * _winner_mask(u, params) - 1.0
        return y * sign

    compete.winners = lambda u: winners(u, params)  # for the layer's win-count diagnostics
    return compete


def hard(params: WinnerParams):
    def compete(u: torch.Tensor) -> torch.Tensor:
        return _winner_mask(u, params)

    compete.winners = lambda u: winners(u, params)
    return compete


def hardkrotov(params: HardKrotovParams):
    def compete(u: torch.Tensor) -> torch.Tensor:
        if u.shape[1] < params.rank:
            return _winner_mask(u, params)
        # repeated winner picks, so ties follow the tie-break rule (lowest index first by
        # default, as in the other modes); topk leaves the order of ties unspecified
        first = winners(u, params)
        masked, index = u.clone(), first
        for _ in range(params.rank - 1):
            masked.scatter_(1, index.unsqueeze(1), float("-inf"))
            index = winners(masked, params)
        winner = one_hot(first, u.shape[1], u.dtype)
        loser = one_hot(index, u.shape[1], u.dtype)
        return winner - params.delta * loser

    compete.winners = lambda u: winners(u, params)
    return compete
