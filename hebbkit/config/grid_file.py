"""Experiment grids: many runs of one study declared in one TOML file (no Ray here).

A grid file names a base recipe, override sets and seeds::

    name = "figure1"
    base = "../mnist_softhebb.toml"          # relative to the grid file
    seeds = [0, 1, 2, 3]                      # every run is repeated per seed
    set = ["readout.epochs=10"]               # applied to every run
    label = "{layers.0.init}{layers.1.init}"  # optional: how product labels are spelled

    [[runs]]                                  # explicit runs: composite override sets
    label = "zero-on-1-and-3"
    set = ['layers.0.init="zero"', 'layers.2.init="zero"']

    [grid]                                    # product form: every combination
    "layers.0.init" = ["random", "zero"]                  # levels named after the values
    "layers.1.init" = { R = "random", Z = { name = "zero", scale = "study" } }  # named levels

    [study]                                   # the published numbers, for the report
    figures = { "zero-on-1-and-3" = 97.1 }

Explicit runs and the product combine: every ``[[runs]]`` entry is crossed with every
combination of ``[grid]`` levels, then with every seed. Each run is an ordinary run folder
``<out>/<label>/seed<k>/``; a run whose ``summary.json`` exists is not repeated.

Overrides apply in this order: base recipe, ``set``, the run's ``set``, the grid levels,
``-s`` from the command line, then ``seed``.
"""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from hebbkit.config.kinds import wrong_kind_message
from hebbkit.config.packaged import shown_path
from hebbkit.config.toml import Strict, read_toml, short, summarise
from hebbkit.errors import GridError

#: Characters a label segment (a folder name) may hold.
SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.,=+-]*$")
RECIPE_SECTIONS = ("data", "hebbian", "layers", "readout", "search")
#: The most runs one grid may plan (axes multiply quickly).
MAX_RUNS = 100_000


# --- the file format -------------------------------------------------------------------------


class RunSpec(Strict):
    """One explicit run: a label and the overrides that make it (any number: composite)."""

    label: str = Field(description="the run's name in tables and its folder, e.g. 'zero'")
    base: str | None = Field(None, description="base recipe of this run (default: the grid's)")
    overrides: list[str] = Field(
        default_factory=list, alias="set", description="dotted.path=VALUE overrides"
    )

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        return check_label(value)


class StudySpec(Strict):
    """The study's published numbers, shown beside ours by ``hebbkit report``."""

    source: str = Field("", description="where the numbers come from (paper, table)")
    metric: Literal["test_accuracy", "train_accuracy", "validation_accuracy"] = "test_accuracy"
    figures: dict[str, float] = Field(
        default_factory=dict, description="run label -> the study's accuracy in %"
    )
    nonzero_weights: dict[str, list[int]] = Field(
        default_factory=dict, description="run label -> the study's non-zero weights per layer"
    )
    note: str = Field("", description="a sentence for the report, e.g. a qualitative finding")


class GridFile(Strict):
    """A grid file as written (``hebbkit grid`` expands it into runs)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=100)
    description: str = ""
    base: str | None = Field(None, description="base recipe, relative to the grid file")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    overrides: list[str] = Field(default_factory=list, alias="set")
    label: str | None = Field(
        None, description="label template of product runs, e.g. '{run}-{layers.0.init}'"
    )
    runs: list[RunSpec] = Field(default_factory=list)
    grid: dict[str, list[Any] | dict[str, Any]] = Field(
        default_factory=dict, description="dotted recipe path -> values, or {level = value}"
    )
    study: StudySpec = Field(default_factory=StudySpec)

    def run_count(self, seeds: int | None = None) -> int:
        """Runs the grid plans: explicit runs × every combination of levels × seeds,
        counted without listing them."""
        levels = math.prod(len(levels) for levels in self.grid.values())
        return max(1, len(self.runs)) * levels * (len(self.seeds) if seeds is None else seeds)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: list[int]) -> list[int]:
        if any(seed < 0 for seed in value):
            raise ValueError("seeds must be 0 or more")
        if len(set(value)) != len(value):
            raise ValueError(f"seeds {value} repeat a seed")
        return value

    @field_validator("grid")
    @classmethod
    def _axes(cls, value: dict[str, Any]) -> dict[str, Any]:
        for path, levels in value.items():
            if path in RECIPE_SECTIONS and isinstance(levels, dict):
                raise ValueError(
                    f"{path!r} looks like a dotted path written without quotes (TOML turns "
                    f'layers.0.init into nested tables): write "layers.0.init" = [...]'
                )
            if not levels:
                raise ValueError(f"{path!r} has no values")
            if path == "seed" or path.startswith("seed."):
                raise ValueError("seeds are set with seeds = [...], not in [grid]")
            if isinstance(levels, dict):
                for level in levels:
                    check_label(str(level), f"{path!r}: level name")
        return value


def check_label(value: str, what: str = "label") -> str:
    parts = value.split("/")
    bad = [p for p in parts if not SEGMENT.match(p)]
    if not value or bad:
        raise ValueError(
            f"{what} {value!r} must be folder names made of letters, digits and _ . , = + - "
            "(parts may be separated by /), starting with a letter or digit"
        )
    return value


def read_grid_file(path: Path) -> GridFile:
    """Read and validate a grid file; problems name the key."""
    data = read_toml(path, "Grid file", GridError)
    message = wrong_kind_message(shown_path(path), data, "grid file")
    if message:
        raise GridError(message)
    try:
        return GridFile.model_validate(data)
    except ValidationError as error:
        raise GridError(_format_errors(error, path)) from None


def _format_errors(error: ValidationError, path: Path) -> str:
    lines = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "the grid"
        kind = problem["type"]
        if kind == "extra_forbidden":
            parent = problem["loc"][:-1]
            allowed = _allowed(parent)
            key = str(problem["loc"][-1])
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            lines.append(f"{where}: unknown key.{hint} Allowed here: {', '.join(allowed)}.")
        elif kind == "missing":
            lines.append(f"{where}: required key is missing.")
        else:
            message = problem["msg"].removeprefix("Value error, ").rstrip(".")
            value = problem.get("input")
            shown = "" if isinstance(value, (dict, list)) else f" = {short(value)}"
            lines.append(f"{where}{shown}: {message}.")
    count = "1 problem" if len(lines) == 1 else f"{len(lines)} problems"
    return f"Invalid grid file {path} ({count}):\n  " + "\n  ".join(summarise(lines))


def _allowed(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = GridFile
    if loc and loc[0] == "runs":
        model = RunSpec
    elif loc and loc[0] == "study":
        model = StudySpec
    return [f.alias or name for name, f in model.model_fields.items()]
