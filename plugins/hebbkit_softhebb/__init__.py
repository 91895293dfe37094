"""SoftHebb's components: random init, plasticity rules, competition, activations, poolings.

Registered through hebbkit's hooks exactly as a third-party plugin would be.
"""

from __future__ import annotations

from hebbkit.hookspecs import hookimpl

from . import activations, competition, initializers, pooling, rules


@hookimpl
def register_initializers(register):
    register(
        "random",
        initializers.random_init,
        params=initializers.RandomParams,
        description="SoftHebb's default: N(0, (R/√n)²) with input BN, U[0, √(3R²/n)) without",
    )


@hookimpl
def register_plasticity_rules(register):
    register(
        "softhebb",
        rules.softhebb,
        params=rules.SoftHebbParams,
        description="SoftHebb: Δw = Σ y·x − (Σ y·u)·w",
    )
    register("oja", rules.oja, params=rules.OjaParams, description="Oja: Δw = Σ y·(x − y·w)")
    register(
        "hebb",
        rules.hebb,
        params=rules.HebbParams,
        description="plain Hebb Σ y·x, norm-preserving (radial part removed)",
    )


@hookimpl
def register_competitions(register):
    register(
        "soft",
        competition.soft,
        params=competition.SoftParams,
        description="y = softmax(β·u) over neurons",
    )
    register(
        "softkrotov",
        competition.softkrotov,
        params=competition.WinnerParams,
        description="soft WTA; all but the winner anti-Hebbian (every SoftHebb CNN preset)",
    )
    register(
        "hard",
        competition.hard,
        params=competition.WinnerParams,
        description="y = one-hot(argmax u)",
    )
    register(
        "hardkrotov",
        competition.hardkrotov,
        params=competition.HardKrotovParams,
        description="one-hot(argmax) − δ·one-hot(rank-r neuron)",
    )


@hookimpl
def register_activations(register):
    register(
        "triangle",
        activations.triangle,
        params=activations.PowerParams,
        description="ReLU(u − mean_c u)^power",
    )
    register("repu", activations.repu, params=activations.PowerParams, description="ReLU(u)^power")
    register(
        "softmax",
        activations.softmax,
        params=activations.SoftmaxParams,
        description="softmax(t·u) over channels",
    )


@hookimpl
def register_poolings(register):
    register("max", pooling.max_pool, params=pooling.WindowParams, description="max pooling")
    register("avg", pooling.avg_pool, params=pooling.AvgParams, description="average pooling")
    register("identity", pooling.identity, params=pooling.IdentityParams, description="no pooling")
