"""Plugin loading: one pluggy PluginManager fed from the ``hebbkit`` entry-point group.

Our own components live in ``plugins/`` and arrive through the same entry points as a third
party's. Environment switches:

- ``HEBBKIT_LOAD_PLUGINS=a,b``: load only these third-party plugins (entry-point or
  distribution names); hebbkit's own entry points always load.
- ``HEBBKIT_DISABLE_PLUGIN_AUTOLOAD=1``: load no third-party plugin.
- ``HEBBKIT_TRACE_PLUGINS=1``: log to stderr which entry points load or are skipped, every
  hook call with the plugins it reaches, and every component registered.

Every failure of a plugin (import error, bad hook signature, unknown hook, bad or clashing
component) is a :class:`~hebbkit.errors.PluginError` naming the plugin and its distribution,
which the CLI prints as one paragraph with exit code 2.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import os
import re
import sys
import types
import warnings
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

import pluggy

from hebbkit import hookspecs
from hebbkit.environment import env_flag
from hebbkit.errors import HebbkitNotice, PluginError, SettingError
from hebbkit.registry import (
    FAMILIES,
    Component,
    Origin,
    Params,
    PluginCall,
    Registry,
    one_line,
    sentence,
)

ENTRY_POINT_GROUP = "hebbkit"
OWN_DISTRIBUTION = "hebbkit"

#: Component family -> the hook that registers it (a view of :data:`FAMILIES`).
FAMILY_HOOKS: dict[str, str] = {name: family.hook for name, family in FAMILIES.items()}

#: The arguments ``register`` accepts, for the message when a plugin passes others.
REGISTER_ARGUMENTS = "register(name, factory, params=ParamsModel, description='...')"

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
#: what an entry-point or distribution name may look like (PEP 508 names, entry-point names)
_PLUGIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_TRACE_PREFIX = "[hebbkit plugins]"

Tracer = Callable[[str], None]


class HebbkitPluginManager(pluggy.PluginManager):
    """pluggy's manager with what hebbkit needs to know about each loaded plugin."""

    def __init__(self, trace: Tracer | None = None) -> None:
        super().__init__("hebbkit")
        self.add_hookspecs(hookspecs)
        #: entry-point name -> (distribution, version) of the plugins loaded from entry points
        self.distributions: dict[str, tuple[str, str]] = {}
        #: where loading, hook calls and registrations are logged (None: nowhere)
        self.tracer: Tracer | None = trace


def hook_names() -> list[str]:
    """Every hook specification in :mod:`hebbkit.hookspecs`, in declaration order."""
    return [
        name
        for name, value in vars(hookspecs).items()
        if callable(value) and hasattr(value, "hebbkit_spec")
    ]


def _allow_list() -> list[str] | None:
    """``HEBBKIT_LOAD_PLUGINS`` as names; None when unset. A name that cannot be an
    entry-point or distribution name is refused, naming the variable."""
    value = os.environ.get("HEBBKIT_LOAD_PLUGINS")
    if value is None:
        return None
    names = [item.strip() for item in value.split(",") if item.strip()]
    bad = [name for name in names if not _PLUGIN_NAME.match(name)]
    if bad:
        raise SettingError(
            f"HEBBKIT_LOAD_PLUGINS={value!r}: {', '.join(repr(b) for b in bad[:5])} cannot be a "
            "plugin name. Give entry-point or distribution names separated by commas, e.g. "
            "HEBBKIT_LOAD_PLUGINS=sparse_binary,hebbkit-other (hebbkit plugins lists them)."
        )
    return names


def _stderr_tracer(message: str) -> None:
    sys.stderr.write(f"{_TRACE_PREFIX} {message}\n")
    sys.stderr.flush()


def _dist_of(entry_point: importlib.metadata.EntryPoint) -> tuple[str, str]:
    dist = entry_point.dist
    if dist is None:
        return "unknown distribution", ""
    return dist.name, dist.version


