"""Spatial poolings."""

from __future__ import annotations

from torch import nn

from .params import AvgParams, IdentityParams, WindowParams


def max_pool(params: WindowParams) -> nn.Module:
    return nn.MaxPool2d(params.kernel, params.stride or params.kernel, params.padding)


def avg_pool(params: AvgParams) -> nn.Module:
    return nn.AvgPool2d(
        params.kernel,
        params.stride or params.kernel,
        params.padding,
        count_include_pad=params.count_include_pad,
    )


def identity(params: IdentityParams) -> nn.Module:
    return nn.Identity()
