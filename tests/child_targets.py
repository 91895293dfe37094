"""Functions for :func:`hebbkit.runs.supervise.run_in_child` to run in a fresh Python
(spawned children import them by name, so they live in a light module of their own)."""

from __future__ import annotations

import os

from hebbkit.errors import RecipeError
from hebbkit.runs.supervise import tell_parent


def add(a: int, b: int) -> int:
    return a + b


def refuse(text: str) -> None:
    raise RecipeError(text)


def die_like_ray(code: int) -> None:
    """What Ray does to a driver whose cluster head is gone: no Python runs any more."""
    tell_parent("gcs", "127.0.0.1:1")
    os._exit(code)
