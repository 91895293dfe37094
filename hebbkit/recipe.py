"""Recipes as a plugin's own tests use them: validate, load and write one.

The plugin-facing view of :mod:`hebbkit.config.recipe`; this import path never changes (the
example plugin and generated plugin packages import ``validate_recipe`` from here).
"""

from __future__ import annotations

from hebbkit.config.overrides import apply_overrides
from hebbkit.config.recipe import (
    COMPONENT_FIELDS,
    Recipe,
    load_recipe,
    recipe_dict,
    recipe_model,
    recipe_toml,
    validate_recipe,
)

__all__ = [
    "COMPONENT_FIELDS",
    "Recipe",
    "apply_overrides",
    "load_recipe",
    "recipe_dict",
    "recipe_model",
    "recipe_toml",
    "validate_recipe",
]
