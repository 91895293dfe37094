"""ZerO's deterministic initialiser and the study's random-binary variant."""

from __future__ import annotations

from hebbkit.hookspecs import hookimpl

from . import initializers


@hookimpl
def register_initializers(register):
    register(
        "zero",
        initializers.zero,
        params=initializers.ZerOParams,
        description="ZerO: centre-tap identity / partial identity / scaled Hadamard block",
    )
    register(
        "random-binary",
        initializers.random_binary,
        params=initializers.RandomBinaryParams,
        description="i.i.d. Bernoulli(p) weights in {0, 1}, unscaled",
    )
