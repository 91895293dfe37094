"""Parameter models of SoftHebb's components: pydantic only, so registering imports no torch."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from hebbkit.registry import Params, PlasticityParams


class RandomParams(Params):
    distribution: Literal["normal", "uniform"] = Field(
        "normal",
        description="normal: N(0, (R/√n)²), for layers with input BN; uniform: U[0, √(3R²/n))",
    )
    radius: float = Field(25.0, gt=0, description="R, the expected neuron norm")


class SoftHebbParams(PlasticityParams):
    pass


class OjaParams(PlasticityParams):
    pass


class HebbParams(PlasticityParams):
    pass


class SoftParams(Params):
    t_invert: float = Field(1.0, gt=0, description="β, inverse temperature of the softmax")


class TieBreakParams(Params):
    tie_break: Literal["lowest", "position"] = Field(
        "lowest",
        description=(
            "winner among tied maxima: lowest = the lowest index (torch.argmax); position = "
            "the (p mod #tied)-th tied neuron in row p of u, so identical filters (ZerO) win "
            "at different positions and learn apart"
        ),
    )
    tie_tolerance: float = Field(
        0.0,
        ge=0,
        description="neurons with u ≥ max − tol·|max| count as tied (0: exact ties only)",
    )


class WinnerParams(TieBreakParams, SoftParams):
    """Soft or hard winner-take-all with a tie-break rule for its winner."""


class HardKrotovParams(TieBreakParams):
    delta: float = Field(
        0.4, ge=0, description="strength of the anti-Hebbian push on the rank-r neuron"
    )
    rank: int = Field(2, ge=2, description="which runner-up is pushed away (2 = second best)")


class PowerParams(Params):
    power: float = Field(1.0, gt=0, description="exponent applied after the rectification")


class SoftmaxParams(Params):
    t_invert: float = Field(1.0, gt=0, description="t, inverse temperature")


class WindowParams(Params):
    kernel: int = Field(2, gt=0, description="window size (kernel × kernel)")
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
