"""Sylvester Hadamard matrices, ZerO's scale conventions and GF(2) helpers (pure maths).

Shared by the deterministic initialisers (``hebbkit_zero``, ``hebbkit_deterministic``); no
component lives here. The Sylvester matrix of size 2^m has entries
``H[i, j] = (-1)^popcount(i & j)`` (:func:`walsh_signs` computes any such block without
building H), so choosing rows and columns of H is choosing integers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

#: Hadamard scale conventions, as functions of m = ceil(log2 c_out).
SCALES: dict[str, Callable[[int], float]] = {
    "paper": lambda m: 2.0 ** (-(m - 1) / 2),  # the ZerO paper's text
    "orthonormal": lambda m: 2.0 ** (-m / 2),  # ZerO's public code
    "study": lambda m: 2.0 ** (-m / 2) * 2.0 ** (-(m - 1) / 2),  # what the study's code ran
}


def sylvester_hadamard(size: int) -> torch.Tensor:
    """The Sylvester Hadamard matrix of ``size`` = 2^m (±1 entries)."""
    if size < 1 or size & (size - 1):
        raise ValueError(f"Hadamard size must be a power of two, got {size}")
    h = torch.ones(1, 1)
    while h.shape[0] < size:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def walsh_signs(rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """``H[rows][:, columns]`` of the Sylvester matrix, as float32 ±1: (-1)^popcount(i & j)."""
    both = rows.long()[:, None] & columns.long()[None, :]
    parity = torch.zeros_like(both)
    # one pass per bit of the largest index, not per entry
    for bit in range(max(int(both.max().item()), 1).bit_length() if both.numel() else 0):
        parity ^= (both >> bit) & 1
    return (1 - 2 * parity).float()


# --- GF(2^A), for maximal-length sequences ----------------------------------------------------
# Elements are ints: bit b is the coefficient of x^b (the polynomial basis), so x^b = 1 << b.


def gf2_mulmod(a: int, b: int, poly: int, degree: int) -> int:
    """a·b in GF(2)[x] / (poly), poly of ``degree`` given with its x^degree bit."""
    result = 0
    while b:
        if b & 1:
            result ^= a
        b >>= 1
        a <<= 1
        if a >> degree & 1:
            a ^= poly
    return result


def gf2_powmod(base: int, exponent: int, poly: int, degree: int) -> int:
    """base^exponent in GF(2)[x] / (poly)."""
    result = 1
    while exponent:
        if exponent & 1:
            result = gf2_mulmod(result, base, poly, degree)
        base = gf2_mulmod(base, base, poly, degree)
        exponent >>= 1
    return result


def _prime_factors(value: int) -> list[int]:
    factors, p = [], 2
    while p * p <= value:
        if value % p == 0:
            factors.append(p)
            while value % p == 0:
                value //= p
        p += 1
    if value > 1:
        factors.append(value)
    return factors


@functools.cache
def primitive_polynomial(degree: int) -> int:
    """The smallest primitive polynomial of ``degree`` over GF(2), as an int (x^degree bit set).

    x has multiplicative order exactly 2^degree − 1 modulo a primitive polynomial, which is
    checked directly (x^order = 1 and x^(order/p) ≠ 1 for every prime p | order); that also
    makes the polynomial irreducible, so no table has to be trusted.
    """
    if not 1 <= degree <= 62:
        raise ValueError(f"degree must be in 1..62, got {degree}")
    if degree == 1:
        return 0b11  # x + 1: GF(2) itself, whose only unit 1 has order 1 = 2^1 − 1
    order = 2**degree - 1
    factors = _prime_factors(order)
    x = 0b10
    for poly in range(2**degree + 1, 2 ** (degree + 1), 2):  # constant term 1
        if gf2_powmod(x, order, poly, degree) == 1 and all(
            gf2_powmod(x, order // p, poly, degree) != 1 for p in factors
        ):
            return poly
    raise AssertionError(f"no primitive polynomial of degree {degree}")  # pragma: no cover


def msequence_windows(starts: list[int], length: int, degree: int) -> torch.Tensor:
    """Bits s_{j+t}, t < ``length``, of the m-sequence s_j = coef₀(α^j) for each start α^j.

    ``starts`` are the field elements α^j (ints); α is a root of
    :func:`primitive_polynomial`. Returns ``(len(starts), length)`` int64 bits. The loop runs
    over the window's taps, each step multiplying every start by α at once.
    """
    poly = primitive_polynomial(degree)
    state = torch.tensor(starts, dtype=torch.long)
    bits = torch.empty(len(starts), length, dtype=torch.long)
    for t in range(length):
        bits[:, t] = state & 1
        state = state << 1
        # reduce x^degree with the primitive polynomial where it appeared
        state = torch.where((state >> degree) & 1 == 1, state ^ poly, state)
    return bits


def ceil_log2(value: int) -> int:
    """⌈log₂ value⌉ for value ≥ 1, exactly (no floating point)."""
    return (value - 1).bit_length()
