"""Deterministic initialisers in ZerO's spirit whose filters are all distinct.

ZerO builds a conv weight from the centre tap only: its c_out × c_in Hadamard block has at most
2^⌈log₂ c_in⌉ distinct rows, so with few input channels its filters start identical, and
identical neurons get identical Hebbian updates (``../shared/docs/algorithms.md`` §2). These
initialisers work over the flattened patch instead (n = c_in·k·k inputs per filter, in the
order of ``weight.view(c_out, -1)``), with values in {0, ±c}, no randomness, and rows and
columns of the Sylvester Hadamard matrix H[i, j] = (−1)^popcount(i & j) chosen so that no two
filters are equal:

* **Why distinct.** Among the n chosen columns are the powers of two 1, 2, …, 2^(A−1); on
  them row i reads (−1)^(bit b of i), the bits of i. So distinct row indices below 2^A give
  distinct filters, as long as A ≤ n. Distinct ±1 filters exist only for c_out ≤ 2^n, and that
  is the only shape refused.
* ``order = "sylvester"``: rows 1..c_out (row 0 is all ones, a flat filter every other filter
  correlates with) and columns the powers of two, then the other indices ≥ 3 in increasing
  order (column 0, all ones, is skipped for the same reason), placed in increasing order. With
  c_out ≤ n the columns are exactly 1..n with 2^A > n, and the dot product of rows i ≠ i' is
  a partial sum of the Walsh function i ⊕ i', which cancels over every aligned block of
  2^(lsb(i⊕i')+1) columns: most pairs are orthogonal up to ±2, a few (those whose indices
  differ only in high bits) keep |cos| ≲ 0.2. Structured (Walsh functions over the patch).
* ``order = "msequence"``: columns α^t (t < n) and rows chosen so that filter k is the window
  s_{j_k}, …, s_{j_k+n−1} of the maximal-length sequence s_j = coef₀(α^j) over GF(2^A), α a
  root of the smallest primitive polynomial, j_k = k·stride with stride ≥ n coprime with
  2^A − 1. The first A columns α^0..α^(A−1) are again the powers of two; A is as large as
  needed (≤ min(n, 31)) for the windows not to overlap. Filters look random ±1 (coherence like
  i.i.d. signs) but are fixed by the shape alone.

``zero-distinct`` keeps ZerO's sparsity where it can: with c_out ≤ n, filter k has one
non-zero, at the k-th flattened index of (tap nearest the centre first, then channel) — so
for c_out ≤ c_in it is ZerO's (partial) identity at the centre tap — and with c_out > n it is
the dense ``hadamard-distinct`` block.
"""

from __future__ import annotations

import functools
import math

import torch

from hebbkit.errors import RecipeError
from hebbkit.hadamard import (
    SCALES,
    ceil_log2,
    gf2_mulmod,
    gf2_powmod,
    msequence_windows,
    primitive_polynomial,
    walsh_signs,
)

from .params import DistinctParams

#: The field GF(2^A) of the m-sequence grows until windows stop overlapping, up to this degree.
MAX_DEGREE = 31


class ImpossibleShapeError(RecipeError, ValueError):
    """More filters than distinct ±1 patterns over the patch (c_out > 2^n)."""


def _sizes(shape: tuple[int, ...]) -> tuple[int, int]:
    return shape[0], math.prod(shape[1:])


def check_shape(shape: tuple[int, ...]) -> None:
    """Refuse shapes with more filters than distinct ±1 patterns over the patch."""
    c_out, n = _sizes(shape)
    if n < 63 and c_out > 1 << n:
        raise ImpossibleShapeError(
            f"Weight shape {tuple(shape)}: {c_out} filters over n = {n} inputs each cannot all "
            f"be distinct with values ±c (at most 2^{n} = {1 << n} sign patterns exist). Use at "
            "most that many channels, or a larger kernel / more input channels."
        )


