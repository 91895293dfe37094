"""Recipes: TOML files validated by pydantic, with dotted ``--set`` overrides.

A component is written ``{ name = "...", ...params }`` (or just ``"name"``) and validated
against the parameter model its plugin registered. The recipe model is built from the
registry, so a plugin's parameters get exactly the validation and messages ours get.
"""

import copy
import difflib
import sys
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import tomli_w
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model

from hebbkit.errors import RecipeError
from hebbkit.registry import FAMILIES, Params, Registry, unknown_name_message
from hebbkit.search import SearchConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the tomli backport (a dependency there)
    import tomli as tomllib


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(Section):
    dataset: Any = Field(description="dataset component, e.g. 'mnist'")
    train_subset: int | None = Field(
        None, gt=0, description="use only the first N shuffled training images (quick runs)"
    )
    test_subset: int | None = Field(None, gt=0, description="use only N test images")
    validation: float = Field(
        0.0,
        ge=0,
        description="validation split carved from the training set: a fraction in [0, 1) or a "
        "count of images (>= 1)",
    )


class LayerConfig(Section):
    channels: int = Field(gt=0, description="output channels (neurons)")
    kernel: int = Field(gt=0)
    stride: int = Field(1, gt=0)
    padding: int = Field(0, ge=0)
    dilation: int = Field(1, gt=0)
    padding_mode: Literal["reflect", "zeros", "replicate", "circular"] = "reflect"
    batch_norm: bool = Field(True, description="BatchNorm2d(affine=False) on the block's input")
    init: Any
    plasticity: Any
    competition: Any
    activation: Any
    pool: Any = "identity"


class HebbianConfig(Section):
    epochs: int = Field(1, ge=0)
    batch_size: int = Field(32, gt=0)
    mode: Literal["greedy", "all-at-once"] = Field(
        "greedy", description="greedy: layer by layer, earlier layers frozen"
    )
    diagnostics: int = Field(
        10,
        ge=0,
        description="points per layer and epoch at which distinct filters, norms, rates and "
        "winner counts are recorded (0: only at the end of each epoch)",
    )


class ReadoutConfig(Section):
    epochs: int = Field(10, ge=0)
    batch_size: int = Field(32, gt=0)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    dropout: float = Field(0.5, ge=0, lt=1)
    schedule: Literal["step", "constant"] = Field(
        "step", description="step: halve the rate at the fractions given in the docs"
    )
    feature_dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", description="storage of cached features; auto keeps float32 up to 2 GiB"
    )


class Recipe(Section):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    description: str = ""
    seed: int = Field(0, ge=0)
    deterministic: bool = True
    data: DataConfig
    hebbian: HebbianConfig = HebbianConfig()
    layers: list[LayerConfig] = Field(min_length=1)
    readout: ReadoutConfig = ReadoutConfig()
    search: SearchConfig | None = Field(
        None, description="hyperparameter search (hebbkit tune); ignored by hebbkit run"
    )


#: Fields of the recipe sections that hold a component, and the family of each.
COMPONENT_FIELDS: dict[type[Section], dict[str, str]] = {
    DataConfig: {"dataset": "dataset"},
    LayerConfig: {
        "init": "initializer",
        "plasticity": "plasticity",
        "competition": "competition",
        "activation": "activation",
        "pool": "pooling",
    },
}


