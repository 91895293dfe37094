"""Winner-take-all competition modes on pre-activations ``u`` of shape ``(N, c_out)``.

Finding each row's winner (``argmax`` over a short row) is one of the slowest passes of a
step on a CPU; :class:`LastWinners` keeps the winners of the ``u`` a competition has just
seen, so the layer's win counts (``compete.winners(u)``, called after ``compete(u)``) reuse
them instead of a second pass.
"""

from __future__ import annotations

import weakref

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


class LastWinners:
    """``winners(u, params)``, remembered for the last ``u`` as long as it is unchanged."""

    def __init__(self, params: TieBreakParams | None = None) -> None:
        self.params = params
        self._seen: tuple[weakref.ref[torch.Tensor], int] | None = None
        self._winners: torch.Tensor | None = None

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        seen = self._seen
        if seen is None or seen[0]() is not u or seen[1] != u._version or self._winners is None:
            self._winners = winners(u, self.params)
            self._seen = (weakref.ref(u), u._version)
        return self._winners


def one_hot(index: torch.Tensor, classes: int, dtype: torch.dtype) -> torch.Tensor:
    out = torch.zeros(index.shape[0], classes, dtype=dtype, device=index.device)
    return out.scatter_(1, index.unsqueeze(1), 1.0)


def soft(params: SoftParams):
    def compete(u: torch.Tensor) -> torch.Tensor:
        return _softmax(u, params.t_invert)

    return compete


def _softmax(u: torch.Tensor, t_invert: float) -> torch.Tensor:
    return torch.softmax(u if t_invert == 1 else t_invert * u, dim=1)


def softkrotov(params: WinnerParams):
    """Soft WTA, then every neuron but the winner turns anti-Hebbian (sign flipped)."""
    last = LastWinners(params)

    def compete(u: torch.Tensor) -> torch.Tensor:
        y = _softmax(u, params.t_invert)
        # y·(2·one_hot − 1) without the mask: negate all in place, restore the winners
        won = last(u).unsqueeze(1)
        kept = y.gather(1, won)
        return y.neg_().scatter_(1, won, kept)

    compete.winners = last  # for the layer's win-count diagnostics
    return compete


def hard(params: WinnerParams):
    last = LastWinners(params)

    def compete(u: torch.Tensor) -> torch.Tensor:
        return one_hot(last(u), u.shape[1], u.dtype)

    compete.winners = last
    return compete


def hardkrotov(params: HardKrotovParams):
    last = LastWinners(params)

    def compete(u: torch.Tensor) -> torch.Tensor:
        first = last(u)
        if u.shape[1] < params.rank:
            return one_hot(first, u.shape[1], u.dtype)
        # repeated winner picks, so ties follow the tie-break rule (lowest index first by
        # default, as in the other modes); topk leaves the order of ties unspecified
        masked, index = u.clone(), first
        for _ in range(params.rank - 1):
            masked.scatter_(1, index.unsqueeze(1), float("-inf"))
            index = winners(masked, params)
        winner = one_hot(first, u.shape[1], u.dtype)
        loser = one_hot(index, u.shape[1], u.dtype)
        return winner - params.delta * loser

    compete.winners = last
    return compete
