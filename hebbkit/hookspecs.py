"""The plugin author's contract: one ``register_*`` hook per component family.

Each hook receives a ``register`` callable::

    register(name, factory, params=ParamsModel, description="...")

``factory(params)`` receives a validated instance of ``params`` (a subclass of
:class:`hebbkit.registry.Params`) and returns the component. What a component of each family
must be is described in CONTRIBUTING.md and checked by the contract tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    import typer

    from hebbkit.registry import Params

hookspec = pluggy.HookspecMarker("hebbkit")
hookimpl = pluggy.HookimplMarker("hebbkit")


class Register(Protocol):
    """The ``register`` callable every ``register_*`` hook receives."""

    def __call__(
        self,
        name: str,
        factory: Callable[[Any], Any],
        params: type[Params] | None = None,
        description: str = "",
    ) -> None: ...


@hookspec
def register_initializers(register: Register) -> None:
    """Register weight initialisers: ``init(shape, generator) -> Tensor``.

    ``shape`` is ``(c_out, c_in, k, k)`` for a conv weight or ``(out, in)`` for a linear one;
    ``generator`` is a seeded CPU :class:`torch.Generator`. Return float32 on the CPU.
    """


@hookspec
def register_plasticity_rules(register: Register) -> None:
    """Register plasticity rules: objects with ``delta(weight, batch) -> Tensor``.

    ``weight`` is ``(c_out, n)`` with n = c_in·k·k; ``batch`` is a
    :class:`hebbkit.plasticity.HebbianBatch` holding ``u`` and ``y`` ``(N, c_out)``,
    ``batch.correlate(s)`` = Σ s·x as ``(c_out, n)`` and, on demand, ``batch.patches``
    ``(N, n)``, their columns in one order (the patch order ``(kh, kw, c_in)``). Return the
    update direction, shaped like ``weight``. The params model must subclass
    :class:`hebbkit.plasticity.PlasticityParams` (rate settings the layer applies).
    """


@hookspec
def register_competitions(register: Register) -> None:
    """Register competition modes: ``compete(u) -> y`` on ``(N, c_out)`` pre-activations."""


@hookspec
def register_activations(register: Register) -> None:
    """Register output activations: ``f(u) -> Tensor`` on ``(B, C, H, W)``, channel axis 1;
    optionally ``f.in_place(u)``, the same values written over ``u``."""


@hookspec
def register_poolings(register: Register) -> None:
    """Register poolings: ``factory(params)`` returns a :class:`torch.nn.Module`."""


@hookspec
def register_datasets(register: Register) -> None:
    """Register datasets: objects with ``load(root, train, download) -> ImageSet``
    (see :mod:`hebbkit.data`)."""


@hookspec
def register_trackers(register: Register) -> None:
    """Register experiment trackers: ``factory(params)`` returns an object with
    ``start(run)``, ``log_metrics(metrics, step)`` and ``finish(status, summary)`` (see
    :mod:`hebbkit.tracking`). The params model must subclass
    :class:`hebbkit.tracking.TrackerParams` (its ``uri`` is what ``--track NAME:URI`` gives).
    Trackers are chosen per machine, never in a recipe; a tracker that raises is switched off
    for the rest of the run with a warning, and the run goes on.
    """


@hookspec
def register_commands(cli: typer.Typer) -> None:
    """Add sub-commands to the ``hebbkit`` typer application ``cli``."""
