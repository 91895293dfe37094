"""Plugin loading: each hook end to end, bad plugins of every kind, the env switches, tracing,
and the CLI's exit code 2 without traceback."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import typer
from pydantic import BaseModel
from torch import nn
from typer.testing import CliRunner

from hebbkit import plugins
from hebbkit.cli.app import app
from hebbkit.contract import check_component
from hebbkit.errors import DataError, HebbkitNotice, PluginError
from hebbkit.hookspecs import hookimpl
from hebbkit.plasticity import PlasticityParams
from hebbkit.plugins import add_commands, build_registry, make_plugin_manager
from hebbkit.registry import Params, Registry
from hebbkit.tracking import TrackedRun, TrackerParams
from tests.plugin_helpers import (
    DATA_ROOT,
    GOOD_PLUGIN,
    PLUGIN_ENV,
    REPO,
    clean_env,
    hebbkit_command,
    run,
    unique,
    write_dist,
)

runner = CliRunner()


@pytest.fixture(autouse=True)
def fresh_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No plugin switch set, and no cached plugin manager leaking into or out of a test."""
    for name in PLUGIN_ENV:
        monkeypatch.delenv(name, raising=False)
    plugins.reset()
    yield
    plugins.reset()


def registry_of(*objects: Any) -> Registry:
    return build_registry(make_plugin_manager(plugins=objects, load_entrypoints=False))


class NoParams(Params):
    pass


class RuleParams(PlasticityParams):
    pass


# --- every hook, end to end ---------------------------------------------------------------
# One test per hook specification (tests/test_plugin_meta.py checks that each has one): a
# plugin implements it, the component lands in the registry and meets the contract.


def _only(registry: Registry, family: str, name: str):
    component = registry.get(family, name)
    assert registry.names(family) == [name]
    assert component.origin.plugin == "test-plugin"
    return component


def _registered(plugin: object, family: str, name: str):
    manager = make_plugin_manager(load_entrypoints=False)
    manager.register(plugin, name="test-plugin")
    component = _only(build_registry(manager), family, name)
    check_component(component)
    return component


def test_hook_register_initializers() -> None:
    class Plugin:
        @hookimpl
        def register_initializers(self, register):
            register("halves", lambda p: lambda shape, g: torch.full(shape, 0.5), params=NoParams)

    _registered(Plugin(), "initializer", "halves")


def test_hook_register_plasticity_rules() -> None:
    class Rule:
        def __init__(self, params: RuleParams) -> None:
            self.params = params

        def delta(self, weight, batch):
            return batch.correlate() - weight

    class Plugin:
        @hookimpl
        def register_plasticity_rules(self, register):
            register("decaying-hebb", Rule, params=RuleParams)

    _registered(Plugin(), "plasticity", "decaying-hebb")


def test_hook_register_competitions() -> None:
    class Plugin:
        @hookimpl
        def register_competitions(self, register):
            register("plain-soft", lambda p: lambda u: torch.softmax(u, dim=1), params=NoParams)

    _registered(Plugin(), "competition", "plain-soft")


def test_hook_register_activations() -> None:
    class Plugin:
        @hookimpl
        def register_activations(self, register):
            register("relu", lambda p: torch.relu, params=NoParams, description=" relu ")

    assert _registered(Plugin(), "activation", "relu").description == "relu"


def test_hook_register_poolings() -> None:
    class Plugin:
        @hookimpl
        def register_poolings(self, register):
            register("avg3", lambda p: nn.AvgPool2d(3), params=NoParams)

    _registered(Plugin(), "pooling", "avg3")


def test_hook_register_datasets() -> None:
    class Source:  # a file-based dataset whose files are never there
        def load(self, root, *, train, download):
            raise DataError(f"no files in {root}")

    class Plugin:
        @hookimpl
        def register_datasets(self, register):
            register("nothing", lambda p: Source(), params=NoParams)

    _registered(Plugin(), "dataset", "nothing")


