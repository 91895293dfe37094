"""TOML in and out: the one file reader, the one inline writer, and display helpers."""

from __future__ import annotations

import difflib
import re
import sys
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, ConfigDict

from hebbkit.errors import RecipeError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the tomli backport (a dependency there)
    import tomli as tomllib

__all__ = [
    "Strict",
    "TOMLDecodeError",
    "did_you_mean",
    "display",
    "dumps_document",
    "loads",
    "read_toml",
    "short",
    "short_names",
    "show",
    "toml_inline",
    "toml_key",
]

TOMLDecodeError = tomllib.TOMLDecodeError
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


class Strict(BaseModel):
    """Base of hebbkit's own TOML tables (recipe sections, search, grid files): unknown keys
    are errors; a key with an alias (``set``) is also accepted by its field name."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def loads(text: str) -> dict[str, Any]:
    """``tomllib.loads`` (the tomli backport on Python 3.10)."""
    return tomllib.loads(text)


def read_toml(
    path: Path, what: str = "Recipe file", error_type: type[RecipeError] = RecipeError
) -> dict[str, Any]:
    """A TOML file as a dict; a missing, unreadable or malformed file is a ``error_type``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error_type(f"{what} {path} does not exist.") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as error:
        raise error_type(f"Cannot read {what.lower()} {path}: {error}.") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise error_type(f"{what} {path} is not valid TOML: {error}.") from None


# --- writing ---------------------------------------------------------------------------------


def toml_key(key: str) -> str:
    """A key as TOML writes it: bare where it may be, else quoted."""
    return key if _BARE_KEY.match(key) else tomli_w.dumps({key: 0})[:-5]


def toml_inline(value: Any) -> str:
    """``value`` as one line of TOML (what ``-s path=VALUE`` takes); TypeError if it has none."""
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = ", ".join(f"{toml_key(str(k))} = {toml_inline(v)}" for k, v in value.items())
        return "{ " + items + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_inline(v) for v in value) + "]"
    if isinstance(value, (bool, int, float, str)):
        return tomli_w.dumps({"v": value})[4:].strip()
    raise TypeError(f"{type(value).__name__} is not a TOML value")


def dumps_document(data: dict[str, Any]) -> str:
    """TOML for recipe-shaped data: tables of scalars, arrays of tables, components (tables
    with a ``name``) inline on one line each."""
    lines = [f"{toml_key(k)} = {toml_inline(v)}" for k, v in data.items() if not _is_table(v)]
    for key, value in data.items():
        if isinstance(value, dict) and not _is_component(value):
            lines += ["", f"[{toml_key(key)}]"]
            lines += [
                f"{toml_key(k)} = {toml_inline(v)}" for k, v in value.items() if not _is_table(v)
            ]
            for sub_key, sub_value in value.items():
                if _is_table(sub_value):
                    lines += ["", f"[{toml_key(key)}.{toml_key(sub_key)}]"]
                    lines += [f"{toml_key(k)} = {toml_inline(v)}" for k, v in sub_value.items()]
        elif _is_table_array(value):
            for item in value:
                lines += ["", f"[[{toml_key(key)}]]"]
                lines += [f"{toml_key(k)} = {toml_inline(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def _is_component(value: Any) -> bool:
    return isinstance(value, dict) and "name" in value


def _is_table(value: Any) -> bool:
    return (isinstance(value, dict) and not _is_component(value)) or _is_table_array(value)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


# --- showing values in messages and tables ---------------------------------------------------


def show(value: Any) -> str:
    """A value as the user would write it in TOML (``repr`` where TOML has no form)."""
    try:
        return toml_inline(value)
    except TypeError:
        return repr(value)


def short(value: Any, width: int = 60) -> str:
    """:func:`show`, cut to ``width`` characters."""
    text = show(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def display(value: Any) -> str:
    """A value for a console table: short numbers, tables as ``name k=v``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        parts = [str(value["name"])] if "name" in value else []
        parts += [f"{k}={display(v)}" for k, v in value.items() if k != "name"]
        return " ".join(parts)
    return show(value)


def did_you_mean(word: str, options: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest option, or nothing."""
    match = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def short_names(paths: list[str]) -> dict[str, str]:
    """The shortest dotted suffix of each path that no other path ends with (table headers)."""
    names = {}
    for path in paths:
        parts = path.split(".")
        # "name" alone says nothing: start from "activation.name"
        for size in range(2 if parts[-1] == "name" else 1, len(parts) + 1):
            suffix = ".".join(parts[-size:])
            clash = any(o != path and (o == suffix or o.endswith("." + suffix)) for o in paths)
            if not clash:
                break
        names[path] = suffix
    return names