def _selected_entry_points(trace: Tracer | None = None) -> list[importlib.metadata.EntryPoint]:
    allow = _allow_list()
    no_autoload = env_flag("HEBBKIT_DISABLE_PLUGIN_AUTOLOAD")
    selected = []
    available: set[str] = set()
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        distribution, version = _dist_of(entry_point)
        available |= {entry_point.name, distribution}
        where = f"entry point {entry_point.name!r} ({distribution} {version})"
        if distribution != OWN_DISTRIBUTION:
            if no_autoload:
                if trace:
                    trace(f"skip {where}: HEBBKIT_DISABLE_PLUGIN_AUTOLOAD is set")
                continue
            if allow is not None and not {entry_point.name, distribution} & set(allow):
                if trace:
                    trace(f"skip {where}: not in HEBBKIT_LOAD_PLUGINS")
                continue
        selected.append(entry_point)
    missing = sorted(set(allow or []) - available)
    if missing and not no_autoload:
        warnings.warn(
            f"HEBBKIT_LOAD_PLUGINS names {', '.join(repr(m) for m in missing)}, which no "
            "installed distribution provides (hebbkit plugins lists what is installed).",
            HebbkitNotice,
            stacklevel=2,
        )
    return selected


def _load_entry_point(pm: HebbkitPluginManager, entry_point: importlib.metadata.EntryPoint) -> None:
    distribution, version = _dist_of(entry_point)
    if pm.get_plugin(entry_point.name) is not None:
        other, _ = pm.distributions.get(entry_point.name, ("unknown distribution", ""))
        if other == distribution:
            return  # the same distribution seen twice on sys.path
        raise PluginError(
            f"Two distributions declare the hebbkit plugin {entry_point.name!r}: {other!r} and "
            f"{distribution!r}. Entry-point names in the group 'hebbkit' must be unique: rename "
            f"the one in {distribution!r} (its [project.entry-points.hebbkit] table), uninstall "
            "one of them, or load only one with HEBBKIT_LOAD_PLUGINS."
        )
    trace = pm.tracer
    if trace:
        trace(
            f"load entry point {entry_point.name!r} = {entry_point.value} "
            f"({distribution} {version})"
        )
    origin = Origin(entry_point.name, entry_point.value, distribution, version)
    advice = (
        f"Fix or uninstall it (pip uninstall {distribution}), or load only the plugins you need "
        "with HEBBKIT_LOAD_PLUGINS=name1,name2."
    )
    # a broken plugin, even one calling sys.exit(), must not end hebbkit without a word
    with PluginCall(origin, f"failed to import ({entry_point.value})", advice):
        plugin = entry_point.load()
    pm.distributions[entry_point.name] = (distribution, version)
    _register(pm, plugin, entry_point.name, f"from distribution {distribution!r}")


def _register(pm: pluggy.PluginManager, plugin: Any, name: str | None, where: str) -> None:
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as error:
        label = name or pm.get_canonical_name(plugin)
        raise PluginError(
            f"The plugin {label!r} {where} has a hook implementation that does not match "
            f"hebbkit's specification: {one_line(error)}. A hook implementation may take only the "
            "arguments its specification names (register_commands takes cli, every other hook "
            "takes register); see the hook specifications in CONTRIBUTING.md."
        ) from error
    except ValueError as error:
        label = name or pm.get_canonical_name(plugin)
        raise PluginError(
            f"The plugin {label!r} {where} could not be registered: {one_line(error)}. Each "
            "plugin object (usually a module) may be registered once, under a unique name."
        ) from error


