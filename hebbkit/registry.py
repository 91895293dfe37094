"""Component families and the name registry that plugins fill.

A component is a named factory plus a pydantic model of its parameters and the origin
(plugin, distribution, version) it came from. The registry never knows any component by
name: everything arrives through the ``register_*`` hooks (see :mod:`hebbkit.hookspecs`).

:data:`FAMILIES` is the one table of what a family is: its description, the hook that
registers it and the base class its params models must extend. ``PlasticityParams`` is
defined here (and re-exported by :mod:`hebbkit.plasticity`) because it is part of that
table, as is ``TrackerParams`` (re-exported by :mod:`hebbkit.tracking`); both need pydantic
only, which keeps this module a torch-free leaf.
"""

from __future__ import annotations

import difflib
import importlib
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticUndefined

from hebbkit.errors import HebbkitError, PluginError, UnknownComponentError


class Params(BaseModel):
    """Base of every component's parameter model: unknown keys are errors, and so are NaN and
    infinite numbers (for every plugin's fields at once)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PlasticityParams(Params):
    """Learning-rate settings of every plasticity rule (plugins subclass this)."""

    lr: float = Field(0.08, gt=0, description="η₀, the base learning rate")
    lr_power: float = Field(0.5, ge=0, description="q, exponent of the adaptive rate")
    adaptive: bool = Field(True, description="adaptive rate; else linear decay to 0")
    normalize: Literal["max", "none"] = Field(
        "max", description="divide Δw by its global max |Δw| before applying the rate"
    )


class TrackerParams(Params):
    """Settings of every experiment tracker (plugins subclass this).

    Trackers are chosen per machine (``--track NAME[:URI]`` / ``HEBBKIT_TRACK``), never in a
    recipe: ``uri`` is the part after the colon.
    """

    uri: str | None = Field(
        None, description="where to log: a tracking URI or a folder (default: the tracker's own)"
    )


@dataclass(frozen=True)
class Family:
    """What a component family is: one row of :data:`FAMILIES`."""

    name: str
    description: str
    #: the hook of :mod:`hebbkit.hookspecs` that registers components of this family
    hook: str
    #: the class every params model of the family must extend
    params_base: type[Params] = Params
    #: where a user picks a component of this family, for messages
    chosen_in: str = "the recipe"


#: Every component family, in the order listings show them.
FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            "initializer",
            "init(shape, generator) -> Tensor: initial weights of a conv or linear layer",
            "register_initializers",
        ),
        Family(
            "plasticity",
            "rule.delta(weight, batch) -> Tensor: update direction for one batch",
            "register_plasticity_rules",
            PlasticityParams,
        ),
        Family(
            "competition",
            "compete(u) -> y: winner-take-all signal over neurons, used for learning",
            "register_competitions",
        ),
        Family(
            "activation",
            "f(u) -> Tensor: output nonlinearity over the channel axis (dim 1)",
            "register_activations",
        ),
        Family(
            "pooling",
            "factory() -> torch.nn.Module: spatial pooling after the activation",
            "register_poolings",
        ),
        Family(
            "dataset",
            "source.load(root, train=..., download=...) -> ImageSet: a labelled image set",
            "register_datasets",
        ),
        Family(
            "tracker",
            "tracker.start(run), .log_metrics(metrics, step), .finish(...): an experiment "
            "tracker, chosen per machine with --track (never in a recipe)",
            "register_trackers",
            TrackerParams,
            chosen_in="--track or HEBBKIT_TRACK",
        ),
    )
}


class LazyFactory:
    """A factory named ``"module:attribute"``, imported when a component is first built.

    A plugin registers ``lazy_factory("my_plugin.initializer:orthogonal")`` to keep its hook
    module free of torch and other heavy imports: hebbkit loads every plugin to list commands
    and components, and ``hebbkit --help`` or ``hebbkit plugins`` then never import torch.
    """

    def __init__(self, target: str) -> None:
        module, _, attribute = target.partition(":")
        if not module or not attribute:
            raise PluginError(
                f"lazy_factory({target!r}): name the factory as 'package.module:function'."
            )
        self.target = target
        self._module = module
        self._attribute = attribute
        self._factory: Callable[[Any], Any] | None = None

    def resolve(self) -> Callable[[Any], Any]:
        """Import the module and return the factory (once)."""
        if self._factory is None:
            factory = getattr(importlib.import_module(self._module), self._attribute, None)
            if not callable(factory):
                raise PluginError(
                    f"lazy_factory({self.target!r}): {self._module} has no callable "
                    f"{self._attribute!r}."
                )
            self._factory = factory
        return self._factory

    def __call__(self, params: Any) -> Any:
        return self.resolve()(params)

    def __repr__(self) -> str:
        return f"lazy_factory({self.target!r})"


def lazy_factory(target: str) -> LazyFactory:
    """``factory`` for :func:`register` that imports ``"module:function"`` on first build."""
    return LazyFactory(target)


@dataclass(frozen=True)
class Origin:
    """Where a component came from."""

    plugin: str
    module: str
    distribution: str
    version: str

    def describe(self) -> str:
        return f"plugin {self.plugin!r} ({self.distribution} {self.version}, module {self.module})"


def sentence(text: str) -> str:
    """``text`` with its first letter upper-cased (``str.capitalize`` lowers the rest)."""
    return text[:1].upper() + text[1:]


def one_line(error: BaseException) -> str:
    """An error's message folded into one line."""
    return " ".join(str(error).split())


