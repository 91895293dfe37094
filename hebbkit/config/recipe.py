"""Recipes: TOML files validated by pydantic, with dotted ``--set`` overrides.

A component is written ``{ name = "...", ...params }`` (or just ``"name"``) and validated
against the parameter model its plugin registered. The recipe model is built from the
registry, so a plugin's parameters get exactly the validation and messages ours get.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
    create_model,
    field_validator,
)

from hebbkit.config.kinds import wrong_kind_message
from hebbkit.config.overrides import apply_overrides, component_table, overrides_text
from hebbkit.config.packaged import shown_path
from hebbkit.config.search_space import SearchConfig
from hebbkit.config.toml import Strict, clip, dumps_document, read_toml, short, summarise
from hebbkit.errors import RecipeError
from hebbkit.registry import Params, Registry, describe_error, unknown_name_message

Section = Strict

#: Upper bounds that keep a typo from running for a lifetime (epochs) or from building
#: absurd tables (diagnostics points); memory-hungry sizes are checked by the memory estimate.
MAX_EPOCHS = 100_000
MAX_LAYERS = 64
MAX_SEED = 2**63 - 1


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

    @field_validator("validation")
    @classmethod
    def _fraction_or_count(cls, value: float) -> float:
        if value >= 1 and value != int(value):
            raise ValueError("give a fraction in [0, 1) or a whole number of images")
        return value


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
    epochs: int = Field(1, ge=0, le=MAX_EPOCHS)
    batch_size: int = Field(32, gt=0)
    mode: Literal["greedy", "all-at-once"] = Field(
        "greedy", description="greedy: layer by layer, earlier layers frozen"
    )
    diagnostics: int = Field(
        10,
        ge=0,
        le=10_000,
        description="points per layer and epoch at which distinct filters, norms, rates and "
        "winner counts are recorded (0: only at the end of each epoch)",
    )


class ReadoutConfig(Section):
    epochs: int = Field(10, ge=0, le=MAX_EPOCHS)
    batch_size: int = Field(32, gt=0)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    dropout: float = Field(0.5, ge=0, lt=1)
    schedule: Literal["step", "constant", "cosine"] = Field(
        "step",
        description="step: SoftHebb's, halve the rate at 50/75% (20-49 epochs) or "
        "20/35/50/60/70/80/90% (50+), constant below 20 epochs; constant; cosine: decay "
        "to 0 along half a cosine, step by step",
    )
    feature_dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", description="storage of cached features; auto keeps float32 up to 2 GiB"
    )


class Recipe(Section):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=100)
    description: str = ""
    seed: int = Field(0, ge=0, le=MAX_SEED)
    deterministic: bool = True
    data: DataConfig
    hebbian: HebbianConfig = HebbianConfig()
    layers: list[LayerConfig] = Field(min_length=1, max_length=MAX_LAYERS)
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
        return Annotated[models[0], BeforeValidator(component_table)]
    return Annotated[
        Union[tuple(models)],  # noqa: UP007 - a runtime-built union
        Field(discriminator="name"),
        BeforeValidator(component_table),
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
                ... if default is None else Field(component_table(default), validate_default=True),
            )
        sections[section] = create_model(section.__name__, __base__=section, **overrides)
    return create_model(
        "Recipe",
        __base__=Recipe,
        data=(sections[DataConfig], ...),
        layers=(list[sections[LayerConfig]], Field(min_length=1, max_length=MAX_LAYERS)),  # type: ignore[valid-type]
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
            node = component_table(node.get(item)) if item in node else None
        elif isinstance(node, list) and isinstance(item, int) and item < len(node):
            node = component_table(node[item])
        else:
            node = None
    return ".".join(parts)


def _lookup(data: Any, path: str) -> Any:
    node = data
    for part in path.split(".") if path else []:
        node = component_table(node)
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
            lines.append(f"{path} = {short(value)}: {message}.")
    count = "1 problem" if len(lines) == 1 else f"{len(lines)} problems"
    return f"Invalid recipe {clip(source, 200)} ({count}):\n  " + "\n  ".join(summarise(lines))


def _allowed_keys(parent: str, data: dict[str, Any], registry: Registry) -> list[str]:
    node = component_table(_lookup(data, parent))
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


def validate_recipe(data: dict[str, Any], registry: Registry, source: str = "<recipe>") -> Recipe:
    try:
        return recipe_model(registry).model_validate(data)
    except ValidationError as error:
        raise RecipeError(format_validation_error(error, data, source, registry)) from None
    except (ValueError, TypeError, ArithmeticError, AttributeError, KeyError) as error:
        # a plugin's params validator that raised something pydantic does not collect
        raise RecipeError(
            f"Validating recipe {clip(source, 200)} failed in a component's parameter check: "
            f"{describe_error(error)}. The component's plugin should turn this into a "
            "ValueError naming the parameter; meanwhile check the values given to it."
        ) from None


def load_recipe(
    path: Path | str, overrides: list[str] | None = None, registry: Registry | None = None
) -> Recipe:
    """Read, override and validate a recipe file against ``registry`` (required: the
    components a recipe may name are the ones it holds)."""
    if registry is None:
        raise TypeError("load_recipe() needs the registry, e.g. hebbkit.plugins.get_registry()")
    data = apply_overrides(read_recipe_file(path), overrides or [])
    return validate_recipe(data, registry, source=str(path))


def note_overrides(recipe: Recipe, overrides: list[str]) -> Recipe:
    """``recipe`` with the ``-s`` overrides that changed it appended to its description, so
    that a run folder's recipe does not describe the file's recipe (say, "on MNIST") when an
    override changed it (``-s data.dataset=digits``)."""
    if not overrides:
        return recipe
    note = f"with {overrides_text(overrides)}"
    description = f"{recipe.description} ({note})" if recipe.description else note
    return recipe.model_copy(update={"description": description})


def read_recipe_file(path: Path | str) -> dict[str, Any]:
    """A recipe file's TOML; a grid file given instead is named as such, with its command."""
    data = read_toml(Path(path))
    message = wrong_kind_message(shown_path(path), data, "recipe")
    if message:
        raise RecipeError(message)
    return data


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
    return dumps_document(recipe_dict(recipe))


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


