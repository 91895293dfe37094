"""What kind of hebbkit file a TOML table is (recipe, search recipe or grid file), so that a
file given to the wrong command is named for what it is, with the command that takes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

Kind = Literal["recipe", "search recipe", "grid file"]

#: Top-level keys of a recipe (``Recipe`` in :mod:`hebbkit.config.recipe`; a test keeps
#: them equal).
RECIPE_KEYS = frozenset(
    {
        "name",
        "description",
        "seed",
        "deterministic",
        "data",
        "hebbian",
        "layers",
        "readout",
        "search",
    }
)
#: Top-level keys of a grid file (``GridFile`` in :mod:`hebbkit.config.grid_file`, by alias).
GRID_KEYS = frozenset(
    {"name", "description", "base", "seeds", "set", "label", "runs", "grid", "study"}
)

#: The command that takes each kind, and how to check a file of that kind first.
COMMANDS: dict[Kind, tuple[str, str]] = {
    "recipe": ("hebbkit run {path}", "hebbkit recipe validate {path}"),
    "search recipe": ("hebbkit tune {path}", "hebbkit tune {path} --dry-run"),
    "grid file": ("hebbkit grid {path}", "hebbkit grid {path} --dry-run"),
}


def file_kind(data: dict[str, Any]) -> Kind | None:
    """The kind of file ``data`` (a parsed TOML document) is, judged by the keys only one kind
    has; None when it mixes both kinds' keys or has neither."""
    keys = set(data)
    recipe_only = keys & (RECIPE_KEYS - GRID_KEYS)
    grid_only = keys & (GRID_KEYS - RECIPE_KEYS)
    if grid_only and not recipe_only:
        return "grid file"
    if recipe_only and not grid_only:
        return "search recipe" if "search" in keys else "recipe"
    return None


def wrong_kind_message(path: Path | str, data: dict[str, Any], wanted: str) -> str | None:
    """The message for a file that is not a ``wanted`` but another kind of hebbkit file (None
    when it is a ``wanted`` or not recognisably anything else)."""
    kind = file_kind(data)
    if kind is None or kind == wanted or (wanted == "recipe" and kind == "search recipe"):
        return None
    own = sorted(set(data) - (RECIPE_KEYS if kind == "grid file" else GRID_KEYS))
    run, check = (command.format(path=path) for command in COMMANDS[kind])
    article = "an" if wanted[0] in "aeiou" else "a"
    return (
        f"{path} is a {kind} (it has {', '.join(own)}), not {article} {wanted}. Run it with "
        f"`{run}`; `{check}` checks it first."
    )
