"""Plugin loading: one pluggy PluginManager fed from the ``hebbkit`` entry-point group.

Our own components live in ``plugins/`` and arrive through the same entry points as a third
party's. Environment switches:

- ``HEBBKIT_LOAD_PLUGINS=a,b``: load only these third-party plugins (entry-point or
  distribution names); hebbkit's own entry points always load.
- ``HEBBKIT_DISABLE_PLUGIN_AUTOLOAD=1``: load no third-party plugin.
- ``HEBBKIT_TRACE_PLUGINS=1``: log every hook call to stderr.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys
import types
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

import pluggy

from hebbkit import hookspecs
from hebbkit.errors import PluginError
from hebbkit.registry import Component, Origin, Params, Registry

ENTRY_POINT_GROUP = "hebbkit"
OWN_DISTRIBUTION = "hebbkit"

#: Component family -> the hook that registers it.
FAMILY_HOOKS: dict[str, str] = {
    "initializer": "register_initializers",
    "plasticity": "register_plasticity_rules",
    "competition": "register_competitions",
    "activation": "register_activations",
    "pooling": "register_poolings",
    "dataset": "register_datasets",
}

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")


def _env_list(name: str) -> list[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def _is_truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _selected_entry_points() -> list[importlib.metadata.EntryPoint]:
    allow = _env_list("HEBBKIT_LOAD_PLUGINS")
    no_autoload = _is_truthy("HEBBKIT_DISABLE_PLUGIN_AUTOLOAD")
    selected = []
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        distribution = entry_point.dist.name if entry_point.dist else ""
        if distribution != OWN_DISTRIBUTION:
            if no_autoload:
                continue
            if allow is not None and not {entry_point.name, distribution} & set(allow):
                continue
        selected.append(entry_point)
    return selected


def _load_entry_point(pm: pluggy.PluginManager, entry_point: importlib.metadata.EntryPoint) -> None:
    distribution = entry_point.dist.name if entry_point.dist else "unknown distribution"
    if pm.get_plugin(entry_point.name) is not None:
        return
    try:
        plugin = entry_point.load()
    except Exception as error:  # a broken plugin must not take the CLI down with a traceback
        raise PluginError(
            f"The plugin {entry_point.name!r} from distribution {distribution!r} failed to import "
            f"({entry_point.value}): {type(error).__name__}: {error}. Fix or uninstall it "
            f"(pip uninstall {distribution}), or load only the plugins you need with "
            "HEBBKIT_LOAD_PLUGINS=name1,name2."
        ) from error
    try:
        pm.register(plugin, name=entry_point.name)
    except ValueError as error:
        raise PluginError(
            f"The plugin {entry_point.name!r} from distribution {distribution!r} could not be "
            f"registered: {error}."
        ) from error
    pm._hebbkit_dists[entry_point.name] = (
        distribution,
        entry_point.dist.version if entry_point.dist else "",
    )  # type: ignore[attr-defined]


def make_plugin_manager(
    plugins: Iterable[Any] = (), *, load_entrypoints: bool = True
) -> pluggy.PluginManager:
    """A plugin manager with hebbkit's hooks, entry-point plugins and ``plugins`` registered."""
    pm = pluggy.PluginManager("hebbkit")
    pm.add_hookspecs(hookspecs)
    pm._hebbkit_dists = {}  # type: ignore[attr-defined]
    if _is_truthy("HEBBKIT_TRACE_PLUGINS"):
        pm.trace.root.setwriter(lambda message: sys.stderr.write(f"[hebbkit plugins] {message}"))
        pm.enable_tracing()
    if load_entrypoints:
        for entry_point in _selected_entry_points():
            _load_entry_point(pm, entry_point)
    for plugin in plugins:
        pm.register(plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as error:
        name = error.plugin if isinstance(error.plugin, str) else pm.get_name(error.plugin)
        raise PluginError(
            f"The plugin {name!r} ({_origin_of(pm, error.plugin).distribution}) implements a hook "
            f"that hebbkit does not define: {error}. Hooks are: "
            f"{', '.join([*sorted(FAMILY_HOOKS.values()), 'register_commands'])}."
        ) from error
    return pm


def _origin_of(pm: pluggy.PluginManager, plugin: Any) -> Origin:
    name = pm.get_name(plugin) or repr(plugin)
    module = plugin.__name__ if isinstance(plugin, types.ModuleType) else type(plugin).__module__
    known = pm._hebbkit_dists.get(name)  # type: ignore[attr-defined]
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


def _registrar(registry: Registry, family: str, origin: Origin) -> Callable[..., None]:
    def register(
        name: str,
        factory: Callable[[Any], Any],
        params: type[Params] | None = None,
        description: str = "",
    ) -> None:
        where = f"{origin.describe()} registering {family} {name!r}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise PluginError(
                f"{where}: the name must be lower-case letters, digits, '_', '-' or '.'."
            )
        if not callable(factory):
            raise PluginError(f"{where}: the factory {factory!r} is not callable.")
        if not (isinstance(params, type) and issubclass(params, Params)):
            raise PluginError(
                f"{where}: params= must be a subclass of hebbkit.registry.Params describing its "
                f"parameters (got {params!r})."
            )
        required = _required_params_base(family)
        if required is not None and not issubclass(params, required):
            raise PluginError(
                f"{where}: its params model must subclass {required.__module__}."
                f"{required.__qualname__}."
            )
        registry.add(Component(family, name, factory, params, origin, description.strip()))

    return register


def _required_params_base(family: str) -> type[Params] | None:
    if family == "plasticity":
        from hebbkit.plasticity import PlasticityParams

        return PlasticityParams
    return None


def build_registry(pm: pluggy.PluginManager) -> Registry:
    """Call every plugin's ``register_*`` hooks, each with a ``register`` bound to its origin."""
    registry = Registry()
    plugins = pm.get_plugins()
    for plugin in sorted(plugins, key=lambda p: pm.get_name(p) or ""):
        origin = _origin_of(pm, plugin)
        others = [other for other in plugins if other is not plugin]
        for family, hook_name in FAMILY_HOOKS.items():
            caller = pm.subset_hook_caller(hook_name, remove_plugins=others)
            try:
                caller(register=_registrar(registry, family, origin))
            except PluginError:
                raise
            except Exception as error:
                raise PluginError(
                    f"{origin.describe()} raised in {hook_name}: {type(error).__name__}: {error}."
                ) from error
    return registry


@lru_cache(maxsize=1)
def get_plugin_manager() -> pluggy.PluginManager:
    return make_plugin_manager()


@lru_cache(maxsize=1)
def get_registry() -> Registry:
    """The process-wide registry, built once from the installed plugins."""
    return build_registry(get_plugin_manager())


def reset() -> None:
    """Forget the cached plugin manager and registry (after installing plugins, in tests)."""
    get_registry.cache_clear()
    get_plugin_manager.cache_clear()
    from hebbkit import recipe

    recipe.recipe_model.cache_clear()
