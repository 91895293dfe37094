"""SoftHebb's random initialisation."""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field

from hebbkit.registry import Params


class RandomParams(Params):
    distribution: Literal["normal", "uniform"] = Field(
        "normal",
        description="normal: N(0, (R/√n)²), for layers with input BN; uniform: U[0, √(3R²/n))",
    )
    radius: float = Field(25.0, gt=0, description="R, the expected neuron norm")


def random_init(params: RandomParams):
    def init(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        fan_in = math.prod(shape[1:])
        if params.distribution == "normal":
            std = params.radius / math.sqrt(fan_in)
            return torch.randn(shape, generator=generator) * std
        upper = math.sqrt(3 * params.radius**2 / fan_in)
        return torch.rand(shape, generator=generator) * upper

    return init
