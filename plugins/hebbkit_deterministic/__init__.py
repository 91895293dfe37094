"""Deterministic initialisers whose filters are all distinct (no ZerO degeneracy).

The component modules import torch; ``lazy_factory`` imports them when a recipe first builds
a component, so loading this plugin (``hebbkit --help``, ``hebbkit plugins``) does not.
"""

from __future__ import annotations

from hebbkit.hookspecs import hookimpl
from hebbkit.registry import lazy_factory

from .params import DistinctParams


@hookimpl
def register_initializers(register):
    register(
        "hadamard-distinct",
        lazy_factory(f"{__name__}.initializers:hadamard_distinct"),
        params=DistinctParams,
        description="dense ±c Hadamard rows over the flattened patch, every filter distinct",
    )
    register(
        "zero-distinct",
        lazy_factory(f"{__name__}.initializers:zero_distinct"),
        params=DistinctParams,
        description="one-hot spread over taps and channels if c_out ≤ n, else hadamard-distinct",
    )
