"""Hostile and mistaken input of every kind: each case ends with exit code 2 (3 for a run that
diverges), one message naming the culprit, and no traceback.

Recipes, overrides, numbers, shapes, memory, flags, environment variables, data files, output
folders and plugins. Every case runs the real command line (typer's runner, in this process)
and fails before any real training; the few that must train do so on 64 fake images.
"""

from __future__ import annotations

import importlib
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tomli_w
from typer.testing import CliRunner

from hebbkit import plugins
from hebbkit.cli.app import app
from hebbkit.runs.folder import FolderClaim
from tests.conftest import TINY_RECIPE
from tests.data_files import idx_bytes, write_random_mnist
from tests.plugin_helpers import PLUGIN_ENV, unique, write_dist

runner = CliRunner()


def labels(values: list[int]) -> bytes:
    return idx_bytes(np.array(values, dtype=np.uint8))


def images(count: int, height: int = 28, width: int = 28) -> bytes:
    return idx_bytes(np.zeros((count, height, width), dtype=np.uint8))


# --- cases ---------------------------------------------------------------------------------


@dataclass
class Case:
    """One bad input: what the command line is, what the message must name."""

    id: str
    #: arguments after ``hebbkit``; ``{recipe}``, ``{data}``, ``{tmp}``, ``{out}`` are filled in
    args: list[str]
    #: fragments the message must hold (the culprit: key, flag, variable, file, plugin)
    culprit: list[str]
    #: the recipe written to ``{recipe}`` (default: tests.conftest.TINY_RECIPE)
    recipe: dict[str, Any] | None = None
    #: prepares files in the test's folder (data, plugins, odd paths)
    setup: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    code: int = 2
    #: fragments the message must not hold
    absent: list[str] = field(default_factory=list)

    @property
    def fresh_plugins(self) -> bool:
        """Whether the case installs a plugin or sets a plugin switch (rebuild the registry)."""
        return (
            self.id.startswith("plugin")
            or "pool-changes" in self.id
            or any(name in PLUGIN_ENV for name in self.env)
        )


RUN = ["run", "{recipe}", "--data-root", "{data}", "--offline", "--out", "{out}", "-q"]
VALIDATE = ["recipe", "validate", "{recipe}"]
INSPECT = ["inspect", "{recipe}", "--data-root", "{data}", "--offline"]


def with_layer(**changes: Any) -> dict[str, Any]:
    layer = {**TINY_RECIPE["layers"][0], **changes}
    return {**TINY_RECIPE, "layers": [layer]}


def two_layers(**second: Any) -> dict[str, Any]:
    first = TINY_RECIPE["layers"][0]
    return {**TINY_RECIPE, "layers": [first, {**first, **second}]}


def nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)


def mnist_files(**files: bytes) -> Callable[[Path], None]:
    return lambda tmp: write_random_mnist(tmp / "data", **files) and None