def describe_error(error: BaseException, module: str | None = None) -> str:
    """``Type: message at file:line`` in one line, pointing at the innermost frame of
    ``module``'s package if the error passed through it (else the innermost frame)."""
    top = (module or "").split(".")[0].split(":")[0]
    innermost = ours = None
    trace = error.__traceback__
    while trace is not None:
        innermost = trace
        name = str(trace.tb_frame.f_globals.get("__name__", ""))
        if top and name.split(".")[0] == top:
            ours = trace
        trace = trace.tb_next
    frame = ours or innermost
    where = f" at {frame.tb_frame.f_code.co_filename}:{frame.tb_lineno}" if frame else ""
    return f"{type(error).__name__}: {one_line(error)}{where}"


def _out_of_memory(error: BaseException) -> bool:
    # torch.OutOfMemoryError without importing torch here: not the plugin's fault
    return isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError"


class PluginCall:
    """``with PluginCall(origin, "failed to import"):`` around every call into plugin code:
    import, hooks, factories, and each call of a built component.

    An exception from the plugin, ``SystemExit`` included, becomes one
    :class:`~hebbkit.errors.PluginError` naming the plugin, its distribution and version.
    hebbkit's own errors pass unchanged (a dataset's ``DataError`` already names the file), and
    so do Ctrl-C and running out of memory, which are not the plugin's doing. Reusable and
    cheap: a layer keeps one per component and enters it for every batch.
    """

    __slots__ = ("advice", "origin", "what")

    def __init__(self, origin: Origin, what: str, advice: str | None = None) -> None:
        self.origin = origin
        self.what = what
        self.advice = advice

    def __enter__(self) -> PluginCall:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> bool:
        if (
            error is None
            or not isinstance(error, (Exception, SystemExit))
            or isinstance(error, HebbkitError)
            or _out_of_memory(error)
        ):
            return False
        raise PluginError(self.message(error)) from error

    def message(self, error: BaseException) -> str:
        advice = self.advice or (
            f"Fix the plugin, uninstall it (pip uninstall {self.origin.distribution}), or leave "
            "it out with HEBBKIT_LOAD_PLUGINS."
        )
        return (
            f"{sentence(self.origin.describe())} {self.what}: "
            f"{describe_error(error, self.origin.module)}. {advice}"
        )


@dataclass(frozen=True)
class Component:
    """A registered component: ``factory(params)`` builds it from a validated params model."""

    family: str
    name: str
    factory: Callable[[Any], Any]
    params: type[Params]
    origin: Origin
    description: str = ""

    def build(self, params: Params | None = None) -> Any:
        """Build the component; ``params`` defaults to the model's defaults. A failure of the
        factory is a :class:`~hebbkit.errors.PluginError` naming the plugin."""
        with self.call(f"failed to build the {self.family} {self.name!r}"):
            return self.factory(params if params is not None else self.params())

    def call(self, what: str) -> PluginCall:
        """The guard for a call into this component (see :class:`PluginCall`)."""
        return PluginCall(
            self.origin,
            what,
            f"Fix the plugin, choose another {self.family} in "
            f"{FAMILIES[self.family].chosen_in}, or uninstall the "
            f"plugin (pip uninstall {self.origin.distribution}).",
        )


