"""The ``-s dotted.path=VALUE`` language: paths, TOML values, ``*`` and quoted keys."""

from __future__ import annotations

import copy
import shlex
import warnings
from typing import Any

from hebbkit.config.toml import MAX_DEPTH, TOMLDecodeError, clip, display, loads
from hebbkit.errors import HebbkitNotice, RecipeError


def component_table(value: Any) -> Any:
    """A component written as its bare name (``"zero"``) as the table ``{ name = "zero" }``."""
    return {"name": value} if isinstance(value, str) else value


def overrides_text(overrides: list[str]) -> str:
    """The overrides as the command line gives them: ``-s a=1 -s 'b={ name = "x" }'``."""
    return " ".join(f"-s {shlex.quote(override)}" for override in overrides)


def parse_value(text: str) -> Any:
    """Parse an override value as TOML; anything that is not TOML is a bare string. A value
    nested more than :data:`~hebbkit.config.toml.MAX_DEPTH` deep is a ``ValueError``."""
    try:
        return loads(f"v = {text}")["v"]
    except TOMLDecodeError:
        return text


def apply_overrides(
    data: dict[str, Any], overrides: list[str], *, notify: bool = True
) -> dict[str, Any]:
    """Apply ``dotted.path=VALUE`` overrides to a raw recipe dict (returns a copy).

    List indices are numbers (``layers.0.init``); ``*`` sets every element. A key that holds
    dots is quoted as in TOML (``search.space."layers.0.kernel"``). Changing the ``name`` of a
    component drops its other keys, which belonged to the old component; a
    :class:`~hebbkit.errors.HebbkitNotice` warning names the keys dropped (unless ``notify``
    is false: a search's trials change names on purpose).
    """
    result = copy.deepcopy(data)
    for override in overrides:
        key, sep, text = override.partition("=")
        key = key.strip()
        if not sep or not key:
            raise RecipeError(
                f"Override {clip(repr(override), 200)} is not of the form dotted.path=VALUE "
                "(for example layers.0.init.name=zero or readout.epochs=5)."
            )
        parts = split_path(key)
        if len(parts) > MAX_DEPTH:
            raise RecipeError(
                f"Override {clip(repr(key), 200)}: the path has {len(parts)} parts; a recipe "
                f"path has at most {MAX_DEPTH}."
            )
        try:
            value = parse_value(text.strip())
        except ValueError as error:
            raise RecipeError(f"Override {clip(repr(key), 200)}: the value {error}.") from None
        _set_path(result, parts, value, key, notify=notify)
    return result


def split_path(key: str) -> list[str]:
    """``a."b.c".d`` → ``["a", "b.c", "d"]``: dotted parts, quoted ones taken as written."""
    parts: list[str] = []
    rest = key
    while True:
        if rest[:1] in ('"', "'"):
            end = rest.find(rest[0], 1)
            if end < 0:
                raise RecipeError(f"Override {key!r}: a quote in the path is not closed.")
            part, rest = rest[1:end], rest[end + 1 :]
            if rest and not rest.startswith("."):
                raise RecipeError(
                    f"Override {key!r}: a quoted key must be followed by '.' or '=', "
                    f"not {rest[0]!r}."
                )
        else:
            part, dot, rest = rest.partition(".")
            rest = dot + rest
        parts.append(part)
        if not rest:
            return parts
        rest = rest[1:]


def _set_path(
    node: Any, parts: list[str], value: Any, key: str, depth: int = 0, *, notify: bool = True
) -> None:
    part = parts[0]
    last = len(parts) == 1
    where = ".".join(split_path(key)[:depth]) or "the recipe"
    if isinstance(node, list):
        if part == "*":
            indices = range(len(node))
        elif part.isdigit() and int(part) < len(node):
            indices = range(int(part), int(part) + 1)
        else:
            raise RecipeError(
                f"Override {key!r}: {where} is a list of {len(node)} entries; use an index "
                f"0..{len(node) - 1} or '*', not {part!r}."
            )
        for index in indices:
            if last:
                node[index] = copy.deepcopy(value)
            else:
                node[index] = component_table(node[index])
                _set_path(node[index], parts[1:], value, key, depth + 1, notify=notify)
        return
    if not isinstance(node, dict):
        raise RecipeError(f"Override {key!r}: {where} is a value, not a table.")
    if last:
        if part == "name" and depth > 0 and node.get("name") not in (None, value):
            if notify:
                _note_dropped(node, value, where, key)
            node.clear()
        node[part] = copy.deepcopy(value)
        return
    child = node.get(part)
    if child is None:
        child = node[part] = {}
    elif isinstance(child, str):
        child = node[part] = component_table(child)
    _set_path(child, parts[1:], value, key, depth + 1, notify=notify)


def _note_dropped(node: dict[str, Any], new: Any, where: str, key: str) -> None:
    """Warn that renaming the component at ``where`` drops the old component's parameters."""
    dropped = {k: v for k, v in node.items() if k != "name"}
    if not dropped:
        return
    keys = ", ".join(f"{k} = {display(v)}" for k, v in dropped.items())
    first = next(iter(dropped))
    warnings.warn(
        HebbkitNotice(
            f"-s {key}={display(new)}: the component at {where} changes from "
            f"{display(node['name'])} to {display(new)}, which drops {keys} (a new name starts a "
            f"fresh component). Set the new component's parameters after its name, e.g. "
            f"-s {where}.{first}=..."
        ),
        stacklevel=2,
    )