def both(*setups: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        for step in setups:
            step(tmp)

    return setup


def exiting_module(tmp: Path) -> None:
    module = unique("exits")
    source = "import sys\nsys.exit(3)\n"
    write_dist(tmp / "site", "hebbkit-exits", {"exits": module}, {module: source}, version="4.5.6")


def symlink_loop(tmp: Path) -> None:
    (tmp / "loop_a.toml").symlink_to(tmp / "loop_b.toml")
    (tmp / "loop_b.toml").symlink_to(tmp / "loop_a.toml")


def fifo(tmp: Path) -> None:
    os.mkfifo(tmp / "pipe.toml")


def many_bad_keys(tmp: Path) -> None:
    data = {**TINY_RECIPE, "data": {"dataset": "mnist", **{f"bad{i}": i for i in range(5000)}}}
    write(tmp / "many.toml", tomli_w.dumps(data))


def huge_file(tmp: Path) -> None:
    write(tmp / "huge.toml", 'name = "x"\n' + "# padding\n" * (2 * 1024**2))


def a_file(name: str) -> Callable[[Path], None]:
    return lambda tmp: write(tmp / name, "not a folder\n")


def claimed_out(tmp: Path) -> None:
    """Another live process holds --out: the test keeps the claim until it ends."""
    claim = FolderClaim(tmp / "out").acquire()
    CLAIMS.append(claim)


CLAIMS: list[FolderClaim] = []

# a plugin's module source, registering one component of a family; {body} is its code
PLUGIN = """
import sys
import torch
from torch import nn
from pydantic import field_validator
from hebbkit.hookspecs import hookimpl
from hebbkit.registry import Params

{body}
"""


def plugin(name: str, body: str, version: str = "4.5.6") -> Callable[[Path], None]:
    def install(tmp: Path) -> None:
        module = unique(name.replace("-", "_"))
        write_dist(
            tmp / "site",
            f"hebbkit-{name}",
            {name: module},
            {module: PLUGIN.format(body=body)},
            version=version,
        )

    return install


RAISING_FACTORY = """
class P(Params):
    pass

def factory(params):
    raise RuntimeError("the factory is broken")

@hookimpl
def register_initializers(register):
    register("broken-init", factory, params=P)
"""

RAISING_COMPETITION = """
class P(Params):
    pass

def factory(params):
    def compete(u):
        raise IndexError("competition fell over")
    return compete

@hookimpl
def register_competitions(register):
    register("falls-over", factory, params=P)
"""

EXITING_HOOK = """
@hookimpl
def register_initializers(register):
    sys.exit(4)
"""

PICKY_PARAMS = """
class P(Params):
    width: int = 1

    @field_validator("width")
    @classmethod
    def _check(cls, value):
        return 10 // (value - value)  # ZeroDivisionError, which pydantic does not collect

def factory(params):
    return lambda shape, generator: torch.zeros(shape)

@hookimpl
def register_initializers(register):
    register("picky", factory, params=P)
"""

NAN_INIT = """
class P(Params):
    pass

@hookimpl
def register_initializers(register):
    register("nan-init", lambda params: lambda shape, g: torch.full(shape, float("nan")), params=P)
"""

BAD_POOL = """
class P(Params):
    pass

class Shrink(nn.Module):
    def forward(self, x):
        return x[:, :1]  # drops channels

@hookimpl
def register_poolings(register):
    register("shrink", lambda params: Shrink(), params=P)
"""

CASES = [
    # --- recipe files ---
    Case(
        "recipe-missing", ["recipe", "validate", "{tmp}/nope.toml"], ["nope.toml", "does not exist"]
    ),
    Case("recipe-is-folder", ["recipe", "validate", "{tmp}"], ["is a folder"]),
    Case(
        "recipe-symlink-loop",
        ["recipe", "validate", "{tmp}/loop_a.toml"],
        ["loop_a.toml", "symbolic links"],
        setup=symlink_loop,
    ),
    Case(
        "recipe-name-too-long",
        ["recipe", "validate", "{tmp}/" + "r" * 300 + ".toml"],
        ["File name too long"],
    ),
    Case(
        "recipe-fifo",
        ["recipe", "validate", "{tmp}/pipe.toml"],
        ["pipe.toml", "not a regular file"],
        setup=fifo,
    ),
    Case(
        "recipe-device-file",
        ["recipe", "validate", "/dev/zero"],
        ["/dev/zero", "not a regular file"],
    ),
    Case(
        "recipe-binary",
        ["recipe", "validate", "{tmp}/binary.toml"],
        ["binary.toml", "Cannot read"],
        setup=lambda tmp: write(tmp / "binary.toml", b"\xff\xfe\x00\x81" * 100),
    ),
    Case(
        "recipe-bad-toml",
        ["recipe", "validate", "{tmp}/bad.toml"],
        ["bad.toml", "not valid TOML"],
        setup=lambda tmp: write(tmp / "bad.toml", 'name = "x"\n[data\n'),
    ),
    Case(
        "recipe-nested-deep",
        ["recipe", "validate", "{tmp}/deep.toml"],
        ["deep.toml", "more than 32 levels deep"],
        setup=lambda tmp: write(tmp / "deep.toml", f"name = {nested(200)}\n"),
    ),
    Case(
        "recipe-nested-recursion",
        ["recipe", "validate", "{tmp}/deeper.toml"],
        ["deeper.toml", "levels deep"],
        setup=lambda tmp: write(tmp / "deeper.toml", f"name = {nested(50_000)}\n"),
    ),
    Case(
        "recipe-too-large",
        ["recipe", "validate", "{tmp}/huge.toml"],
        ["huge.toml", "MiB"],
        setup=huge_file,
    ),
    Case(
        "recipe-thousands-of-bad-keys",
        ["recipe", "validate", "{tmp}/many.toml"],
        ["data.bad0: unknown key", "5000 problems", "and 4980 more problems"],
        setup=many_bad_keys,
    ),
    Case("recipe-empty", VALIDATE, ["name: required key is missing"], recipe={}),
    Case("recipe-no-layers", VALIDATE, ["layers"], recipe={**TINY_RECIPE, "layers": []}),
    Case(
        "recipe-too-many-layers",
        VALIDATE,
        ["layers", "at most 64"],
        recipe={**TINY_RECIPE, "layers": TINY_RECIPE["layers"] * 65},
    ),
    Case(
        "recipe-unknown-component",
        VALIDATE,
        ["layers.0.init.name", "Unknown initializer"],
        recipe=with_layer(init="xavier"),
    ),
    Case(
        "recipe-name-traversal",
        VALIDATE,
        ["name", "../escape"],
        recipe={**TINY_RECIPE, "name": "../escape"},
    ),
    Case("recipe-negative-seed", VALIDATE, ["seed = -1"], recipe={**TINY_RECIPE, "seed": -1}),
    Case("recipe-seed-string", VALIDATE, ["seed", "zero"], recipe={**TINY_RECIPE, "seed": "zero"}),
    Case(
        "recipe-name-key-too-long",
        VALIDATE,
        ["name", "at most 100 characters"],
        recipe={**TINY_RECIPE, "name": "n" * 300},
    ),
    Case(
        "grid-too-many-runs",
        ["grid", "{tmp}/grid.toml", "--dry-run"],
        ["grid.toml plans 10000000000 runs", "at most 100000"],
        setup=lambda tmp: write(
            tmp / "grid.toml",
            tomli_w.dumps(
                {
                    "name": "g",
                    "base": "recipe.toml",
                    "grid": {f"layers.{i}.kernel": list(range(1, 11)) for i in range(10)},
                }
            ),
        ),
    ),
    Case(
        "grid-seeds-range-huge",
        ["grid", "{tmp}/grid.toml", "--seeds", "0-1000000000", "--dry-run"],
        ["--seeds '0-1000000000'", "at most 100000"],
        setup=lambda tmp: write(tmp / "grid.toml", 'name = "g"\nbase = "recipe.toml"\n'),
    ),
    Case(
        "recipe-layers-not-a-list",
        VALIDATE,
        ["layers"],
        recipe={**TINY_RECIPE, "layers": {"channels": 4}},
    ),
    # --- numbers ---
    Case(
        "number-validation-inf",
        [*VALIDATE, "-s", "data.validation=inf"],
        ["data.validation = inf", "finite"],
    ),
    Case(
        "number-validation-nan",
        [*VALIDATE, "-s", "data.validation=nan"],
        ["data.validation = nan", "finite"],
    ),
    Case(
        "number-validation-fraction-above-one",
        [*VALIDATE, "-s", "data.validation=2.5"],
        ["data.validation = 2.5", "whole number"],
    ),
    Case(
        "number-plugin-lr-inf",
        [*VALIDATE, "-s", "layers.0.plasticity.lr=inf"],
        ["layers.0.plasticity.lr = inf"],
    ),
    Case(
        "number-plugin-power-negative-inf",
        [*VALIDATE, "-s", "layers.0.activation.power=-inf"],
        ["layers.0.activation.power"],
    ),
    Case(
        "number-competition-nan",
        [*VALIDATE, "-s", "layers.0.competition.t_invert=nan"],
        ["layers.0.competition.t_invert = nan"],
    ),
    Case("number-readout-lr-negative", [*VALIDATE, "-s", "readout.lr=-1"], ["readout.lr = -1"]),
    Case("number-dropout-one", [*VALIDATE, "-s", "readout.dropout=1.0"], ["readout.dropout = 1.0"]),
    Case(
        "number-epochs-absurd",
        [*VALIDATE, "-s", "hebbian.epochs=1000000000000"],
        ["hebbian.epochs"],
    ),
    Case(
        "number-diagnostics-absurd",
        [*VALIDATE, "-s", "hebbian.diagnostics=100000000"],
        ["hebbian.diagnostics"],
    ),
    Case(
        "number-channels-zero", [*VALIDATE, "-s", "layers.0.channels=0"], ["layers.0.channels = 0"]
    ),
    Case("number-seed-float", [*VALIDATE, "-s", "seed=1e300"], ["seed"]),
    Case(
        "search-uniform-inf",
        ["tune", "{recipe}", "--dry-run"],
        ["layers.0.plasticity.lr", "finite"],
        recipe={
            **TINY_RECIPE,
            "search": {
                "metric": "test_accuracy",
                "space": {"layers.0.plasticity.lr": {"uniform": [0.0, float("inf")]}},
            },
        },
    ),
    Case(
        "search-too-many-trials",
        ["tune", "{recipe}", "--dry-run"],
        ["trials", "100000"],
        recipe={
            **TINY_RECIPE,
            "search": {
                "metric": "test_accuracy",
                "algorithm": "grid",
                "space": {"seed": {"randint": [0, 10**12]}},
            },
        },
    ),
    Case(
        "search-quniform-zero-step",
        ["tune", "{recipe}", "--dry-run"],
        ["quniform needs q > 0"],
        recipe={
            **TINY_RECIPE,
            "search": {
                "metric": "test_accuracy",
                "space": {"readout.lr": {"quniform": [0.1, 0.5, 0.0]}},
            },
        },
    ),
    # --- overrides ---
    Case(
        "override-no-equals",
        [*VALIDATE, "-s", "readout.epochs"],
        ["'readout.epochs'", "dotted.path=VALUE"],
    ),
    Case(
        "override-value-nested-deep",
        [*VALIDATE, "-s", f"description={nested(40)}"],
        ["description", "levels deep"],
    ),
    Case(
        "override-value-recursion",
        [*VALIDATE, "-s", f"description={nested(50_000)}"],
        ["description", "levels deep"],
    ),
    Case("override-path-too-deep", [*VALIDATE, "-s", ".".join(["a"] * 100) + "=1"], ["100 parts"]),
    Case("override-unclosed-quote", [*VALIDATE, "-s", "'layers.0=1"], ["quote", "not closed"]),
    Case(
        "override-index-out-of-range",
        [*VALIDATE, "-s", "layers.9.kernel=3"],
        ["layers.9.kernel", "list of 1 entries"],
    ),
    Case(
        "override-into-a-value",
        [*VALIDATE, "-s", "seed.x=1"],
        ["seed.x", "is a value, not a table"],
    ),
    Case("override-huge-key", [*VALIDATE, "-s", "x" * 100_000 + "=1"], ["unknown key"]),
    # --- shapes ---
    Case(
        "shape-kernel-larger-than-map",
        [*RUN, "-s", "layers.0.kernel=40"],
        ["layers.0.kernel = 40", "28×28"],
    ),
    Case(
        "shape-reflect-padding",
        [*RUN, "-s", "layers.0.padding=28"],
        ["layers.0.padding = 28", "reflect"],
    ),
    Case(
        "shape-circular-padding",
        [*RUN, "-s", "layers.0.padding=29", "-s", 'layers.0.padding_mode="circular"'],
        ["layers.0.padding = 29", "circular"],
    ),
    Case(
        "shape-pool-to-nothing",
        [*RUN, "-s", 'layers.0.pool={name="max", kernel=40}'],
        ["layers.0.pool", "to nothing", "28×28"],
    ),
    Case(
        "shape-dilation", [*RUN, "-s", "layers.0.dilation=20"], ["layers.0.kernel", "dilation 20"]
    ),
    Case(
        "shape-second-layer",
        RUN,
        ["layers.1.kernel = 20", "layer 1's input map of 14×14"],
        recipe=two_layers(kernel=20, padding=0),
    ),
    Case(
        "shape-pool-changes-channels",
        RUN,
        ["layers.0.pool", "channels"],
        recipe=with_layer(pool="shrink"),
        setup=plugin("shrink-pool", BAD_POOL),
    ),
    Case(
        "shape-batch-norm-on-one-pixel",
        [*RUN, "-s", "hebbian.batch_size=1", "-s", 'layers.0.pool={name="max", kernel=28}'],
        ["layers.1.batch_norm", "1×1"],
        recipe=two_layers(kernel=1, padding=0),
    ),
    Case("shape-inspect", [*INSPECT, "-s", "layers.0.kernel=31"], ["layers.0.kernel = 31"]),
    # --- memory ---
    Case(
        "memory-huge-channels",
        [*RUN, "-s", "layers.0.channels=100000000"],
        ["GiB", "layers.0.channels"],
    ),
    Case(
        "memory-huge-channels-inspect",
        [*INSPECT, "-s", "layers.0.channels=100000000"],
        ["GiB", "layers.0.channels"],
    ),
    Case(
        "memory-max-memory-flag", [*RUN, "--max-memory", "1MiB"], ["more than --max-memory (1 MiB)"]
    ),
    Case("memory-max-memory-not-a-size", [*RUN, "--max-memory", "lots"], ["--max-memory 'lots'"]),
    Case(
        "memory-max-memory-env", RUN, ["HEBBKIT_MAX_MEMORY='-5'"], env={"HEBBKIT_MAX_MEMORY": "-5"}
    ),
    # --- flags ---
    Case("flag-device-tpu", [*RUN, "--device", "tpu"], ["--device 'tpu'"]),
    Case("flag-device-bad-index", [*RUN, "--device", "cuda:99"], ["--device 'cuda:99'"]),
    Case(
        "flag-seeds",
        ["grid", "{tmp}/grid.toml", "--seeds", "3-x"],
        ["--seeds '3-x'"],
        setup=lambda tmp: write(tmp / "grid.toml", 'name = "g"\nbase = "recipe.toml"\n'),
    ),
    Case(
        "flag-num-samples-zero",
        ["tune", "{recipe}", "--dry-run", "-n", "0"],
        ["--num-samples 0"],
        recipe={
            **TINY_RECIPE,
            "search": {"metric": "test_accuracy", "space": {"readout.lr": {"choice": [0.1]}}},
        },
    ),
    Case(
        "flag-cpus-nan",
        ["tune", "{recipe}", "--cpus-per-trial", "nan"],
        ["--cpus-per-trial nan"],
        recipe={
            **TINY_RECIPE,
            "search": {"metric": "test_accuracy", "space": {"readout.lr": {"choice": [0.1]}}},
        },
    ),
    Case(
        "flag-address",
        ["tune", "{recipe}", "--address", "bogus"],
        ["--address 'bogus'"],
        recipe={
            **TINY_RECIPE,
            "search": {"metric": "test_accuracy", "space": {"readout.lr": {"choice": [0.1]}}},
        },
    ),
    Case(
        "flag-data-root-is-file",
        ["run", "{recipe}", "--data-root", "{tmp}/notes.txt", "--out", "{out}"],
        ["--data-root", "is a file"],
        setup=a_file("notes.txt"),
    ),
    Case(
        "flag-out-is-file",
        ["run", "{recipe}", "--data-root", "{data}", "--offline", "--out", "{tmp}/taken"],
        ["taken", "is a file"],
        setup=a_file("taken"),
    ),
    Case(
        "flag-out-name-too-long",
        ["run", "{recipe}", "--data-root", "{data}", "--offline", "--out", "{tmp}/" + "o" * 300],
        ["File name too long"],
    ),
    Case(
        "flag-out-parent-is-file",
        ["run", "{recipe}", "--data-root", "{data}", "--offline", "--out", "{tmp}/notes.txt/run"],
        ["Cannot create", "notes.txt"],
        setup=a_file("notes.txt"),
    ),
    # --- environment ---
    Case("env-offline-maybe", RUN, ["HEBBKIT_OFFLINE='maybe'"], env={"HEBBKIT_OFFLINE": "maybe"}),
    Case(
        "env-device-tpu",
        ["run", "{recipe}", "--data-root", "{data}", "--out", "{out}"],
        ["HEBBKIT_DEVICE='tpu'"],
        env={"HEBBKIT_DEVICE": "tpu"},
        absent=["--device"],
    ),
    Case(
        "env-runs-is-file",
        ["run", "{recipe}", "--data-root", "{data}", "--offline"],
        ["HEBBKIT_RUNS", "is a file"],
        env={"HEBBKIT_RUNS": "{tmp}/notes.txt"},
        setup=a_file("notes.txt"),
    ),
    Case(
        "env-data-is-file",
        ["run", "{recipe}", "--offline", "--out", "{out}"],
        ["HEBBKIT_DATA", "is a file"],
        env={"HEBBKIT_DATA": "{tmp}/notes.txt"},
        setup=a_file("notes.txt"),
    ),
    Case(
        "env-disable-autoload-perhaps",
        ["plugins"],
        ["HEBBKIT_DISABLE_PLUGIN_AUTOLOAD='perhaps'"],
        env={"HEBBKIT_DISABLE_PLUGIN_AUTOLOAD": "perhaps"},
    ),
    Case(
        "env-trace-plugins-two",
        ["plugins"],
        ["HEBBKIT_TRACE_PLUGINS='2'"],
        env={"HEBBKIT_TRACE_PLUGINS": "2"},
    ),
    Case(
        "env-load-plugins-shell",
        ["plugins"],
        ["HEBBKIT_LOAD_PLUGINS", "'a;rm -rf /'"],
        env={"HEBBKIT_LOAD_PLUGINS": "a;rm -rf /"},
    ),
    # --- data files ---
    Case(
        "data-root-missing",
        ["run", "{recipe}", "--data-root", "{tmp}/nowhere", "--offline", "--out", "{out}"],
        ["nowhere", "does not exist"],
    ),
    Case(
        "data-idx-negative-dims",
        RUN,
        ["train-images-idx3-ubyte.gz", "negative"],
        setup=mnist_files(train_images=images(4)[:4] + struct.pack(">3i", -4, 28, 28)),
    ),
    Case(
        "data-idx-absurd-dims",
        RUN,
        ["train-images-idx3-ubyte.gz", "cannot hold"],
        setup=mnist_files(
            train_images=bytes([0, 0, 8, 3]) + struct.pack(">3i", 2**31 - 1, 2**31 - 1, 28)
        ),
    ),
    Case(
        "data-idx-zero-images",
        RUN,
        ["train-images-idx3-ubyte.gz", "no images"],
        setup=mnist_files(train_images=images(0), train_labels=labels([])),
    ),
    Case(
        "data-labels-out-of-range",
        RUN,
        [
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "labels are outside 0 .. 9",
            "e.g. 10",
        ],
        setup=mnist_files(train_labels=labels([i % 11 for i in range(64)])),
    ),
    Case(
        "data-count-mismatch",
        RUN,
        [
            "train-images-idx3-ubyte.gz holds 64 images",
            "train-labels-idx1-ubyte.gz holds 60 labels",
        ],
        setup=mnist_files(train_labels=labels([1] * 60)),
    ),
    Case(
        "data-bad-magic",
        RUN,
        ["t10k-images-idx3-ubyte.gz", "bad magic"],
        setup=mnist_files(test_images=b"PK\x03\x04" + b"\x00" * 100),
    ),
    Case(
        "data-truncated",
        RUN,
        ["train-images-idx3-ubyte.gz", "truncated"],
        setup=mnist_files(train_images=images(64)[:-100]),
    ),
    Case(
        "data-trailing-bytes",
        RUN,
        ["train-images-idx3-ubyte.gz", "more than that"],
        setup=mnist_files(train_images=images(64) + b"\x00" * 10),
    ),
    Case(
        "data-ndim-absurd",
        RUN,
        ["train-images-idx3-ubyte.gz", "200 dimensions"],
        setup=mnist_files(train_images=bytes([0, 0, 8, 200]) + b"\x00" * 800),
    ),
    Case(
        "data-float-images",
        RUN,
        ["train-images-idx3-ubyte.gz", "unsigned bytes"],
        setup=mnist_files(train_images=idx_bytes(np.zeros((64, 28, 28), dtype=">f4"), code=0x0D)),
    ),
    Case(
        "data-test-images-other-size",
        RUN,
        ["training images", "(1, 32, 32)"],
        setup=mnist_files(test_images=images(16, 32, 32)),
    ),
    Case(
        "data-train-subset-too-big",
        [*RUN, "-s", "data.train_subset=1000"],
        ["data.train_subset = 1000"],
        setup=mnist_files(),
    ),
    # --- output folders ---
    Case(
        "out-claimed-by-live-run",
        RUN,
        ["in use by another hebbkit process", f"pid {os.getpid()}"],
        setup=claimed_out,
    ),
    Case(
        "out-not-empty",
        RUN,
        ["already exists and is not empty", "--overwrite"],
        setup=lambda tmp: write(tmp / "out" / "keep.txt", "earlier result"),
    ),
    # --- plugins ---
    Case(
        "plugin-exits-at-import",
        ["plugins"],
        ["'exits' (hebbkit-exits 4.5.6", "failed to import", "SystemExit: 3"],
        setup=exiting_module,
    ),
    Case(
        "plugin-exits-in-hook",
        ["plugins"],
        ["'exit-hook' (hebbkit-exit-hook 4.5.6", "register_initializers", "SystemExit"],
        setup=plugin("exit-hook", EXITING_HOOK),
    ),
    Case(
        "plugin-factory-raises",
        RUN,
        [
            "'broken-init' (hebbkit-broken-init 4.5.6",
            "failed to build the initializer",
            "the factory is broken",
        ],
        recipe=with_layer(init="broken-init"),
        setup=both(plugin("broken-init", RAISING_FACTORY), mnist_files()),
    ),
    Case(
        "plugin-component-raises",
        RUN,
        ["'falls-over' (hebbkit-falls-over 4.5.6", "compete(u)", "competition fell over"],
        recipe=with_layer(competition="falls-over"),
        setup=both(plugin("falls-over", RAISING_COMPETITION), mnist_files()),
    ),
    Case(
        "plugin-params-validator-raises",
        [*VALIDATE, "-s", "layers.0.init.width=3"],
        ["ZeroDivisionError", "parameter check"],
        recipe=with_layer(init="picky"),
        setup=plugin("picky", PICKY_PARAMS),
    ),
    Case(
        "plugin-init-returns-nan",
        RUN,
        ["'nan-init'", "NaN"],
        recipe=with_layer(init="nan-init"),
        setup=both(plugin("nan-init", NAN_INIT), mnist_files()),
    ),
    # --- divergence ---
    Case(
        "diverges",
        [*RUN, "-s", "layers.0.plasticity.lr=1e38", "-s", "layers.0.plasticity.normalize='none'"],
        ["diverged"],
        setup=mnist_files(),
        code=3,
    ),
]


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A folder for the case, no plugin switch or HEBBKIT_* value from outside, a fresh
    plugin registry, and fake distributions installable under ``tmp/site``."""
    for name in [
        *PLUGIN_ENV,
        "HEBBKIT_OFFLINE",
        "HEBBKIT_DEVICE",
        "HEBBKIT_RUNS",
        "HEBBKIT_DATA",
        "HEBBKIT_MAX_MEMORY",
    ]:
        monkeypatch.delenv(name, raising=False)
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield tmp_path
    while CLAIMS:
        CLAIMS.pop().release()


def fill(text: str, tmp: Path) -> str:
    return (
        text.replace("{recipe}", str(tmp / "recipe.toml"))
        .replace("{data}", str(tmp / "data"))
        .replace("{out}", str(tmp / "out"))
        .replace("{tmp}", str(tmp))
    )


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case: Case, isolated: Path) -> None:
    tmp = isolated
    (tmp / "data").mkdir(exist_ok=True)
    write(tmp / "recipe.toml", tomli_w.dumps(TINY_RECIPE if case.recipe is None else case.recipe))
    if case.setup is not None:
        case.setup(tmp)
    env = {key: fill(value, tmp) for key, value in case.env.items()}
    if case.fresh_plugins:
        plugins.reset()
    try:
        result = runner.invoke(app, [fill(arg, tmp) for arg in case.args], env=env)
    finally:
        if case.fresh_plugins:
            plugins.reset()
    output = result.output
    assert result.exit_code == case.code, output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in output
    assert "Error:" in output or case.code == 3
    for fragment in case.culprit:
        assert fragment in output, f"{fragment!r} not in:\n{output}"
    for fragment in case.absent:
        assert fragment not in output, f"{fragment!r} in:\n{output}"
    assert len(output) < 30_000, "a message must stay readable"
    assert not (tmp / "out").is_dir() or case.id == "out-not-empty"


def test_at_least_sixty_distinct_cases() -> None:
    assert len({case.id for case in CASES}) == len(CASES) >= 60


def test_unknown_variable_is_named_with_the_likely_one(isolated: Path) -> None:
    """A typo'd HEBBKIT_* variable reads nothing: say so, without stopping the command."""
    write(isolated / "recipe.toml", tomli_w.dumps(TINY_RECIPE))
    result = runner.invoke(
        app, ["recipe", "validate", str(isolated / "recipe.toml")], env={"HEBBKIT_OFLINE": "1"}
    )
    assert result.exit_code == 0, result.output
    assert "HEBBKIT_OFLINE is set but is not a hebbkit setting" in result.output
    assert "Did you mean HEBBKIT_OFFLINE?" in result.output
