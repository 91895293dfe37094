"""SoftHebb's components: random init, plasticity rules, competition, activations, poolings.

Registered through hebbkit's hooks exactly as a third-party plugin would be.

The component modules import torch; ``lazy_factory`` imports them when a recipe first builds
a component, so loading this plugin (``hebbkit --help``, ``hebbkit plugins``) does not.
"""

from __future__ import annotations

from hebbkit.hookspecs import hookimpl
from hebbkit.registry import lazy_factory

from .params import (
    AvgParams,
    HardKrotovParams,
    HebbParams,
    IdentityParams,
    OjaParams,
    PowerParams,
    RandomParams,
    SoftHebbParams,
    SoftmaxParams,
    SoftParams,
    WindowParams,
    WinnerParams,
)


@hookimpl
def register_initializers(register):
    register(
        "random",
        lazy_factory(f"{__name__}.initializers:random_init"),
        params=RandomParams,
        description="SoftHebb's default: N(0, (R/√n)²) with input BN, U[0, √(3R²/n)) without",
    )


@hookimpl
def register_plasticity_rules(register):
    register(
        "softhebb",
        lazy_factory(f"{__name__}.rules:softhebb"),
        params=SoftHebbParams,
        description="SoftHebb: Δw = Σ y·x − (Σ y·u)·w",
    )
    register(
        "oja",
        lazy_factory(f"{__name__}.rules:oja"),
        params=OjaParams,
        description="Oja: Δw = Σ y·(x − y·w)",
    )
    register(
        "hebb",
        lazy_factory(f"{__name__}.rules:hebb"),
        params=HebbParams,
        description="plain Hebb Σ y·x, norm-preserving (radial part removed)",
    )


@hookimpl
def register_competitions(register):
    register(
        "soft",
        lazy_factory(f"{__name__}.competition:soft"),
        params=SoftParams,
        description="y = softmax(β·u) over neurons",
    )
    register(
        "softkrotov",
        lazy_factory(f"{__name__}.competition:softkrotov"),
        params=WinnerParams,
        description="soft WTA; all but the winner anti-Hebbian (every SoftHebb CNN preset)",
    )
    register(
        "hard",
        lazy_factory(f"{__name__}.competition:hard"),
        params=WinnerParams,
        description="y = one-hot(argmax u)",
    )
    register(
        "hardkrotov",
        lazy_factory(f"{__name__}.competition:hardkrotov"),
        params=HardKrotovParams,
        description="one-hot(argmax) − δ·one-hot(rank-r neuron)",
    )


@hookimpl
def register_activations(register):
    register(
        "triangle",
        lazy_factory(f"{__name__}.activations:triangle"),
        params=PowerParams,
        description="ReLU(u − mean_c u)^power",
    )
    register(
        "repu",
        lazy_factory(f"{__name__}.activations:repu"),
        params=PowerParams,
        description="ReLU(u)^power",
    )
    register(
        "softmax",
        lazy_factory(f"{__name__}.activations:softmax"),
        params=SoftmaxParams,
        description="softmax(t·u) over channels",
    )


@hookimpl
def register_poolings(register):
    register(
        "max",
        lazy_factory(f"{__name__}.pooling:max_pool"),
        params=WindowParams,
        description="max pooling",
    )
    register(
        "avg",
        lazy_factory(f"{__name__}.pooling:avg_pool"),
        params=AvgParams,
        description="average pooling",
    )
    register(
        "identity",
        lazy_factory(f"{__name__}.pooling:identity"),
        params=IdentityParams,
        description="no pooling",
    )