class JsonLinesTracker:
    """A third party's tracker: every call as a JSON line in its own folder of the run."""

    def __init__(self, params: TrackerParams) -> None:
        self.path: Path | None = None

    def _write(self, **entry: Any) -> None:
        assert self.path is not None
        with self.path.open("a") as file:
            file.write(json.dumps(entry, default=str) + "\n")

    def start(self, run: TrackedRun) -> None:
        run.files.mkdir(parents=True, exist_ok=True)
        self.path = run.files / "calls.jsonl"
        self._write(call="start", name=run.name, params=run.params)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self._write(call="log_metrics", metrics=metrics, step=step)

    def finish(self, status: str, summary: Any) -> None:
        self._write(call="finish", status=status)


def test_hook_register_trackers(tmp_path: Path) -> None:
    class Plugin:
        @hookimpl
        def register_trackers(self, register):
            register("jsonl", JsonLinesTracker, params=TrackerParams, description="JSON lines")

    component = _registered(Plugin(), "tracker", "jsonl")
    tracker = component.build()
    files = tmp_path / "trackers" / "jsonl"
    run_info = TrackedRun("exp", "run", tmp_path, tmp_path, files, {"seed": 0})
    tracker.start(run_info)
    tracker.log_metrics({"readout/test_accuracy": 0.5}, 3)
    tracker.finish("finished", {})
    calls = [json.loads(line) for line in (files / "calls.jsonl").read_text().splitlines()]
    assert [c["call"] for c in calls] == ["start", "log_metrics", "finish"]
    assert calls[1] == {"call": "log_metrics", "metrics": {"readout/test_accuracy": 0.5}, "step": 3}


def test_tracker_params_must_extend_tracker_params() -> None:
    message = _error(_plugin("register_trackers", "t", JsonLinesTracker, params=NoParams))
    assert "must subclass hebbkit.tracking.TrackerParams" in message


