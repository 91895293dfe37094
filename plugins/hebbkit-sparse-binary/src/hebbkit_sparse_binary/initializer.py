"""Sparse binary weights: every filter has the same number of non-zeros, at random places.

Unlike i.i.d. ``random-binary`` (whose filters differ in how many ones they get, so their norms
and initial learning rates differ), every filter here has exactly ``k = round(density·fan_in)``
non-zeros, so all neurons start with the same norm and only the pattern differs.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field, model_validator

from hebbkit.registry import Params


class SparseBinaryParams(Params):
    density: float = Field(
        0.25, gt=0, le=1, description="fraction of non-zeros per filter (at least one)"
    )
    scale: Literal["unit", "radius"] = Field(
        "unit", description="unit: non-zeros are 1; radius: each filter scaled to norm `radius`"
    )
    radius: float = Field(1.0, gt=0, description="filter norm when scale = 'radius'")

    @model_validator(mode="after")
    def _radius_needs_scale(self) -> SparseBinaryParams:
        # a radius with scale = "unit" would silently do nothing
        if self.scale == "unit" and self.radius != 1.0:
            raise ValueError(f'radius = {self.radius} has no effect unless scale = "radius"')
        return self


def nonzeros_per_filter(density: float, fan_in: int) -> int:
    """``round(density·fan_in)``, at least 1 so that no filter is all zeros."""
    return min(fan_in, max(1, round(density * fan_in)))


def sparse_binary(params: SparseBinaryParams):
    def init(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        filters, fan_in = shape[0], math.prod(shape[1:])
        k = nonzeros_per_filter(params.density, fan_in)
        # a random permutation per filter (argsort of uniform noise); its first k places are on
        order = torch.rand(filters, fan_in, generator=generator).argsort(dim=1)
        value = 1.0 if params.scale == "unit" else params.radius / math.sqrt(k)
        weight = torch.zeros(filters, fan_in)
        weight.scatter_(1, order[:, :k], value)
        return weight.reshape(shape)

    return init