#: The recipe paths that make a run's protocol (how much data and training it gets): runs that
#: differ in them are not compared with each other's, or the study's, accuracy.
PROTOCOL_PATHS = (
    "data.train_subset",
    "data.test_subset",
    "data.validation",
    "hebbian.epochs",
    "hebbian.batch_size",
    "readout.epochs",
    "readout.batch_size",
)


def protocol_of(data: dict[str, Any]) -> dict[str, Any]:
    """A resolved recipe's (:func:`recipe_dict`, or a run folder's ``recipe.toml``)
    protocol: each of :data:`PROTOCOL_PATHS` and its value (None where unset: all data)."""
    flat = flatten_recipe(data)
    return {path: flat.get(path) for path in PROTOCOL_PATHS}


#: Dotted recipe paths that determine the Hebbian weights: the seed, the images the Hebbian
#: phase sees (dataset, training subset, validation split), the Hebbian settings and the
#: layers. ``hebbian.diagnostics`` only decides when statistics are recorded; the read-out,
#: ``data.test_subset``, name and description do not touch the Hebbian weights.
HEBBIAN_PATHS = (
    "seed",
    "deterministic",
    "data.dataset",
    "data.train_subset",
    "data.validation",
    "hebbian",
    "layers",
)
NOT_HEBBIAN_PATHS = ("hebbian.diagnostics",)


def is_hebbian_path(path: str) -> bool:
    """Whether the dotted recipe ``path`` (``layers.*.init``, ``readout.lr``) can change the
    Hebbian weights."""

    def under(prefixes: tuple[str, ...]) -> bool:
        return any(path == p or path.startswith(f"{p}.") for p in prefixes)

    # a whole table (``data``) holds Hebbian keys too
    above = any(p.startswith(f"{path}.") for p in HEBBIAN_PATHS)
    return above or (under(HEBBIAN_PATHS) and not under(NOT_HEBBIAN_PATHS))


def hebbian_config(recipe: Recipe) -> dict[str, Any]:
    """The resolved recipe's keys that determine the Hebbian weights, flattened, in recipe
    order."""
    return {k: v for k, v in flatten_recipe(recipe_dict(recipe)).items() if is_hebbian_path(k)}


def hebbian_hash(recipe: Recipe) -> str:
    """sha256 (first 16 hex digits) of :func:`hebbian_config`: runs with the same hash learn
    the same Hebbian weights, whatever their read-out."""
    text = json.dumps(hebbian_config(recipe), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def first_difference(mine: dict[str, Any], theirs: dict[str, Any]) -> str | None:
    """The first key (in ``mine``'s order, then ``theirs``') whose values differ."""
    for key in [*mine, *(k for k in theirs if k not in mine)]:
        if mine.get(key, _MISSING) != theirs.get(key, _MISSING):
            return key
    return None


_MISSING = object()


def component_params(spec: Params) -> dict[str, Any]:
    """A component spec's parameters without its name."""
    return {k: v for k, v in spec.model_dump(mode="json").items() if k != "name"}


__all__ = [
    "COMPONENT_FIELDS",
    "PROTOCOL_PATHS",
    "Recipe",
    "apply_overrides",
    "load_recipe",
    "note_overrides",
    "protocol_of",
    "read_recipe_file",
    "recipe_model",
    "recipe_toml",
    "validate_recipe",
]
