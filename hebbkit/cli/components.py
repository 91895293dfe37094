"""Commands about what is installed: plugins (and one component's parameters), packaged
recipes, and a new plugin package."""

from __future__ import annotations

import json
from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from hebbkit.cli.options import JsonOption, out, user_errors
from hebbkit.config.recipe import COMPONENT_FIELDS
from hebbkit.config.toml import display, toml_inline
from hebbkit.plugins import get_registry
from hebbkit.registry import FAMILIES, Component, describe_params
from hebbkit.scaffold import TEMPLATES, write_plugin

#: Where a component of each family goes in a recipe (``layers.N.init``, ``data.dataset``).
RECIPE_PLACES = {
    family: ("data." if field == "dataset" else "layers.N.") + field
    for fields in COMPONENT_FIELDS.values()
    for field, family in fields.items()
}


def _source(component: Component) -> str:
    origin = component.origin
    return f"{origin.plugin} ({origin.distribution} {origin.version})".replace(" )", ")")


@user_errors
def plugins(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every registered component: family, name, the plugin it came from, what it does."""
    if ctx.invoked_subcommand is not None:
        return
    registry = get_registry()
    if as_json:
        rows = [
            {
                "family": c.family,
                "name": c.name,
                "plugin": c.origin.plugin,
                "module": c.origin.module,
                "distribution": c.origin.distribution,
                "version": c.origin.version,
                "parameters": list(c.params.model_fields),
                "description": c.description,
            }
            for c in registry
        ]
        out.print_json(json.dumps(rows))
        return
    # one table per family; descriptions wrap instead of being cut at the terminal's width
    for family in FAMILIES:
        components = [c for c in registry if c.family == family]
        if not components:
            continue
        table = Table(
            title=f"{family} ({RECIPE_PLACES.get(family, family)})",
            title_justify="left",
            title_style="bold",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        table.add_column("name", no_wrap=True, style="cyan")
        table.add_column("from", overflow="fold", max_width=24)
        table.add_column("description", overflow="fold", ratio=1)
        for component in components:
            table.add_row(component.name, _source(component), escape(component.description))
        out.print(table)
    out.print(
        "Parameters of one component: hebbkit plugins show NAME. Write your own: hebbkit plugin "
        "new NAME --family FAMILY.",
        highlight=False,
    )


def _component_names(incomplete: str) -> list[str]:
    """Shell completion of ``plugins show NAME``."""
    return sorted({c.name for c in get_registry() if c.name.startswith(incomplete)})


FamilyName = Enum("FamilyName", {name: name for name in FAMILIES}, type=str)  # type: ignore[misc]


@user_errors
def plugin_show(
    name: Annotated[
        str,
        typer.Argument(
            help="component name, e.g. zero or softkrotov",
            show_default=False,
            autocompletion=_component_names,
        ),
    ],
    family: Annotated[
        FamilyName | None,  # type: ignore[valid-type]
        typer.Option("--family", "-f", help="the family, where two families use the name"),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """One component: where it comes from and its parameters (type, default, bounds)."""
    component = get_registry().find(name, family.value if family else None)
    parameters = describe_params(component.params)
    example = {
        "name": component.name,
        **{p.name: p.default for p in parameters if p.default is not None},
    }
    place = RECIPE_PLACES.get(component.family, component.family)
    key = place.rsplit(".", 1)[-1]
    recipe_line = f"{key} = {toml_inline(example)}"
    if as_json:
        row: dict[str, Any] = {
            "family": component.family,
            "name": component.name,
            "description": component.description,
            "plugin": component.origin.plugin,
            "module": component.origin.module,
            "distribution": component.origin.distribution,
            "version": component.origin.version,
            "recipe_key": place,
            "recipe": recipe_line,
            "parameters": [asdict(p) for p in parameters],
        }
        out.print_json(json.dumps(row, default=str))
        return
    out.print(
        f"[bold]{component.family} {escape(component.name)}[/]: {escape(component.description)}",
        highlight=False,
    )
    out.print(f"from plugin {escape(_source(component))}, module {component.origin.module}")
    if parameters:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column("parameter", no_wrap=True, style="cyan")
        table.add_column("type", overflow="fold")
        table.add_column("default", overflow="fold")
        table.add_column("description", overflow="fold", ratio=1)
        for p in parameters:
            description = p.description + (f" ({p.constraints})" if p.constraints else "")
            default = (
                "required" if p.required else ("–" if p.default is None else display(p.default))
            )
            table.add_row(p.name, escape(p.type), escape(default), escape(description))
        out.print(table)
    else:
        out.print("No parameters.")
    out.print(f"In a recipe ({place}):", highlight=False)
    out.print(f"  {escape(recipe_line)}", highlight=False)


@user_errors
def recipes(as_json: JsonOption = False) -> None:
    """The recipes and grid files that ship with hebbkit: run any by name."""
    from hebbkit.config.packaged import packaged_folder, packaged_recipes

    found = packaged_recipes()
    if as_json:
        rows = [
            {"name": r.name, "kind": r.kind, "description": r.description, "path": str(r.path)}
            for r in found
        ]
        out.print_json(json.dumps(rows))
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("name", no_wrap=True, style="cyan")
    table.add_column("kind", no_wrap=True)
    table.add_column("description", overflow="fold", ratio=1)
    for recipe in found:
        table.add_row(recipe.name, recipe.kind or "?", escape(recipe.description))
    out.print(table)
    out.print(
        f"In {packaged_folder()}. Run one by name: hebbkit run mnist_zero, hebbkit grid "
        "study/table1, hebbkit tune mnist_zero_search; hebbkit recipe show NAME > my.toml "
        "writes a recipe to edit.",
        highlight=False,
    )


# The families `plugin new` has templates for (an Enum, so typer lists and checks them).
ScaffoldFamily = Enum("ScaffoldFamily", {name: name for name in TEMPLATES}, type=str)  # type: ignore[misc]


@user_errors
def plugin_new(
    name: Annotated[
        str,
        typer.Argument(
            help="component name, e.g. orthogonal (package hebbkit-NAME, module hebbkit_NAME)",
            show_default=False,
        ),
    ],
    family: Annotated[
        ScaffoldFamily,  # type: ignore[valid-type]
        typer.Option("--family", "-f", help="component family of the template"),
    ] = ScaffoldFamily["initializer"],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="folder to create (default ./hebbkit-NAME)")
    ] = None,
) -> None:
    """Write a ready-to-install plugin package: pyproject, component, test, README."""
    folder = write_plugin(name, family.value, out_dir)
    out.print(f"Wrote the {family.value} plugin package {folder}. Next:", highlight=False)
    out.print(f"  pip install -e {folder}   # then: hebbkit plugins", highlight=False)
    out.print(f"  pytest {folder}", highlight=False)