def make_plugin_manager(
    plugins: Iterable[Any] = (), *, load_entrypoints: bool = True, trace: bool | None = None
) -> HebbkitPluginManager:
    """A plugin manager with hebbkit's hooks, entry-point plugins and ``plugins`` registered.

    ``trace`` logs loading, hook calls and registrations to stderr; it defaults to
    ``HEBBKIT_TRACE_PLUGINS``.
    """
    enabled = env_flag("HEBBKIT_TRACE_PLUGINS") if trace is None else trace
    tracer = _stderr_tracer if enabled else None
    pm = HebbkitPluginManager(tracer)
    if tracer is not None:
        _monitor_hook_calls(pm, tracer)
    if load_entrypoints:
        for entry_point in _selected_entry_points(tracer):
            _load_entry_point(pm, entry_point)
    for plugin in plugins:
        _register(pm, plugin, None, "(registered directly)")
    _check_unknown_hooks(pm)
    return pm


def _monitor_hook_calls(pm: pluggy.PluginManager, trace: Tracer) -> None:
    def before(hook_name: str, hook_impls: list[Any], kwargs: dict[str, Any]) -> None:
        if hook_impls:  # registry building calls each plugin's hooks alone; skip the misses
            names = ", ".join(pm.get_name(impl.plugin) or "?" for impl in hook_impls)
            trace(f"call {hook_name} -> {names}")

    def after(outcome: Any, hook_name: str, hook_impls: list[Any], kwargs: dict[str, Any]) -> None:
        if outcome.exception is not None:
            trace(f"  {hook_name} raised {type(outcome.exception).__name__}")

    pm.add_hookcall_monitoring(before, after)


