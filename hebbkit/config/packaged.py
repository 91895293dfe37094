"""The recipes and grid files that ship inside the hebbkit package, found by name.

They are the repository's ``recipes/`` folder (``hebbkit/recipes`` links to it, and the wheel
carries it as package data), so ``hebbkit run mnist_zero`` works wherever hebbkit is
installed, and ``hebbkit run recipes/mnist_zero.toml`` in a checkout names the same file.
Grid files refer to their base recipes by relative paths, which hold in both places.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from hebbkit.config.kinds import Kind, file_kind
from hebbkit.config.toml import TOMLDecodeError, loads
from hebbkit.errors import RecipeError


def packaged_folder() -> Path:
    """Where the packaged recipes lie (``hebbkit/recipes``)."""
    return Path(str(files("hebbkit") / "recipes"))


@dataclass(frozen=True)
class PackagedRecipe:
    """One packaged file: its name (``mnist_zero``, ``study/table1``), path, kind and text."""

    name: str
    path: Path
    kind: Kind | None
    description: str


def packaged_recipes() -> list[PackagedRecipe]:
    """Every packaged recipe and grid file, by name."""
    folder = packaged_folder()
    found = []
    for path in sorted(folder.rglob("*.toml")):
        try:
            data = loads(path.read_text(encoding="utf-8"))
        except (OSError, TOMLDecodeError):
            continue  # not hebbkit's to list
        name = path.relative_to(folder).with_suffix("").as_posix()
        found.append(PackagedRecipe(name, path, file_kind(data), str(data.get("description", ""))))
    return found


def shown_path(path: Path | str) -> str:
    """How to name ``path`` to the user: a packaged file by its name, a file under the working
    folder relative to it, any other as given."""
    absolute = Path(path).absolute()
    try:  # without resolving links: in a checkout, recipes/x.toml is shown as typed
        return absolute.relative_to(packaged_folder().absolute()).with_suffix("").as_posix()
    except ValueError:
        pass
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


def resolve_recipe(given: Path | str, what: str = "Recipe file") -> Path:
    """``given`` if that file exists, else the packaged recipe or grid file of that name (with
    or without ``.toml``); otherwise a :class:`RecipeError` that lists the packaged names."""
    path = Path(given)
    try:
        if path.exists() or path.is_symlink():  # a link loop: read_toml names the OS error
            return path
    except OSError:  # a name too long: read_toml names the OS error
        return path
    packaged = {recipe.name: recipe.path for recipe in packaged_recipes()}
    name = path.as_posix().removesuffix(".toml")
    if name in packaged:
        return packaged[name]
    close = difflib.get_close_matches(name, list(packaged), n=1, cutoff=0.6)
    if path.parts[:1] == ("recipes",) and name.removeprefix("recipes/") in packaged:
        close = [name.removeprefix("recipes/")]
    hint = f" Did you mean the packaged {close[0]!r} (hebbkit run {close[0]})?" if close else ""
    raise RecipeError(
        f"{what} {given} does not exist, and no packaged recipe is named {name!r}.{hint} "
        f"Packaged recipes (hebbkit recipes lists them): {', '.join(sorted(packaged))}."
    )
