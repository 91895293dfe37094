"""ZerO (Zhao et al., TMLR 2022) and random-binary initialisers."""

from __future__ import annotations

import math

import torch

from hebbkit.hadamard import SCALES, sylvester_hadamard

from .params import RandomBinaryParams, ZerOParams


def zero_matrix(c_out: int, c_in: int, scale: str) -> torch.Tensor:
    """ZerO's (c_out, c_in) matrix: identity, partial identity or a scaled Hadamard block."""
    if c_out <= c_in:
        return torch.eye(c_out, c_in)
    m = math.ceil(math.log2(c_out))
    return sylvester_hadamard(2**m)[:c_out, :c_in] * SCALES[scale](m)


def zero(params: ZerOParams):
    def init(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        matrix = zero_matrix(shape[0], shape[1], params.scale)
        if len(shape) == 2:
            return matrix
        weight = torch.zeros(shape)
        # the centre tap floor(k/2), also for even kernels (as the study's code does)
        weight[:, :, shape[2] // 2, shape[3] // 2] = matrix
        return weight

    return init


def random_binary(params: RandomBinaryParams):
    def init(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        return (torch.rand(shape, generator=generator) < params.p).float()

    return init
