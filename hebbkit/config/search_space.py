"""The ``[search]`` table of a recipe: distributions over dotted recipe paths (no Ray here).

A search space maps dotted recipe paths (the syntax of ``-s`` overrides, ``layers.*.x`` and
list indices included) to a distribution::

    [search.space]
    "layers.0.plasticity.lr" = { loguniform = [0.001, 0.1] }
    "layers.0.kernel" = { randint = [1, 6] }            # both ends included
    "layers.0.activation.name" = { choice = ["softmax", "repu", "triangle"] }

    [search.space."layers.0.activation.power"]    # only applied when the condition holds
    uniform = [0.1, 10]
    when = { "layers.0.activation.name" = ["repu", "triangle"] }

A trial is the recipe with one ``path=value`` override per searched path, validated exactly
as ``hebbkit run -s`` would. This module parses and checks spaces and turns sampled values
into a trial's overrides; :mod:`hebbkit.runs.search` plans and samples searches.
"""

from __future__ import annotations

import copy
import math
import shlex
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BeforeValidator,
    Field,
    field_validator,
    model_serializer,
    model_validator,
)

from hebbkit.config.overrides import apply_overrides, parse_value
from hebbkit.config.toml import Strict, did_you_mean, short, summarise, toml_inline

#: Distributions a searched path can take, and what each one's value is.
DISTRIBUTIONS: dict[str, str] = {
    "choice": "a list of values, one drawn per trial",
    "grid": "a list of values, every one tried (crossed with the other grid paths)",
    "uniform": "[low, high]: a float drawn uniformly",
    "loguniform": "[low, high]: a float drawn uniformly in log space (low > 0)",
    "randint": "[low, high]: an integer, both ends included",
    "quniform": "[low, high, q]: a float drawn uniformly, rounded to a multiple of q",
}
FINITE = ("choice", "grid", "randint")
#: The most trials one search may plan (a grid over wide ranges multiplies quickly).
MAX_TRIALS = 100_000

#: What a trial reports after each read-out epoch, and so what a search can select on.
Metric = Literal["validation_accuracy", "test_accuracy", "train_loss", "train_running_accuracy"]


class Dimension(Strict):
    """One searched path: a distribution, and an optional condition on other paths."""

    kind: Literal["choice", "grid", "uniform", "loguniform", "randint", "quniform"]
    args: list[Any]
    when: dict[str, list[Any]] = Field(default_factory=dict)

    @model_serializer
    def _as_toml(self) -> dict[str, Any]:
        # Written back in the form it is read, so a dumped recipe loads again.
        table: dict[str, Any] = {self.kind: list(self.args)}
        if self.when:
            table["when"] = {key: list(values) for key, values in self.when.items()}
        return table

    @property
    def finite(self) -> bool:
        return self.kind in FINITE

    @property
    def size(self) -> int:
        """How many values a finite dimension has, counted without listing them."""
        if self.kind == "randint":
            return self.args[1] - self.args[0] + 1
        if self.kind in ("choice", "grid"):
            return len(self.args)
        raise ValueError(f"a {self.kind} dimension has no finite list of values")

    @property
    def values(self) -> list[Any]:
        """Every value of a finite dimension."""
        if self.kind == "randint":
            return list(range(self.args[0], self.args[1] + 1))
        if self.kind in ("choice", "grid"):
            return list(self.args)
        raise ValueError(f"a {self.kind} dimension has no finite list of values")

    @property
    def encoded(self) -> bool:
        """Whether its values travel as TOML text (tables and lists: search libraries such
        as Optuna only take scalars as categories)."""
        return self.kind in ("choice", "grid") and any(
            isinstance(value, (dict, list)) for value in self.args
        )

    def sample(self, rng: np.random.Generator) -> Any:
        low, high = ([*self.args, None, None])[:2]
        if self.kind in ("choice", "grid"):
            return copy.deepcopy(self.args[int(rng.integers(len(self.args)))])
        if self.kind == "uniform":
            return float(rng.uniform(low, high))
        if self.kind == "loguniform":
            return float(math.exp(rng.uniform(math.log(low), math.log(high))))
        if self.kind == "randint":
            return int(rng.integers(low, high + 1))
        return quantize(float(rng.uniform(low, high)), self.args[2])


def quantize(value: float, q: float) -> float:
    # round() on the quotient, then trim float noise (0.30000000000000004 -> 0.3)
    return float(np.round(np.round(value / q) * q, 12))


