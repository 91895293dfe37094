"""The ``hebbkit`` application: every command registered in one place, plugins' commands last.

Every command's help ends with examples (:data:`EXAMPLES`); importing this module imports no
torch: the commands import the library when they run, and hebbkit's own plugins load their
torch code when a recipe first builds a component.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from hebbkit import __version__
from hebbkit.cli import components, run, study, tune
from hebbkit.cli.options import install_notice_printer, print_error
from hebbkit.errors import HebbkitError
from hebbkit.plugins import add_commands, get_plugin_manager

#: Command path -> example command lines, shown at the end of its ``--help``.
EXAMPLES: dict[str, list[str]] = {
    "": [
        "hebbkit run mnist_zero                          # a packaged recipe, by name",
        "hebbkit run recipes/mnist_zero.toml -s readout.epochs=3",
        "hebbkit recipes                                 # what ships with hebbkit",
        "hebbkit plugins show zero                       # one component's parameters",
    ],
    "run": [
        "hebbkit run mnist_zero",
        "hebbkit run recipes/mnist_softhebb.toml -s 'layers.*.init=random-binary' --device cuda",
        "hebbkit run mnist_zero -s data.train_subset=2000 -s readout.epochs=3 --out runs/quick",
        "hebbkit run mnist_softhebb -s readout.epochs=50 --hebbian-from runs/mnist_softhebb/RUN",
        "hebbkit run mnist_zero --track mlflow:sqlite:///mlruns.db --track tensorboard",
    ],
    "eval": [
        "hebbkit eval runs/mnist_zero/RUN",
        "hebbkit eval runs/mnist_zero/RUN --dataset fashion_mnist --json",
    ],
    "inspect": [
        "hebbkit inspect mnist_softhebb",
        'hebbkit inspect mnist_softhebb -s \'layers.*.init={name="zero", scale="study"}\' --json',
    ],
    "plugins": [
        "hebbkit plugins",
        "hebbkit plugins --json",
        "hebbkit plugins show softkrotov",
    ],
    "plugins show": [
        "hebbkit plugins show zero",
        "hebbkit plugins show max --family pooling --json",
    ],
    "recipes": ["hebbkit recipes", "hebbkit recipes --json"],
    "recipe": ["hebbkit recipe show mnist_zero", "hebbkit recipe validate my_recipe.toml"],
    "recipe show": [
        "hebbkit recipe show mnist_zero",
        "hebbkit recipe show mnist_zero -s layers.0.init=random > my_recipe.toml",
    ],
    "recipe validate": [
        "hebbkit recipe validate my_recipe.toml",
        "hebbkit recipe validate mnist_zero -s layers.1.plasticity.lr=0.01",
    ],
    "plugin": ["hebbkit plugin new orthogonal", "hebbkit plugin new bars --family dataset"],
    "plugin new": [
        "hebbkit plugin new orthogonal                   # an initializer",
        "hebbkit plugin new bars --family dataset --out plugins/hebbkit-bars",
    ],
    "grid": [
        "hebbkit grid study/table2 --dry-run",
        "hebbkit grid recipes/study/figure1.toml --out runs/study/figure1 --seeds 0-3",
        "hebbkit grid study/table1 --only 'fashion_mnist/*' --address local --gpus-per-run 0.5",
    ],
    "report": [
        "hebbkit report runs/study/figure1 --out report/",
        "hebbkit report runs/study/table1 runs/study/table2 --out report/ --title 'Tables 1-2'",
    ],
    "tune": [
        "hebbkit tune mnist_zero_search --dry-run -n 8",
        "hebbkit tune mnist_zero_search --cpus-per-trial 2 --max-concurrent 4",
        "hebbkit tune mnist_zero_search --out runs/search1 --resume",
    ],
    "tune-report": [
        "hebbkit tune-report runs/search1",
        "hebbkit tune-report runs/search1 --top 20",
    ],
}


def examples(path: str) -> str:
    """The epilog of a command's help: its examples, one paragraph each (so none is joined)."""
    lines = "\n\n".join(f"  {escape(line)}" for line in EXAMPLES[path])
    return f"[bold]Examples[/]\n\n{lines}"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hebbkit {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="hebbkit",
    help="Biologically plausible, feedback-free learning: SoftHebb networks from TOML recipes.",
    epilog=examples(""),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print hebbkit's version and exit."
        ),
    ] = False,
) -> None:
    """hebbkit's options before any command (--version)."""


recipe_app = typer.Typer(
    help="Show or validate a recipe.", no_args_is_help=True, epilog=examples("recipe")
)
plugin_app = typer.Typer(
    help="Write a new plugin package.", no_args_is_help=True, epilog=examples("plugin")
)
plugins_app = typer.Typer(epilog=examples("plugins"))

app.command("run", epilog=examples("run"))(run.run)
app.command("eval", epilog=examples("eval"))(run.evaluate)
app.command("inspect", epilog=examples("inspect"))(run.inspect)
plugins_app.callback(invoke_without_command=True)(components.plugins)
plugins_app.command("show", epilog=examples("plugins show"))(components.plugin_show)
app.add_typer(plugins_app, name="plugins")
app.command("recipes", epilog=examples("recipes"))(components.recipes)
recipe_app.command("show", epilog=examples("recipe show"))(run.recipe_show)
recipe_app.command("validate", epilog=examples("recipe validate"))(run.recipe_validate)
app.add_typer(recipe_app, name="recipe")
plugin_app.command("new", epilog=examples("plugin new"))(components.plugin_new)
app.add_typer(plugin_app, name="plugin")
app.command("grid", epilog=examples("grid"))(study.grid)
app.command("report", epilog=examples("report"))(study.report)
app.command("tune", epilog=examples("tune"))(tune.tune)
app.command("tune-report", epilog=examples("tune-report"))(tune.tune_report)


def load_plugin_commands() -> None:
    """Let plugins add sub-commands (hook ``register_commands``); a failure names the plugin."""
    add_commands(get_plugin_manager(), app)


def main() -> None:
    install_notice_printer()
    try:
        load_plugin_commands()
    except HebbkitError as error:
        print_error(error)
        raise SystemExit(error.exit_code) from None
    app()
