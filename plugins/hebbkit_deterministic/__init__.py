"""Deterministic initialisers whose filters are all distinct (no ZerO degeneracy)."""

from __future__ import annotations

from hebbkit.hookspecs import hookimpl

from . import initializers


@hookimpl
def register_initializers(register):
    register(
        "hadamard-distinct",
        initializers.hadamard_distinct,
        params=initializers.DistinctParams,
        description="dense ±c Hadamard rows over the flattened patch, every filter distinct",
    )
    register(
        "zero-distinct",
        initializers.zero_distinct,
        params=initializers.DistinctParams,
        description="one-hot spread over taps and channels if c_out ≤ n, else hadamard-distinct",
    )