def _check_unknown_hooks(pm: pluggy.PluginManager) -> None:
    """pluggy's ``check_pending``, with a message that names the plugin and the fix."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as error:
        plugin = error.plugin
        origin = _origin_of(pm, plugin)
        known = hook_names()
        unknown = [
            name
            for name, caller in vars(pm.hook).items()
            if not name.startswith("_")
            and not caller.has_spec()
            and any(impl.plugin is plugin for impl in caller.get_hookimpls())
        ]
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise PluginError(
            f"{sentence(origin.describe())} implements {', '.join(hints) or 'a hook'}, which "
            f"is not a hebbkit hook. Rename the function to one of: {', '.join(known)}; or mark "
            "it @hookimpl(optionalhook=True) if it targets a newer hebbkit."
        ) from error


def _origin_of(pm: pluggy.PluginManager, plugin: Any) -> Origin:
    name = pm.get_name(plugin) or repr(plugin)
    module = plugin.__name__ if isinstance(plugin, types.ModuleType) else type(plugin).__module__
    known = pm.distributions.get(name) if isinstance(pm, HebbkitPluginManager) else None
    if known is not None:
        distribution, version = known
    else:
        top = module.split(".")[0]
        distributions = importlib.metadata.packages_distributions().get(top, [])
        distribution = distributions[0] if distributions else "not installed"
        try:
            version = importlib.metadata.version(distribution) if distributions else ""
        except importlib.metadata.PackageNotFoundError:
            version = ""
    return Origin(plugin=name, module=module, distribution=distribution, version=version)


def _registrar(
    registry: Registry, family: str, origin: Origin, trace: Tracer | None = None
) -> Callable[..., None]:
    hook_name = FAMILY_HOOKS[family]

    def register(
        name: str,
        factory: Callable[[Any], Any],
        params: type[Params] | None = None,
        description: str = "",
        **unexpected: Any,
    ) -> None:
        where = f"{sentence(origin.describe())} registering the {family} {name!r}"
        if unexpected:
            raise PluginError(
                f"{where} in {hook_name} passes the unknown argument(s) "
                f"{', '.join(sorted(unexpected))}. The call is {REGISTER_ARGUMENTS}; the family "
                "is set by the hook, so register each family from its own register_* hook."
            )
        if not isinstance(name, str) or not _NAME.match(name):
            raise PluginError(
                f"{where}: the name must be a string of lower-case letters, digits, '_', '-' or "
                "'.', starting with a letter or digit."
            )
        if not callable(factory):
            raise PluginError(
                f"{where}: the factory {factory!r} is not callable. Pass a function (or class) "
                "that takes the validated params model and returns the component."
            )
        if not (isinstance(params, type) and issubclass(params, Params)):
            raise PluginError(
                f"{where}: params= must be a subclass of hebbkit.registry.Params describing its "
                f"parameters (got {params!r}); declare one even if it has no fields."
            )
        if not isinstance(description, str):
            raise PluginError(f"{where}: description= must be a string.")
        required = FAMILIES[family].params_base
        if not issubclass(params, required):
            raise PluginError(
                f"{where}: its params model {params.__qualname__} must subclass "
                f"{_public_name(required)}, which carries the settings every {family} "
                "component shares."
            )
        misplaced = _family_of_params(params)
        if misplaced is not None and misplaced != family:
            raise PluginError(
                f"{where} from {hook_name}, but its params model {params.__qualname__} is a "
                f"{misplaced} model. Register it from {FAMILY_HOOKS[misplaced]} instead."
            )
        registry.add(Component(family, name, factory, params, origin, description.strip()))
        if trace:
            trace(f"  {origin.plugin} registered {family} {name!r}")

    return register


def _public_name(model: type[Params]) -> str:
    """Where a plugin author imports ``model`` from (hebbkit.plasticity.PlasticityParams)."""
    homes = {"PlasticityParams": "hebbkit.plasticity", "TrackerParams": "hebbkit.tracking"}
    home = homes.get(model.__qualname__, model.__module__)
    return f"{home}.{model.__qualname__}"


def _family_of_params(params: type[Params]) -> str | None:
    """The family a params model belongs to by its base class, where that is unambiguous."""
    for name, family in FAMILIES.items():
        if family.params_base is not Params and issubclass(params, family.params_base):
            return name
    return None


def build_registry(pm: pluggy.PluginManager) -> Registry:
    """Call every plugin's ``register_*`` hooks, each with a ``register`` bound to its origin."""
    registry = Registry()
    trace = pm.tracer if isinstance(pm, HebbkitPluginManager) else None
    plugins = pm.get_plugins()
    for plugin in sorted(plugins, key=lambda p: pm.get_name(p) or ""):
        origin = _origin_of(pm, plugin)
        others = [other for other in plugins if other is not plugin]
        for family, hook_name in FAMILY_HOOKS.items():
            caller = pm.subset_hook_caller(hook_name, remove_plugins=others)
            with PluginCall(origin, f"raised in {hook_name}"):
                caller(register=_registrar(registry, family, origin, trace))
    return registry


def add_commands(pm: pluggy.PluginManager, cli: Any) -> None:
    """Call every plugin's ``register_commands(cli)``; a failure names the plugin."""
    plugins = pm.get_plugins()
    for plugin in sorted(plugins, key=lambda p: pm.get_name(p) or ""):
        others = [other for other in plugins if other is not plugin]
        caller = pm.subset_hook_caller("register_commands", remove_plugins=others)
        with PluginCall(_origin_of(pm, plugin), "raised in register_commands"):
            caller(cli=cli)


@lru_cache(maxsize=1)
def get_plugin_manager() -> HebbkitPluginManager:
    return make_plugin_manager()


@lru_cache(maxsize=1)
def get_registry() -> Registry:
    """The process-wide registry, built once from the installed plugins."""
    return build_registry(get_plugin_manager())


def reset() -> None:
    """Forget the cached plugin manager and registry (after installing plugins, in tests)."""
    get_registry.cache_clear()
    get_plugin_manager.cache_clear()


__all__ = [
    "ENTRY_POINT_GROUP",
    "FAMILIES",
    "FAMILY_HOOKS",
    "HebbkitPluginManager",
    "add_commands",
    "build_registry",
    "get_plugin_manager",
    "get_registry",
    "hook_names",
    "make_plugin_manager",
    "reset",
]
