"""Small grids for the grid and report tests: a two-layer recipe on a 300-image MNIST subset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tomli_w
from typer.testing import CliRunner

from hebbkit.cli.app import app

REPO = Path(__file__).resolve().parents[1]
#: The MNIST files the repository ships (torchvision's raw layout).
DATA = REPO / "data"

#: Two small Hebbian layers: a run takes a second or two on a CPU.
BASE_RECIPE: dict[str, Any] = {
    "name": "grid_base",
    "seed": 0,
    "data": {"dataset": "mnist", "train_subset": 300, "test_subset": 300},
    "hebbian": {"epochs": 1, "batch_size": 32, "diagnostics": 3},
    "layers": [
        {
            "channels": 8,
            "kernel": 5,
            "padding": 2,
            "init": {"name": "random", "radius": 25.0},
            "plasticity": {"name": "softhebb", "lr": 0.08, "lr_power": 0.5},
            "competition": {"name": "softkrotov", "t_invert": 1.0},
            "activation": {"name": "triangle", "power": 0.7},
            "pool": {"name": "max", "kernel": 4, "stride": 2, "padding": 1},
        },
        {
            "channels": 16,
            "kernel": 3,
            "padding": 1,
            "init": {"name": "random", "radius": 25.0},
            "plasticity": {"name": "softhebb", "lr": 0.005, "lr_power": 0.5},
            "competition": {"name": "softkrotov", "t_invert": 0.65},
            "activation": {"name": "triangle", "power": 1.4},
            "pool": {"name": "avg", "kernel": 2, "stride": 2, "padding": 0},
        },
    ],
    "readout": {"epochs": 1, "batch_size": 32},
}

#: random vs ZerO on every layer, one seed; the study's figures are made-up round numbers.
TINY_GRID = """\
name = "tiny"
description = "random vs ZerO on a small subset"
base = "base.toml"
seeds = [0]

[[runs]]
label = "random"
set = []

[[runs]]
label = "zero"
set = ['layers.*.init={ name = "zero", scale = "study" }']

[study]
source = "made up for the test"
figures = { random = 90.0, zero = 50.0 }
nonzero_weights = { zero = [8, 128] }
"""


def write_grid(folder: Path, text: str = TINY_GRID, base: dict[str, Any] | None = None) -> Path:
    """Write ``base.toml`` and ``grid.toml`` into ``folder``; returns the grid file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "base.toml").write_text(tomli_w.dumps(base or BASE_RECIPE))
    grid = folder / "grid.toml"
    grid.write_text(text)
    return grid


def mnist_data() -> Path:
    """The repository's MNIST folder; skips the test when the files are not there."""
    raw = DATA / "MNIST" / "raw"
    if (
        not (raw / "train-images-idx3-ubyte.gz").is_file()
        and not (raw / "train-images-idx3-ubyte").is_file()
    ):
        pytest.skip(f"MNIST not found under {raw}")
    return DATA


def invoke(*args: str | Path) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args])


def user_error(*args: str | Path) -> str:
    """Run a command that must fail as a user error (exit 2, no traceback); its output."""
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "Error:" in result.output
    return result.output


_SHARED: dict[str, tuple[Path, Path]] = {}


def shared_tiny_grid(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """:data:`TINY_GRID` run once per test session: (grid file, output folder).

    Test modules wrap it in a fixture; the grid and report tests then share one real run.
    """
    if "tiny" not in _SHARED:
        data = mnist_data()
        folder = tmp_path_factory.mktemp("grid")
        grid = write_grid(folder)
        out = folder / "out"
        result = invoke("grid", grid, "--out", out, "--data-root", data, "--offline", "-q")
        assert result.exit_code == 0, result.output
        _SHARED["tiny"] = (grid, out)
    return _SHARED["tiny"]