@dataclass(eq=False)
class Registry:
    """Name -> :class:`Component`, per family."""

    _components: dict[str, dict[str, Component]] = field(
        default_factory=lambda: {family: {} for family in FAMILIES}
    )

    def add(self, component: Component) -> None:
        family = self._components.get(component.family)
        if family is None:
            raise PluginError(
                f"{component.origin.describe()} registers {component.name!r} in the unknown family "
                f"{component.family!r}; families are: {', '.join(FAMILIES)}."
            )
        existing = family.get(component.name)
        if existing is not None:
            raise PluginError(
                f"Two plugins register the {component.family} {component.name!r}: "
                f"{existing.origin.describe()} and {component.origin.describe()}. "
                "Uninstall one of them, or limit loading with HEBBKIT_LOAD_PLUGINS."
            )
        family[component.name] = component

    def get(self, family: str, name: str) -> Component:
        components = self._components[family]
        if name in components:
            return components[name]
        raise UnknownComponentError(unknown_name_message(family, name, sorted(components)))

    def names(self, family: str) -> list[str]:
        return sorted(self._components[family])

    def find(self, name: str, family: str | None = None) -> Component:
        """The component called ``name``, in ``family`` or in whichever family has one; an
        unknown or (without ``family``) ambiguous name is an error that says what exists."""
        if family is not None:
            if family not in self._components:
                raise UnknownComponentError(
                    f"Unknown family {family!r}; families are: {', '.join(FAMILIES)}."
                )
            return self.get(family, name)
        matches = [c for c in self if c.name == name]
        if len(matches) == 1:
            return matches[0]
        if matches:
            families = ", ".join(c.family for c in matches)
            raise UnknownComponentError(
                f"{name!r} names a component in several families ({families}); say which "
                "with --family."
            )
        raise UnknownComponentError(
            unknown_name_message("component", name, sorted({c.name for c in self}))
        )

    def __iter__(self) -> Iterator[Component]:
        for family in FAMILIES:
            for name in sorted(self._components[family]):
                yield self._components[family][name]

    def __len__(self) -> int:
        return sum(len(components) for components in self._components.values())


@dataclass(frozen=True)
class ParamInfo:
    """One parameter of a component, as ``hebbkit plugins show`` lists it."""

    name: str
    #: the type as a recipe writes it: ``float``, ``"a" | "b"``, ``int (optional)``
    type: str
    default: Any
    required: bool
    description: str
    #: bounds from the field (``> 0``, ``≤ 1``), comma-separated; validators are not shown
    constraints: str


_BOUNDS = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤", "multiple_of": "multiple of"}
_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "string"}


def describe_params(model: type[Params]) -> list[ParamInfo]:
    """Every field of a params model: name, type, default, description and bounds."""
    rows = []
    for name, info in model.model_fields.items():
        required = info.is_required()
        if required:
            default = None
        elif info.default_factory is not None:
            default = info.default_factory()  # type: ignore[call-arg]
        else:
            default = None if info.default is PydanticUndefined else info.default
        bounds = [
            f"{symbol} {getattr(item, attribute)}"
            for item in info.metadata
            for attribute, symbol in _BOUNDS.items()
            if getattr(item, attribute, None) is not None
        ]
        rows.append(
            ParamInfo(
                name,
                type_text(info.annotation),
                default,
                required,
                info.description or "",
                ", ".join(bounds),
            )
        )
    return rows


def type_text(annotation: Any) -> str:
    """A type annotation as a recipe author reads it."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " | ".join(f'"{a}"' if isinstance(a, str) else str(a).lower() for a in args)
    if origin in (Union, types.UnionType):
        parts = [type_text(a) for a in args if a is not type(None)]
        optional = " (optional)" if type(None) in args else ""
        return " | ".join(parts) + optional
    if origin in (list, tuple, set, frozenset):
        return f"list of {type_text(args[0])}" if args else "list"
    if origin is dict:
        return "table"
    if annotation in _TYPE_NAMES:
        return _TYPE_NAMES[annotation]
    return getattr(annotation, "__name__", str(annotation))


def unknown_name_message(family: str, name: str, available: list[str]) -> str:
    """The message for an unknown component name: what exists and the closest match."""
    message = f"Unknown {family} {name!r}."
    close = difflib.get_close_matches(name, available, n=1, cutoff=0.5)
    if close:
        message += f" Did you mean {close[0]!r}?"
    if available:
        message += f" Available: {', '.join(available)}."
    else:
        message += f" No {family} is registered: is a plugin missing?"
    return message
