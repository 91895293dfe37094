"""Shared fixtures: the registry, the shared datasets folder and small recipe files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from hebbkit.plugins import get_registry
from hebbkit.registry import Registry

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"

#: A one-layer recipe small enough to build in milliseconds.
TINY_RECIPE: dict[str, Any] = {
    "name": "tiny",
    "seed": 0,
    "data": {"dataset": "mnist"},
    "hebbian": {"epochs": 1, "batch_size": 8},
    "layers": [
        {
            "channels": 4,
            "kernel": 3,
            "padding": 1,
            "init": {"name": "random"},
            "plasticity": {"name": "softhebb", "lr": 0.05},
            "competition": {"name": "softkrotov"},
            "activation": {"name": "triangle", "power": 0.7},
            "pool": {"name": "max", "kernel": 2},
        }
    ],
    "readout": {"epochs": 1, "batch_size": 16},
}


def shared_datasets_path() -> Path:
    """``$HEBBKIT_TEST_DATA``, else ``shared/datasets`` beside the repository."""
    override = os.environ.get("HEBBKIT_TEST_DATA")
    if override:
        return Path(override).expanduser().resolve()
    return Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _has_mnist(root: Path) -> bool:
    raw = root / "MNIST" / "raw"
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    return all((raw / n).is_file() or (raw / f"{n}.gz").is_file() for n in names)


@pytest.fixture(scope="session")
def registry() -> Registry:
    return get_registry()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder holding real MNIST (torchvision raw layout); skips the test if absent."""
    root = shared_datasets_path()
    if not _has_mnist(root):
        pytest.skip(f"real MNIST not found under {root} (set HEBBKIT_TEST_DATA)")
    return root


@pytest.fixture
def write_recipe(tmp_path: Path) -> Callable[..., Path]:
    """Write a recipe dict (default: :data:`TINY_RECIPE`) as TOML into ``tmp_path``."""

    def write(data: dict[str, Any] | None = None, name: str = "recipe.toml") -> Path:
        path = tmp_path / name
        path.write_text(tomli_w.dumps(TINY_RECIPE if data is None else data))
        return path

    return write
