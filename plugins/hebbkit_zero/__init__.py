"""ZerO's deterministic initialiser and the study's random-binary variant.

The component modules import torch; ``lazy_factory`` imports them when a recipe first builds
a component, so loading this plugin (``hebbkit --help``, ``hebbkit plugins``) does not.
"""

from __future__ import annotations

from hebbkit.hookspecs import hookimpl
from hebbkit.registry import lazy_factory

from .params import RandomBinaryParams, ZerOParams


@hookimpl
def register_initializers(register):
    register(
        "zero",
        lazy_factory(f"{__name__}.initializers:zero"),
        params=ZerOParams,
        description="ZerO: centre-tap identity / partial identity / scaled Hadamard block",
    )
    register(
        "random-binary",
        lazy_factory(f"{__name__}.initializers:random_binary"),
        params=RandomBinaryParams,
        description="i.i.d. Bernoulli(p) weights in {0, 1}, unscaled",
    )
