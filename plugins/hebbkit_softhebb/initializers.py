"""SoftHebb's random initialisation."""

from __future__ import annotations

import math

import torch

from .params import RandomParams


def random_init(params: RandomParams):
    def init(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        fan_in = math.prod(shape[1:])
        if params.distribution == "normal":
            std = params.radius / math.sqrt(fan_in)
            return torch.randn(shape, generator=generator) * std
        upper = math.sqrt(3 * params.radius**2 / fan_in)
        return torch.rand(shape, generator=generator) * upper

    return init