def _shorthand(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


def _component_type(registry: Registry, family: str) -> Any:
    models = []
    for name in registry.names(family):
        params = registry.get(family, name).params
        models.append(
            create_model(
                f"{family}:{name}",
                __base__=params,
                name=(Literal[name], Field(description=f"the {family}")),  # type: ignore[valid-type]
            )
        )
    if not models:
        return Annotated[dict, BeforeValidator(lambda v: _no_components(family))]
    if len(models) == 1:
        return Annotated[models[0], BeforeValidator(_shorthand)]
    return Annotated[
        Union[tuple(models)],  # noqa: UP007 - a runtime-built union
        Field(discriminator="name"),
        BeforeValidator(_shorthand),
    ]


def _no_components(family: str) -> None:
    raise ValueError(f"no {family} is registered: is a plugin missing?")


@lru_cache(maxsize=4)
def recipe_model(registry: Registry) -> type[Recipe]:
    """The Recipe model with component fields typed by what ``registry`` holds."""
    sections: dict[type[Section], type[Section]] = {}
    for section, fields in COMPONENT_FIELDS.items():
        overrides: dict[str, Any] = {}
        for field_name, family in fields.items():
            default = section.model_fields[field_name].default
            kind = _component_type(registry, family)
            # defaults are validated too, so they become component models like given values
            overrides[field_name] = (
                kind,
                ... if default is None else Field(_shorthand(default), validate_default=True),
            )
        sections[section] = create_model(section.__name__, __base__=section, **overrides)
    return create_model(
        "Recipe",
        __base__=Recipe,
        data=(sections[DataConfig], ...),
        layers=(list[sections[LayerConfig]], Field(min_length=1)),  # type: ignore[valid-type]
    )


def _dotted(loc: tuple[Any, ...], data: Any) -> str:
    """Dotted recipe path of a pydantic error location, without union tags."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(node, dict) and item not in node and node.get("name") == item:
            continue  # a discriminated-union tag, not a key of the recipe
        if isinstance(node, str) and item == node:
            continue
        parts.append(str(item))
        if isinstance(node, dict):
            node = _shorthand(node.get(item)) if item in node else None
        elif isinstance(node, list) and isinstance(item, int) and item < len(node):
            node = _shorthand(node[item])
        else:
            node = None
    return ".".join(parts)


def _lookup(data: Any, path: str) -> Any:
    node = data
    for part in path.split(".") if path else []:
        node = _shorthand(node)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _family_at(path: str) -> str | None:
    last = path.split(".")[-1] if path else ""
    for fields in COMPONENT_FIELDS.values():
        if last in fields:
            return fields[last]
    return None


def format_validation_error(
    error: ValidationError, data: dict[str, Any], source: str, registry: Registry
) -> str:
    lines = []
    for problem in error.errors():
        path = _dotted(problem["loc"], data)
        kind = problem["type"]
        if kind == "union_tag_invalid":
            family = _family_at(path) or "component"
            name = problem.get("ctx", {}).get("tag", "?")
            lines.append(
                f"{path}.name: {unknown_name_message(family, name, registry.names(family))}"
            )
            continue
        if kind == "union_tag_not_found":
            family = _family_at(path) or "component"
            lines.append(
                f'{path}: a component needs a name, e.g. {{ name = "..." }}; '
                f"available {family}s: {', '.join(registry.names(family))}."
            )
            continue
        if kind == "extra_forbidden":
            parent = path.rsplit(".", 1)[0] if "." in path else ""
            allowed = _allowed_keys(parent, data, registry)
            key = path.rsplit(".", 1)[-1]
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            lines.append(f"{path}: unknown key.{hint} Allowed here: {', '.join(allowed)}.")
            continue
        if kind == "missing":
            lines.append(f"{path}: required key is missing.")
            continue
        value = problem.get("input")
        message = problem["msg"].removeprefix("Value error, ").rstrip(".")
        if isinstance(value, (dict, list)):
            lines.append(f"{path}: {message}.")
        else:
            lines.append(f"{path} = {_show(value)}: {message}.")
    count = "1 problem" if len(lines) == 1 else f"{len(lines)} problems"
    return f"Invalid recipe {source} ({count}):\n  " + "\n  ".join(lines)


def _allowed_keys(parent: str, data: dict[str, Any], registry: Registry) -> list[str]:
    node = _shorthand(_lookup(data, parent))
    family = _family_at(parent)
    if family and isinstance(node, dict) and node.get("name") in registry.names(family):
        return ["name", *registry.get(family, node["name"]).params.model_fields]
    model: type[BaseModel] = Recipe
    for part in parent.split(".") if parent else []:
        if part.isdigit():
            continue
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        inner = getattr(annotation, "__args__", (annotation,))
        sections = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
        if not sections:
            return []
        model = sections[0]
    return list(model.model_fields)


def _show(value: Any) -> str:
    try:
        return tomli_w.dumps({"v": value})[4:].strip()
    except (TypeError, ValueError):
        return repr(value)


# --- overrides ---------------------------------------------------------------------------


def parse_value(text: str) -> Any:
    """Parse an override value as TOML; anything that is not TOML is a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``dotted.path=VALUE`` overrides to a raw recipe dict (returns a copy).

    List indices are numbers (``layers.0.init``); ``*`` sets every element. A key that holds
    dots is quoted as in TOML (``search.space."layers.0.kernel"``). Changing the ``name`` of a
    component drops its other keys, which belonged to the old component.
    """
    result = copy.deepcopy(data)
    for override in overrides:
        key, sep, text = override.partition("=")
        key = key.strip()
        if not sep or not key:
            raise RecipeError(
                f"Override {override!r} is not of the form dotted.path=VALUE "
                "(for example layers.0.init.name=zero or readout.epochs=5)."
            )
        _set_path(result, split_path(key), parse_value(text.strip()), key)
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


def _set_path(node: Any, parts: list[str], value: Any, key: str, depth: int = 0) -> None:
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
                node[index] = _shorthand(node[index])
                _set_path(node[index], parts[1:], value, key, depth + 1)
        return
    if not isinstance(node, dict):
        raise RecipeError(f"Override {key!r}: {where} is a value, not a table.")
    if last:
        if part == "name" and depth > 0 and node.get("name") not in (None, value):
            node.clear()
        node[part] = copy.deepcopy(value)
        return
    child = node.get(part)
    if child is None:
        child = node[part] = {}
    elif isinstance(child, str):
        child = node[part] = _shorthand(child)
    _set_path(child, parts[1:], value, key, depth + 1)


# --- loading and saving ---------------------------------------------------------------


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


def validate_recipe(data: dict[str, Any], registry: Registry, source: str = "<recipe>") -> Recipe:
    try:
        return recipe_model(registry).model_validate(data)
    except ValidationError as error:
        raise RecipeError(format_validation_error(error, data, source, registry)) from None


def load_recipe(
    path: Path | str, overrides: list[str] | None = None, registry: Registry | None = None
) -> Recipe:
    """Read, override and validate a recipe file."""
    if registry is None:
        from hebbkit.plugins import get_registry

        registry = get_registry()
    data = apply_overrides(read_toml(Path(path)), overrides or [])
    return validate_recipe(data, registry, source=str(path))


def recipe_dict(recipe: Recipe) -> dict[str, Any]:
    """The resolved recipe as plain data, components written with their name first."""
    return _name_first(recipe.model_dump(mode="json", exclude_none=True))


def _name_first(node: Any) -> Any:
    if isinstance(node, dict):
        ordered = {"name": node["name"]} if "name" in node else {}
        ordered.update({k: _name_first(v) for k, v in node.items() if k != "name"})
        return ordered
    if isinstance(node, list):
        return [_name_first(item) for item in node]
    return node


def recipe_toml(recipe: Recipe) -> str:
    """The resolved recipe as TOML, each component on one line as an inline table."""
    return dumps_recipe(recipe_dict(recipe))


def dumps_recipe(data: dict[str, Any]) -> str:
    """TOML for recipe-shaped data: tables of scalars, arrays of tables, inline components."""
    lines = [f"{_key(k)} = {_inline(v)}" for k, v in data.items() if not _is_table(v)]
    for key, value in data.items():
        if isinstance(value, dict) and not _is_component(value):
            lines += ["", f"[{_key(key)}]"]
            lines += [f"{_key(k)} = {_inline(v)}" for k, v in value.items() if not _is_table(v)]
            for sub_key, sub_value in value.items():
                if _is_table(sub_value):
                    lines += ["", f"[{_key(key)}.{_key(sub_key)}]"]
                    lines += [f"{_key(k)} = {_inline(v)}" for k, v in sub_value.items()]
        elif _is_table_array(value):
            for item in value:
                lines += ["", f"[[{_key(key)}]]"]
                lines += [f"{_key(k)} = {_inline(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def _is_component(value: Any) -> bool:
    return isinstance(value, dict) and "name" in value


def _is_table(value: Any) -> bool:
    return (isinstance(value, dict) and not _is_component(value)) or _is_table_array(value)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else tomli_w.dumps({key: 0})[:-5]


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_inline(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return tomli_w.dumps({"v": value})[4:].strip()


def flatten_recipe(node: Any, prefix: str = "") -> dict[str, Any]:
    """Recipe data as ``{dotted.path: value}`` (tables and arrays of tables flattened)."""
    if isinstance(node, dict):
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(flatten_recipe(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(node, list) and node and all(isinstance(v, dict) for v in node):
        flat = {}
        for index, value in enumerate(node):
            flat.update(flatten_recipe(value, f"{prefix}.{index}"))
        return flat
    return {prefix: node}


def component_params(spec: Params) -> dict[str, Any]:
    """A component spec's parameters without its name."""
    return {k: v for k, v in spec.model_dump(mode="json").items() if k != "name"}


__all__ = [
    "FAMILIES",
    "Recipe",
    "apply_overrides",
    "load_recipe",
    "recipe_model",
    "recipe_toml",
    "validate_recipe",
]
