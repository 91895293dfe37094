"""Spatial poolings."""

from __future__ import annotations

from pydantic import Field, model_validator
from torch import nn

from hebbkit.registry import Params


class WindowParams(Params):
    kernel: int = Field(2, gt=0)
    stride: int | None = Field(None, gt=0, description="defaults to the kernel size")
    padding: int = Field(0, ge=0, description="at most half the kernel, as torch requires")

    @model_validator(mode="after")
    def _padding_fits(self) -> WindowParams:
        if self.padding > self.kernel // 2:
            raise ValueError(f"padding {self.padding} is more than half the kernel {self.kernel}")
        return self


class AvgParams(WindowParams):
    count_include_pad: bool = Field(True, description="count padded zeros in the average")


class IdentityParams(Params):
    pass


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