def test_hook_register_commands() -> None:
    class Plugin:
        @hookimpl
        def register_commands(self, cli):
            @cli.command()
            def hello(name: str = "world") -> None:
                """Say hello."""
                typer.echo(f"hello {name}")

    cli = typer.Typer()

    @cli.command()
    def other() -> None:  # a second command, so typer keeps sub-command names
        pass

    add_commands(make_plugin_manager(plugins=[Plugin()], load_entrypoints=False), cli)
    result = runner.invoke(cli, ["hello", "--name", "plugin"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "hello plugin"


# --- bad plugins --------------------------------------------------------------------------


def _plugin(family_hook: str, *args: Any, **kwargs: Any) -> object:
    """A plugin whose ``family_hook`` calls ``register(*args, **kwargs)``."""

    def hook(register):
        register(*args, **kwargs)

    return type("BadPlugin", (), {family_hook: staticmethod(hookimpl(hook))})()


def _error(*objects: Any) -> str:
    with pytest.raises(PluginError) as info:
        registry_of(*objects)
    message = str(info.value)
    assert "\n" not in message  # one paragraph
    return message


def test_factory_that_is_not_callable() -> None:
    message = _error(_plugin("register_initializers", "broken", 42, params=NoParams))
    assert "registering the initializer 'broken'" in message
    assert "factory 42 is not callable" in message
    assert "test_plugins" in message  # the module the plugin came from


@pytest.mark.parametrize("params", [None, dict, BaseModel])
def test_component_without_a_params_model(params: Any) -> None:
    message = _error(_plugin("register_activations", "act", lambda p: torch.relu, params=params))
    assert "params= must be a subclass of hebbkit.registry.Params" in message
    assert "even if it has no fields" in message


def test_plasticity_params_must_carry_the_rate_settings() -> None:
    message = _error(_plugin("register_plasticity_rules", "rule", object, params=NoParams))
    assert "must subclass hebbkit.plasticity.PlasticityParams" in message


def test_component_registered_in_the_wrong_family() -> None:
    message = _error(_plugin("register_initializers", "rule", object, params=RuleParams))
    assert "from register_initializers" in message
    assert "Register it from register_plasticity_rules" in message


def test_register_with_a_family_argument() -> None:
    bad = _plugin("register_initializers", "x", object, params=NoParams, family="plasticity")
    message = _error(bad)
    assert "unknown argument(s) family" in message
    assert "register(name, factory, params=ParamsModel" in message


@pytest.mark.parametrize("name", ["My Init", "", "-x", 3])
def test_component_names_are_checked(name: Any) -> None:
    message = _error(_plugin("register_poolings", name, object, params=NoParams))
    assert "lower-case letters" in message


def test_two_plugins_registering_one_name() -> None:
    first = _plugin("register_poolings", "twice", object, params=NoParams)
    second = _plugin("register_poolings", "twice", object, params=NoParams)
    message = _error(first, second)
    assert message.startswith("Two plugins register the pooling 'twice'")
    assert message.count("plugin '") == 2
    assert "HEBBKIT_LOAD_PLUGINS" in message


def test_unknown_hook_names_the_plugin_and_the_close_match() -> None:
    class Typo:
        @hookimpl
        def register_initialisers(self, register):
            pass

    message = _error(Typo())
    assert "implements 'register_initialisers'" in message
    assert "did you mean 'register_initializers'" in message
    assert "optionalhook=True" in message


def test_optional_unknown_hook_is_allowed() -> None:
    class Future:
        @hookimpl(optionalhook=True)
        def register_tokenizers(self, register):
            pass

    assert len(registry_of(Future())) == 0


def test_hook_with_the_wrong_argument() -> None:
    class WrongArgument:
        @hookimpl
        def register_initializers(self, registry):
            pass

    message = _error(WrongArgument())
    assert "does not match hebbkit's specification" in message
    assert "registry" in message


def test_hook_that_raises() -> None:
    class Raises:
        @hookimpl
        def register_competitions(self, register):
            raise RuntimeError("no GPU found")

    message = _error(Raises())
    assert "raised in register_competitions: RuntimeError: no GPU found at " in message
    assert "test_plugins.py:" in message


def test_register_commands_that_raises() -> None:
    class Raises:
        @hookimpl
        def register_commands(self, cli):
            raise ValueError("boom")

    with pytest.raises(PluginError, match="raised in register_commands: ValueError: boom"):
        add_commands(make_plugin_manager(plugins=[Raises()], load_entrypoints=False), None)


# --- entry points: installed distributions ------------------------------------------------


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path to "install" fake distributions into."""
    folder = tmp_path / "site-packages"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    importlib.invalidate_caches()
    return folder


def good_dist(site: Path, distribution: str = "hebbkit-good", entry: str = "good") -> str:
    """Install a working plugin; returns the initializer name it registers."""
    module = unique("good_plugin")
    name = module.replace("_", "-")
    write_dist(site, distribution, {entry: module}, {module: GOOD_PLUGIN.format(name=name)})
    return name


def broken_dist(site: Path) -> str:
    module = unique("broken_plugin")
    source = "import torch\nraise ImportError('needs torch_geometric')\n"
    write_dist(site, "hebbkit-broken", {"broken": module}, {module: source}, version="0.9")
    return module


def test_entry_point_plugin_is_loaded_with_its_distribution(site: Path) -> None:
    name = good_dist(site)
    registry = plugins.get_registry()
    origin = registry.get("initializer", name).origin
    assert (origin.plugin, origin.distribution, origin.version) == ("good", "hebbkit-good", "1.2.3")
    assert "random" in registry.names("initializer")  # hebbkit's own still load


def test_plugin_that_fails_to_import(site: Path) -> None:
    module = broken_dist(site)
    with pytest.raises(PluginError) as info:
        plugins.get_plugin_manager()
    message = str(info.value)
    assert "Plugin 'broken' (hebbkit-broken 0.9, module " in message
    assert "failed to import" in message
    assert f"({module}): ImportError: needs torch_geometric at " in message
    assert f"{module}.py:2" in message
    assert "pip uninstall hebbkit-broken" in message
    assert "HEBBKIT_LOAD_PLUGINS" in message


@pytest.mark.parametrize("allow", ["good", "hebbkit-good", " good , other "])
def test_allow_list_skips_the_broken_plugin(
    site: Path, monkeypatch: pytest.MonkeyPatch, allow: str
) -> None:
    broken_dist(site)
    name = good_dist(site)
    monkeypatch.setenv("HEBBKIT_LOAD_PLUGINS", allow)
    if "other" in allow:  # a name nothing installed provides: said, not fatal
        with pytest.warns(HebbkitNotice, match="HEBBKIT_LOAD_PLUGINS names 'other'"):
            registry = plugins.get_registry()
    else:
        registry = plugins.get_registry()
    assert name in registry.names("initializer")
    assert {"random", "zero"} <= set(registry.names("initializer"))


def test_empty_allow_list_loads_only_hebbkits_own(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = good_dist(site)
    monkeypatch.setenv("HEBBKIT_LOAD_PLUGINS", "")
    registry = plugins.get_registry()
    assert name not in registry.names("initializer")
    assert all(c.origin.distribution == "hebbkit" for c in registry)


def test_disable_autoload(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken_dist(site)
    name = good_dist(site)
    monkeypatch.setenv("HEBBKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("HEBBKIT_LOAD_PLUGINS", "good")  # autoload off wins
    registry = plugins.get_registry()
    assert name not in registry.names("initializer")
    assert {c.origin.distribution for c in registry} == {"hebbkit"}


def test_two_distributions_with_one_entry_point_name(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good_dist(site, "hebbkit-good")
    good_dist(tmp_path / "other-site", "hebbkit-good-fork")
    monkeypatch.syspath_prepend(str(tmp_path / "other-site"))
    with pytest.raises(PluginError) as info:
        plugins.get_plugin_manager()
    message = str(info.value)
    assert "Two distributions declare the hebbkit plugin 'good'" in message
    assert "'hebbkit-good'" in message and "'hebbkit-good-fork'" in message


def test_bad_component_from_an_installed_plugin_names_the_distribution(site: Path) -> None:
    module = unique("bad_plugin")
    source = """
        from hebbkit.hookspecs import hookimpl

        @hookimpl
        def register_initializers(register):
            register("lazy", "not a function")
    """
    write_dist(site, "hebbkit-lazy", {"lazy": module}, {module: source}, version="2.0")
    with pytest.raises(PluginError, match=r"Plugin 'lazy' \(hebbkit-lazy 2\.0, module "):
        plugins.get_registry()


def test_unknown_hook_from_an_installed_plugin_names_the_distribution(site: Path) -> None:
    module = unique("typo_plugin")
    source = """
        from hebbkit.hookspecs import hookimpl

        @hookimpl
        def register_pooling(register):
            pass
    """
    write_dist(site, "hebbkit-typo", {"typo": module}, {module: source}, version="0.1")
    with pytest.raises(PluginError) as info:
        plugins.get_plugin_manager()
    message = str(info.value)
    assert message.startswith("Plugin 'typo' (hebbkit-typo 0.1, module ")
    assert "implements 'register_pooling' (did you mean 'register_poolings'?)" in message


def test_trace(site: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    name = good_dist(site)
    broken_dist(site)
    monkeypatch.setenv("HEBBKIT_LOAD_PLUGINS", "good")
    monkeypatch.setenv("HEBBKIT_TRACE_PLUGINS", "1")
    plugins.get_registry()
    lines = capsys.readouterr().err.splitlines()
    assert all(line.startswith("[hebbkit plugins] ") for line in lines)
    text = "\n".join(lines)
    assert "skip entry point 'broken' (hebbkit-broken 0.9): not in HEBBKIT_LOAD_PLUGINS" in text
    assert "load entry point 'good' = " in text
    assert "load entry point 'softhebb' = hebbkit_softhebb (hebbkit " in text
    assert "call register_initializers -> good" in text
    assert f"good registered initializer '{name}'" in text


def test_no_trace_by_default(site: Path, capsys: pytest.CaptureFixture) -> None:
    good_dist(site)
    plugins.get_registry()
    assert capsys.readouterr().err == ""


# --- the CLI ------------------------------------------------------------------------------


def test_cli_bad_plugin_exit_2_without_traceback(site: Path) -> None:
    module = unique("bad_plugin")
    source = """
        from hebbkit.hookspecs import hookimpl

        @hookimpl
        def register_poolings(register):
            register("none", lambda p: None)
    """
    write_dist(site, "hebbkit-nopool", {"nopool": module}, {module: source})
    result = runner.invoke(app, ["plugins"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "hebbkit-nopool" in result.stderr and "params= must be a subclass" in result.stderr


def test_cli_lists_an_installed_plugin_with_origin(site: Path) -> None:
    name = good_dist(site)
    result = runner.invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    row = next(r for r in json.loads(result.stdout) if r["name"] == name)
    assert row["distribution"] == "hebbkit-good" and row["version"] == "1.2.3"
    assert row["plugin"] == "good" and row["parameters"] == ["value"]
    assert row["description"] == "constant weights"


def test_cli_subprocess_broken_plugin_and_plugin_commands(tmp_path: Path) -> None:
    """The real entry point ``main()``: a broken plugin stops every command with exit 2 and
    one paragraph; leaving it out with the allow-list, the rest (and plugin commands) work."""
    folder = tmp_path / "site"
    module = unique("cmd_plugin")
    source = """
        from hebbkit.hookspecs import hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command()
            def greet():
                print("hello from a plugin")
    """
    write_dist(folder, "hebbkit-greet", {"greet": module}, {module: source})
    broken_dist(folder)
    env = clean_env(PYTHONPATH=str(folder))
    failed = run([*hebbkit_command(), "plugins"], env=env)
    assert failed.returncode == 2, failed.stderr
    assert "Traceback" not in failed.stderr + failed.stdout
    assert "(hebbkit-broken 0.9, module " in failed.stderr and "failed to import" in failed.stderr
    env["HEBBKIT_LOAD_PLUGINS"] = "greet"
    greeted = run([*hebbkit_command(), "greet"], env=env)
    assert greeted.returncode == 0, greeted.stderr
    assert greeted.stdout.strip() == "hello from a plugin"


# --- the example plugin -------------------------------------------------------------------


@pytest.mark.integration
def test_sparse_binary_recipe_runs(tmp_path: Path) -> None:
    """recipes/mnist_sparse_binary.toml with the example plugin (install.sh dev installs it)."""
    pytest.importorskip(
        "hebbkit_sparse_binary", reason="pip install ./plugins/hebbkit-sparse-binary"
    )
    if not (DATA_ROOT / "MNIST" / "raw").is_dir():
        pytest.skip(f"no MNIST under {DATA_ROOT}")
    recipe = REPO / "recipes" / "mnist_sparse_binary.toml"
    overrides = ["data.train_subset=200", "data.test_subset=200", "readout.epochs=1"]
    overrides += [f"layers.{i}.channels=8" for i in range(3)]
    args = ["run", str(recipe), "--data-root", str(DATA_ROOT), "--out", str(tmp_path / "run")]
    args += ["-q", "--offline", *(f"--set={value}" for value in overrides)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = (tmp_path / "run" / "recipe.toml").read_text()
    assert 'name = "sparse-binary"' in saved


def test_lazy_factory_imports_its_module_on_first_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hebbkit.registry import lazy_factory

    name = unique("lazy_component")
    (tmp_path / f"{name}.py").write_text("def build(params):\n    return ('built', params)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    factory = lazy_factory(f"{name}:build")
    assert name not in sys.modules and repr(factory) == f"lazy_factory('{name}:build')"
    assert factory(3) == ("built", 3) and name in sys.modules
    with pytest.raises(PluginError, match=r"name the factory as 'package\.module:function'"):
        lazy_factory(name)
    with pytest.raises(PluginError, match=f"{name} has no callable 'missing'"):
        lazy_factory(f"{name}:missing")(None)
