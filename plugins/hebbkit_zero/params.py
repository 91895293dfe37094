"""Parameter models of the ZerO and random-binary initialisers (no torch: see __init__)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hebbkit.registry import Params


class ZerOParams(Params):
    scale: Literal["paper", "orthonormal", "study"] = Field(
        "paper", description="scale of the Hadamard block when c_out > c_in"
    )


class RandomBinaryParams(Params):
    p: float = Field(0.5, gt=0, le=1, description="probability of a 1")
