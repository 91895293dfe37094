"""Parameter models of the datasets (no torch: see __init__)."""

from __future__ import annotations

from pydantic import Field

from hebbkit.registry import Params


class NoParams(Params):
    pass


class STL10Params(Params):
    unlabeled: bool = Field(
        False, description="add the 100 000 unlabelled images to the Hebbian phase"
    )