class SchedulerConfig(Strict):
    name: Literal["fifo", "asha"] = Field(
        "fifo", description="fifo runs every trial to the end; asha stops bad trials early"
    )
    grace_period: int = Field(
        1, gt=0, description="asha: read-out epochs every trial runs before it can be stopped"
    )
    max_t: int | None = Field(
        None, gt=0, description="asha: read-out epochs of a full trial (default readout.epochs)"
    )
    reduction_factor: float = Field(3.0, gt=1, description="asha: keep 1/factor at each rung")

    @model_validator(mode="after")
    def _asha_only(self) -> SchedulerConfig:
        # compared with the defaults, not the keys given: a dumped fifo table has them all
        extra = [
            key
            for key in ("grace_period", "max_t", "reduction_factor")
            if getattr(self, key) != type(self).model_fields[key].default
        ]
        if self.name == "fifo" and extra:
            raise ValueError(
                f"{', '.join(sorted(extra))} only apply to the asha scheduler, not fifo"
            )
        if self.max_t is not None and self.grace_period > self.max_t:
            raise ValueError(f"grace_period {self.grace_period} is more than max_t {self.max_t}")
        return self


def _scheduler_shorthand(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


class SearchConfig(Strict):
    """The ``[search]`` table of a recipe (used by ``hebbkit tune``, ignored by ``run``)."""

    metric: Metric = Field("validation_accuracy", description="read-out metric that ranks trials")
    mode: Literal["max", "min"] | None = Field(
        None, description="max or min; default min for a loss, else max"
    )
    num_samples: int | None = Field(
        None,
        gt=0,
        description="trials to sample (random, optuna; default 10); repetitions of the grid "
        "(grid; default 1)",
    )
    algorithm: Literal["random", "grid", "optuna"] = Field(
        "random", description="random sampling, an exhaustive grid, or Optuna's TPE"
    )
    scheduler: Annotated[SchedulerConfig, BeforeValidator(_scheduler_shorthand)] = Field(
        default_factory=SchedulerConfig
    )
    seed: int | None = Field(None, ge=0, description="seed of the sampler (random, optuna)")
    cpus_per_trial: float = Field(1.0, gt=0, description="overridden by --cpus-per-trial")
    gpus_per_trial: float = Field(0.0, ge=0, description="overridden by --gpus-per-trial")
    max_concurrent: int | None = Field(None, gt=0, description="overridden by --max-concurrent")
    space: dict[str, Dimension] = Field(description="dotted recipe path -> distribution")

    @field_validator("space", mode="before")
    @classmethod
    def _parse_space(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError(
                'expected a table of dotted recipe paths, e.g. "layers.0.kernel" = '
                "{ randint = [1, 6] }"
            )
        problems: list[str] = []
        space = {path: _parse_dimension(path, table, problems) for path, table in _leaves(value)}
        if not space and not problems:
            problems.append("the space is empty; search at least one recipe path")
        if problems:
            raise ValueError("; ".join(summarise(problems)))
        return space

    @model_validator(mode="after")
    def _consistent(self) -> SearchConfig:
        if self.mode is None:
            self.mode = "min" if self.metric.endswith("loss") else "max"
        if self.num_samples is None:
            self.num_samples = 1 if self.algorithm == "grid" else 10
        problems = []
        for path, dim in self.space.items():
            for other in dim.when:
                if other not in self.space:
                    problems.append(
                        f"{path!r}: when refers to {other!r}, which is not a searched path"
                        f"{did_you_mean(other, list(self.space))}"
                    )
                elif other == path:
                    problems.append(f"{path!r}: when refers to the path itself")
                elif not self.space[other].finite:
                    problems.append(
                        f"{path!r}: when refers to {other!r}, a {self.space[other].kind} "
                        "dimension; conditions need a choice, grid or randint"
                    )
            if self.algorithm == "grid" and not dim.finite:
                problems.append(
                    f"{path!r}: algorithm grid tries every value, so {dim.kind} is not possible; "
                    "use choice, grid or randint, or algorithm random"
                )
            if self.algorithm == "optuna" and dim.kind == "grid":
                problems.append(
                    f"{path!r}: algorithm optuna does not take grid; use choice (TPE picks "
                    "values), or algorithm random / grid"
                )
        if not problems and (count := self.trial_count()) > MAX_TRIALS:
            problems.append(
                f"the search would run {count} trials, more than the {MAX_TRIALS} hebbkit "
                "plans at once; lower num_samples or narrow the grid and randint ranges"
            )
        if problems:
            raise ValueError("; ".join(summarise(problems)))
        return self

    @property
    def maximize(self) -> bool:
        return self.mode == "max"

    def order(self) -> list[str]:
        """Searched paths in the order their overrides apply: whole tables and component
        names first (setting a name clears the old component's parameters)."""
        paths = list(self.space)
        return sorted(
            paths,
            key=lambda p: (p.count("."), not p.endswith(".name"), paths.index(p)),
        )

    def trial_count(self) -> int:
        """How many trials the search runs."""
        grid = math.prod(self.space[p].size for p in self.enumerated())
        return self.num_samples * grid

    def enumerated(self) -> list[str]:
        """Paths whose every value is tried (the grid), in space order."""
        if self.algorithm == "grid":
            return list(self.space)
        if self.algorithm == "optuna":
            return []
        return [p for p, dim in self.space.items() if dim.kind == "grid"]


def _leaves(table: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Flatten ``[search.space]``: TOML turns an unquoted ``layers.0.kernel`` key into nested
    tables, so descend until a table names a distribution."""
    leaves = []
    for key, value in table.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        nested = (
            isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values())
        )
        if nested and not (set(value) & {*DISTRIBUTIONS, "when"}):
            leaves.extend(_leaves(value, path))
        else:
            leaves.append((path, value))
    return leaves


def _parse_dimension(path: str, table: Any, problems: list[str]) -> Any:
    kinds = ", ".join(DISTRIBUTIONS)
    if not isinstance(table, dict):
        problems.append(
            f"{path!r} = {short(table)}: expected a distribution table such as "
            f"{{ choice = [...] }} (one of {kinds})"
        )
        return None
    unknown = [k for k in table if k not in DISTRIBUTIONS and k != "when"]
    for key in unknown:
        hint = did_you_mean(key, [*DISTRIBUTIONS, "when"])
        problems.append(f"{path!r}: unknown key {key!r}{hint}")
    found = [k for k in table if k in DISTRIBUTIONS]
    if len(found) != 1:
        if not unknown:
            problems.append(
                f"{path!r}: give exactly one distribution ({kinds}), not "
                f"{', '.join(found) or 'none'}"
            )
        return None
    kind = found[0]
    args = table[kind]
    problem = _check_args(kind, args)
    when = table.get("when", {})
    if "when" in table and (not isinstance(when, dict) or not when):
        problem = problem or (
            'when must be a table of searched paths and values, e.g. when = { "layers.0.'
            'activation.name" = ["repu", "triangle"] }'
        )
    if problem:
        problems.append(f"{path!r}: {problem}")
        return None
    when = {str(k): (list(v) if isinstance(v, list) else [v]) for k, v in when.items()}
    return {"kind": kind, "args": list(args), "when": when}


def _check_args(kind: str, args: Any) -> str | None:
    if kind in ("choice", "grid"):
        if not isinstance(args, list) or not args:
            return f"{kind} needs a non-empty list of values, e.g. {kind} = [1, 2, 3]"
        return None
    size = 3 if kind == "quniform" else 2
    shape = "[low, high, q]" if size == 3 else "[low, high]"
    numbers = isinstance(args, list) and all(
        isinstance(a, (int, float)) and not isinstance(a, bool) for a in args
    )
    if not numbers or len(args) != size:
        return f"{kind} needs {shape}, got {short(args)}"
    if kind == "randint":
        if not all(isinstance(a, int) for a in args):
            return f"randint needs whole numbers {shape}, got {short(args)}"
        if args[0] > args[1]:
            return f"randint low {args[0]} is more than high {args[1]}"
        return None
    if not all(math.isfinite(a) for a in args):
        return f"{kind} needs finite numbers, got {short(args)}"
    if args[0] >= args[1]:
        return f"{kind} low {args[0]} must be less than high {args[1]}"
    if kind == "loguniform" and args[0] <= 0:
        return f"loguniform needs low > 0, got {args[0]}"
    if kind == "quniform" and args[2] <= 0:
        return f"quniform needs q > 0, got {args[2]}"
    return None


# --- from sampled values to a trial's overrides ---------------------------------------------


def encode(dim: Dimension, value: Any) -> Any:
    return toml_inline(value) if dim.encoded else value


def decode(search: SearchConfig, config: dict[str, Any]) -> dict[str, Any]:
    """Sampled values of a search library's config (TOML text back to tables)."""
    values = {}
    for path, dim in search.space.items():
        value = config[path]
        values[path] = parse_value(value) if dim.encoded and isinstance(value, str) else value
    return values


# --- from sampled values to a trial recipe ---------------------------------------------------


def active(search: SearchConfig, values: dict[str, Any]) -> dict[str, Any]:
    """The sampled values whose ``when`` conditions hold; the others are not applied."""
    return {
        path: values[path]
        for path, dim in search.space.items()
        if all(values.get(other) in allowed for other, allowed in dim.when.items())
    }


def overrides_for(search: SearchConfig, values: dict[str, Any]) -> list[str]:
    """``path=VALUE`` overrides of a trial, in the order they apply."""
    chosen = active(search, values)
    return [f"{path}={toml_inline(chosen[path])}" for path in search.order() if path in chosen]


def shell_overrides(search: SearchConfig, values: dict[str, Any]) -> str:
    """The trial's overrides as ``hebbkit run`` flags."""
    return " ".join(f"-s {shlex.quote(o)}" for o in overrides_for(search, values))


def trial_data(
    base: dict[str, Any], search: SearchConfig, values: dict[str, Any]
) -> dict[str, Any]:
    """The plain recipe data of one trial: the base, its overrides, no ``[search]``."""
    data = {k: v for k, v in base.items() if k != "search"}
    return apply_overrides(data, overrides_for(search, values), notify=False)
