"""TOML in and out: the one file reader, the one inline writer, and display helpers."""

from __future__ import annotations

import difflib
import re
import stat
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
    "MAX_DEPTH",
    "Strict",
    "TOMLDecodeError",
    "check_depth",
    "clip",
    "did_you_mean",
    "display",
    "dumps_document",
    "loads",
    "os_reason",
    "read_toml",
    "short",
    "short_names",
    "show",
    "summarise",
    "toml_inline",
    "toml_key",
]

TOMLDecodeError = tomllib.TOMLDecodeError
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")

#: The deepest nesting of tables and arrays hebbkit reads (a recipe needs about 5).
MAX_DEPTH = 32
#: The largest TOML file hebbkit reads (recipes and grid files are a few KiB).
MAX_FILE_BYTES = 16 * 1024**2
#: Problems listed in one message; the rest are counted.
MAX_PROBLEMS = 20


class Strict(BaseModel):
    """Base of hebbkit's own TOML tables (recipe sections, search, grid files): unknown keys
    are errors, and so are NaN and infinite numbers; a key with an alias (``set``) is also
    accepted by its field name."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


def loads(text: str) -> dict[str, Any]:
    """``tomllib.loads`` (the tomli backport on Python 3.10), nesting at most
    :data:`MAX_DEPTH` deep; deeper is a ``ValueError`` (hostile input must not recurse)."""
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise ValueError(f"it nests tables or arrays more than {MAX_DEPTH} levels deep") from None
    check_depth(data)
    return data


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Raise ``ValueError`` if ``value`` nests dicts and lists more than ``limit`` deep
    (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        if depth > limit:
            raise ValueError(f"it nests tables or arrays more than {limit} levels deep")
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children)


def read_toml(
    path: Path, what: str = "Recipe file", error_type: type[RecipeError] = RecipeError
) -> dict[str, Any]:
    """A TOML file as a dict; a missing, unreadable, oversized, too deeply nested or
    malformed file (or a folder, pipe, device, symlink loop) is an ``error_type``."""
    path = Path(path)
    where = f"{what} {clip(str(path), 200)}"
    try:
        info = path.stat()
    except FileNotFoundError:
        raise error_type(f"{where} does not exist.") from None
    except (OSError, ValueError) as error:  # symlink loop, name too long, no permission, NUL
        raise error_type(f"Cannot read {where}: {os_reason(error)}.") from None
    if stat.S_ISDIR(info.st_mode):
        raise error_type(f"{where} is a folder, not a TOML file.")
    if not stat.S_ISREG(info.st_mode):
        raise error_type(f"{where} is not a regular file (a device, pipe or socket).")
    if info.st_size > MAX_FILE_BYTES:
        raise error_type(
            f"{where} holds {info.st_size / 1024**2:.1f} MiB; hebbkit reads TOML files of at "
            f"most {MAX_FILE_BYTES // 1024**2} MiB (a recipe is a few KiB)."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise error_type(f"Cannot read {where}: {os_reason(error)}.") from None
    try:
        return loads(text)
    except tomllib.TOMLDecodeError as error:
        raise error_type(f"{where} is not valid TOML: {error}.") from None
    except ValueError as error:
        raise error_type(f"{where}: {error}.") from None


def os_reason(error: BaseException) -> str:
    """Why an operating-system call failed, without repeating a (possibly huge) file name."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return clip(str(error), 300)


# --- messages --------------------------------------------------------------------------------


def clip(text: str, width: int = 300) -> str:
    """``text`` cut in the middle to at most ``width`` characters."""
    if len(text) <= width:
        return text
    half = (width - 5) // 2
    return f"{text[:half]} ... {text[-half:]}"


def summarise(lines: list[str], limit: int = MAX_PROBLEMS, width: int = 1000) -> list[str]:
    """At most ``limit`` problem lines, each clipped to ``width``, then how many were left
    out: an input with thousands of mistakes still gets a message one can read."""
    shown = [clip(line, width) for line in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"... and {len(lines) - limit} more problems (fix these first).")
    return shown


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
