"""The ``hebbkit`` application: every command registered in one place, plugins' commands last."""

from __future__ import annotations

import typer

from hebbkit.cli import run, study, tune
from hebbkit.cli.options import print_error
from hebbkit.errors import HebbkitError
from hebbkit.plugins import add_commands, get_plugin_manager

app = typer.Typer(
    name="hebbkit",
    help="Biologically plausible, feedback-free learning: SoftHebb networks from TOML recipes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
recipe_app = typer.Typer(help="Show or validate a recipe.", no_args_is_help=True)
plugin_app = typer.Typer(help="Write a new plugin package.", no_args_is_help=True)

app.command("run")(run.run)
app.command("eval")(run.evaluate)
app.command("inspect")(run.inspect)
app.command("plugins")(run.plugins)
app.add_typer(recipe_app, name="recipe")
recipe_app.command("show")(run.recipe_show)
recipe_app.command("validate")(run.recipe_validate)
app.add_typer(plugin_app, name="plugin")
plugin_app.command("new")(run.plugin_new)
app.command("grid")(study.grid)
app.command("report")(study.report)
app.command("tune")(tune.tune)
app.command("tune-report")(tune.tune_report)


def load_plugin_commands() -> None:
    """Let plugins add sub-commands (hook ``register_commands``); a failure names the plugin."""
    add_commands(get_plugin_manager(), app)


def main() -> None:
    try:
        load_plugin_commands()
    except HebbkitError as error:
        print_error(error)
        raise SystemExit(error.exit_code) from None
    app()