def sylvester_indices(c_out: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows and columns of the Sylvester matrix for ``order='sylvester'`` (c_out ≤ 2^n)."""
    # all 2^n sign patterns are needed when c_out = 2^n: then row 0 cannot be skipped
    first = 0 if n < 63 and c_out == 1 << n else 1
    bits = max((c_out - 1 + first).bit_length(), n.bit_length())  # bits ≤ n as c_out ≤ 2^n
    candidates = torch.arange(3, max(1 << bits, 3))
    others = candidates[(candidates & (candidates - 1)) != 0][: n - bits]
    powers = torch.tensor([1 << b for b in range(bits)], dtype=torch.long)
    columns = torch.cat([powers, others]).sort().values
    return torch.arange(first, c_out + first), columns


def msequence_plan(c_out: int, n: int) -> tuple[int, int]:
    """(degree A, stride) of the m-sequence windows for c_out filters of n taps (c_out < 2^n)."""
    # A ≤ n keeps the first A taps a bijective read-out of the state; 2^A − 1 ≥ c_out, n
    degree = max(c_out.bit_length(), n.bit_length(), min(n, (c_out * n).bit_length(), MAX_DEGREE))
    stride = n
    while math.gcd(stride, 2**degree - 1) != 1:  # invertible mod the period: distinct starts
        stride += 1
    return degree, stride


def msequence_starts(c_out: int, degree: int, stride: int) -> list[int]:
    """The field elements α^(k·stride), k < c_out, where the filters' windows start."""
    poly = primitive_polynomial(degree)
    alpha = 0b10 if degree > 1 else 0b1  # x, reduced: in GF(2) = F₂[x]/(x + 1), x = 1
    step = gf2_powmod(alpha, stride, poly, degree)
    starts, element = [], 1
    for _ in range(c_out):  # init-time loop over filters, a few integer products each
        starts.append(element)
        element = gf2_mulmod(element, step, poly, degree)
    return starts


@functools.lru_cache(maxsize=16)
def _distinct_signs(c_out: int, n: int, order: str) -> torch.Tensor:
    if order == "msequence" and not (n < 63 and c_out == 1 << n):
        degree, stride = msequence_plan(c_out, n)
        bits = msequence_windows(msequence_starts(c_out, degree, stride), n, degree)
        return (1 - 2 * bits).float()
    # sylvester, and msequence with c_out = 2^n: every sign pattern is used (an m-sequence
    # never passes through the all-zero state), and the order of rows does not matter
    rows, columns = sylvester_indices(c_out, n)
    return walsh_signs(rows, columns)


def distinct_signs(shape: tuple[int, ...], order: str) -> torch.Tensor:
    """The ``(c_out, n)`` ±1 matrix of pairwise distinct rows for a weight of ``shape``."""
    check_shape(shape)
    c_out, n = _sizes(shape)
    return _distinct_signs(c_out, n, order).clone()  # the cache must not be mutated


def spread_indices(shape: tuple[int, ...]) -> torch.Tensor:
    """Flattened patch indices ordered tap-major (centre first, then by distance), channel-minor.

    The first c_in entries are the centre tap of every channel, as in ZerO's identity.
    """
    if len(shape) == 2:
        return torch.arange(shape[1])
    c_in, taps = shape[1], math.prod(shape[2:])
    height, width = shape[2], shape[3]
    tap = torch.arange(taps)
    # the centre ⌊k/2⌋ also for even kernels, like ZerO; ties by row-major tap index
    distance = (tap // width - height // 2) ** 2 + (tap % width - width // 2) ** 2
    tap_order = torch.argsort(distance * taps + tap)
    return (torch.arange(c_in)[None, :] * taps + tap_order[:, None]).reshape(-1)


def _scale(params: DistinctParams, c_out: int, nonzeros: int, one_hot: bool = False) -> float:
    if params.scale == "norm":
        return params.norm / math.sqrt(nonzeros)
    if one_hot:
        return 1.0  # ZerO leaves its identity unscaled
    return SCALES[params.scale](ceil_log2(c_out))


def hadamard_distinct(params: DistinctParams):
    def init(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        c_out, n = _sizes(shape)
        signs = distinct_signs(shape, params.order)
        return (signs * _scale(params, c_out, n)).reshape(shape)

    return init


def zero_distinct(params: DistinctParams):
    dense = hadamard_distinct(params)

    def init(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        c_out, n = _sizes(shape)
        if c_out > n:
            return dense(shape, generator)
        weight = torch.zeros(c_out, n)
        weight[torch.arange(c_out), spread_indices(shape)[:c_out]] = _scale(
            params, c_out, 1, one_hot=True
        )
        return weight.reshape(shape)

    return init
