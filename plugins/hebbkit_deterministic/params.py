"""Parameter model of the distinct-filter initialisers (no torch: see __init__)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hebbkit.registry import Params


class DistinctParams(Params):
    order: Literal["sylvester", "msequence"] = Field(
        "sylvester",
        description=(
            "which Hadamard rows/columns: sylvester = rows 1..c_out, columns 1, 2, 4, … then "
            "ascending (Walsh functions); msequence = windows of a maximal-length sequence"
        ),
    )
    scale: Literal["norm", "paper", "orthonormal", "study"] = Field(
        "norm",
        description=(
            "norm: c = norm/√(non-zeros per filter), every neuron has norm `norm`; paper / "
            "orthonormal / study: ZerO's Hadamard scales with m = ⌈log₂ c_out⌉ (1 for a "
            "one-hot filter, like ZerO's identity)"
        ),
    )
    norm: float = Field(
        25.0, gt=0, description="target neuron norm for scale='norm' (SoftHebb's radius R)"
    )
