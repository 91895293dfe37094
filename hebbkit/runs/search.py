"""Searches: plans from a recipe's ``[search]`` table, trial recipes, dry runs, resuming.

No Ray here: :mod:`hebbkit.runs.ray` runs a plan, :mod:`hebbkit.runs.tune` orchestrates a
search from the command line's flags to its folder.
"""

from __future__ import annotations

import copy
import importlib.util
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from hebbkit.config.overrides import apply_overrides
from hebbkit.config.recipe import (
    Recipe,
    flatten_recipe,
    is_hebbian_path,
    read_recipe_file,
    validate_recipe,
)
from hebbkit.config.search_space import SearchConfig, overrides_for, trial_data
from hebbkit.config.toml import did_you_mean, toml_inline
from hebbkit.engine.shapes import startup_problem
from hebbkit.engine.splits import load_splits
from hebbkit.errors import HebbkitError, RecipeError, RunFolderError
from hebbkit.registry import Registry
from hebbkit.runs.folder import SEARCH_FILE, default_run_folder, runs_root

#: [search] keys that say how to run a search, not what it searches: --resume may change them.
RUN_KEYS = ("num_samples", "cpus_per_trial", "gpus_per_trial", "max_concurrent")
#: The sampler's seed when a recipe sets no search.seed, written into the search folder's
#: search.toml: a dry run then shows exactly the trials the search will run.
DEFAULT_SEED = 0


def trial_recipe(
    base: dict[str, Any],
    search: SearchConfig,
    values: dict[str, Any],
    registry: Registry,
    source: str = "<trial>",
) -> Recipe:
    return validate_recipe(trial_data(base, search, values), registry, source=source)


# --- planning: load, check paths, sample -------------------------------------------------


@dataclass
class SearchPlan:
    """A recipe with a ``[search]`` table, checked and ready to run or sample."""

    source: str
    #: the recipe data as written (overrides applied), without ``[search]``
    base: dict[str, Any]
    search: SearchConfig
    name: str
    readout_epochs: int
    #: the ``-s`` overrides given on the command line, applied to the file before searching
    overrides: tuple[str, ...] = ()

    @property
    def shares_hebbian_phases(self) -> bool:
        """Whether trials may repeat a Hebbian phase: some searched path is not Hebbian (a
        read-out key) and every Hebbian one takes few values (no continuous distribution), so
        trials with the same Hebbian values recur and reuse one phase through a cache."""
        space = self.search.space
        hebbian = [path for path in space if is_hebbian_path(path)]
        return len(hebbian) < len(space) and all(space[path].finite for path in hebbian)

    def search_toml(self) -> str:
        """The whole recipe, ``[search]`` included, as the search ran it."""
        return tomli_w.dumps({**self.base, "search": self.search.model_dump(exclude_none=True)})


def load_plan(
    path: Path | str,
    overrides: list[str] | None,
    registry: Registry,
    *,
    num_samples: int | None = None,
) -> SearchPlan:
    """Read a recipe, require its ``[search]`` table and check every searched path."""
    data = apply_overrides(read_recipe_file(path), overrides or [])
    if num_samples is not None:
        if num_samples < 1:
            raise RecipeError(f"--num-samples {num_samples}: give 1 or more.")
        data.setdefault("search", {})
        if isinstance(data["search"], dict):
            data["search"]["num_samples"] = num_samples
    recipe = validate_recipe(data, registry, source=str(path))
    if recipe.search is None:
        raise RecipeError(
            f"Recipe {path} has no search table, so there is nothing to tune. Add a table "
            'search.space of dotted recipe paths, e.g. "layers.0.plasticity.lr" = '
            "{ loguniform = [0.001, 0.1] } (see recipes/mnist_zero_search.toml), or use "
            "hebbkit run for a single run."
        )
    search = recipe.search
    if search.seed is None:
        search = search.model_copy(update={"seed": DEFAULT_SEED})
    base = {k: v for k, v in data.items() if k != "search"}
    check_paths(base, search, registry, str(path))
    if search.metric == "validation_accuracy" and recipe.data.validation <= 0:
        searched = "data.validation" in search.space
        if not searched:
            raise RecipeError(
                f'{path}: search.metric = "validation_accuracy" needs a validation split, but '
                "data.validation is 0. Set data.validation (a fraction such as 0.1, or a "
                'number of images such as 5000), or select on search.metric = "test_accuracy" '
                "(which makes the test set part of the tuning)."
            )
    if search.algorithm == "optuna" and importlib.util.find_spec("optuna") is None:
        raise HebbkitError(
            'search.algorithm = "optuna" needs the optuna package, which is not installed. '
            "Install it with: pip install 'hebbkit[optuna]' (or choose algorithm random / grid)."
        )
    return SearchPlan(
        source=str(path),
        base=base,
        search=search,
        name=recipe.name,
        readout_epochs=recipe.readout.epochs,
        overrides=tuple(overrides or ()),
    )


def check_paths(
    base: dict[str, Any], search: SearchConfig, registry: Registry, source: str
) -> None:
    """Every searched path must name a key of the recipe (with defaults filled in).

    A path guarded by ``when`` is looked up with its condition's first value applied, so a
    parameter of a component that is only sometimes chosen is found.
    """
    problems = []
    resolved: dict[str, Any] = {}
    for path, dim in search.space.items():
        if path == "search" or path.startswith("search."):
            problems.append(f"{path!r}: the search cannot search itself")
            continue
        condition = tuple(sorted((k, toml_inline(v[0])) for k, v in dim.when.items()))
        if condition not in resolved:
            try:
                data = apply_overrides(base, [f"{k}={v}" for k, v in condition], notify=False)
                recipe = validate_recipe(data, registry, source=source)
            except RecipeError as error:
                problems.append(f"{path!r}: its when condition makes the recipe invalid: {error}")
                continue
            # warnings off: pydantic warns about unvalidated component defaults here
            resolved[condition] = recipe.model_dump(mode="json", exclude={"search"}, warnings=False)
        problem = _missing(resolved[condition], path)
        if problem:
            problems.append(f"{path!r} does not exist in the recipe: {problem}")
    if problems:
        raise RecipeError(
            f"Invalid search space in {source} ({len(problems)} "
            f"problem{'s' if len(problems) > 1 else ''}):\n  search.space."
            + "\n  search.space.".join(problems)
        )


def _missing(data: Any, path: str) -> str | None:
    nodes = [data]
    done: list[str] = []
    for part in path.split("."):
        where = ".".join(done) or "the recipe"
        following = []
        for node in nodes:
            if isinstance(node, list):
                if part == "*":
                    following.extend(node)
                elif part.isdigit() and int(part) < len(node):
                    following.append(node[int(part)])
                else:
                    return (
                        f"{where} is a list of {len(node)}; use an index 0..{len(node) - 1} or "
                        f"'*', not {part!r}"
                    )
            elif isinstance(node, dict):
                if part not in node:
                    return f"{where} has no key {part!r}{did_you_mean(part, list(node))}"
                following.append(node[part])
            else:
                return f"{where} is a value, not a table"
        nodes = following
        done.append(part)
    return None


@dataclass
class Sample:
    """One sampled configuration and whether its recipe is valid."""

    index: int
    values: dict[str, Any]
    error: str | None = None
    #: the trial's recipe, when valid
    recipe: Recipe | None = field(default=None, repr=False)


def sample_configs(search: SearchConfig, seed: int | None = None) -> list[dict[str, Any]]:
    """Every trial's values, as random/grid search would draw them (dry run, pre-flight).

    Grid paths are crossed; the other paths are drawn per trial. Optuna picks its own
    points as it learns; a dry run draws them at random.
    """
    rng = np.random.default_rng(search.seed if seed is None else seed)
    grid_paths = search.enumerated()
    points = list(itertools.product(*(search.space[p].values for p in grid_paths)))
    configs = []
    for _ in range(search.num_samples):
        for point in points:
            values = dict(zip(grid_paths, copy.deepcopy(point), strict=True))
            for path, dim in search.space.items():
                if path not in values:
                    values[path] = dim.sample(rng)
            configs.append({path: values[path] for path in search.space})
    return configs


def dry_run(
    plan: SearchPlan,
    registry: Registry,
    seed: int | None = None,
    memory_limit: tuple[int, str] | None = None,
) -> list[Sample]:
    """Sample every trial's configuration, validate its recipe, walk its shapes, check its
    memory against ``memory_limit`` ((bytes, where it comes from), if given) and initialise
    its network.

    Initialising catches what only the components know, such as a shape an initializer
    refuses, before any trial starts (no data, no training, no Ray).
    """
    samples = []
    built: dict[str, str | None] = {}
    for index, values in enumerate(sample_configs(plan.search, seed)):
        sample = Sample(index, values)
        try:
            recipe = trial_recipe(plan.base, plan.search, values, registry, source=f"trial {index}")
        except RecipeError as error:
            sample.error = _condition_hint(str(error), plan.search)
        else:
            sample.error = startup_problem(recipe, registry, built, memory_limit)
            sample.recipe = recipe
        samples.append(sample)
    return samples


def _condition_hint(message: str, search: SearchConfig) -> str:
    if "unknown key" in message and not any(dim.when for dim in search.space.values()):
        return message + (
            "\n  A parameter that only some components have (e.g. power for repu/triangle, "
            'not softmax) needs a condition: when = { "layers.0.activation.name" = '
            '["repu", "triangle"] }.'
        )
    return message


def invalid_samples_error(plan: SearchPlan, samples: list[Sample]) -> RecipeError:
    bad = [s for s in samples if s.error]
    shown = "\n".join(
        f"trial {s.index} ({', '.join(overrides_for(plan.search, s.values))}):\n  "
        + (s.error or "").split("\n", 1)[-1].strip()
        for s in bad[:5]
    )
    more = f"\n... and {len(bad) - 5} more." if len(bad) > 5 else ""
    return RecipeError(
        f"{len(bad)} of {len(samples)} sampled configurations of {plan.source} are not valid "
        f"recipes:\n{shown}{more}\nNarrow the ranges of search.space (or add when conditions) "
        "so that every value is valid; hebbkit tune --dry-run shows the samples."
    )


# --- the search folder --------------------------------------------------------------------


def search_folder(plan: SearchPlan, out_dir: Path | None, resume: bool) -> Path:
    """``--out``; else with ``--resume`` the newest search of the recipe; else a new folder."""
    runs = runs_root()
    if out_dir is not None:
        folder = out_dir.expanduser().resolve()
    elif resume:
        parent = (runs / f"{plan.name}-search").resolve()
        found = sorted(p.parent for p in parent.glob(f"*/{SEARCH_FILE}")) if parent.exists() else []
        if not found:
            raise RunFolderError(
                f"--resume: no search of {plan.name} found under {parent}. Pass the folder "
                "of the search to continue with --out DIR."
            )
        folder = found[-1]
    else:
        folder = default_run_folder(f"{plan.name}-search", runs).resolve()
    if resume:
        if not (folder / SEARCH_FILE).exists():
            raise RunFolderError(
                f"--resume: {folder} holds no {SEARCH_FILE}, so it is not a search folder of "
                "hebbkit tune. Pass the --out folder of the search to continue."
            )
    elif folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise RunFolderError(
            f"Search folder {folder} already exists and is not empty. Continue that search "
            "with --resume, or choose another --out."
        )
    return folder


def resumed_plan(
    plan: SearchPlan, folder: Path, registry: Registry, num_samples: int | None
) -> SearchPlan:
    """The plan stored in the search folder, if the recipe given now asks for the same."""
    stored = load_plan(folder / SEARCH_FILE, [], registry)

    def key(p: SearchPlan) -> dict[str, Any]:
        resolved = validate_recipe(p.base, registry, source=p.source).model_dump(
            mode="json", exclude={"search"}
        )
        search = p.search.model_dump(mode="json", exclude=set(RUN_KEYS))
        return {**resolved, "search": search}

    now, then = flatten_recipe(key(plan)), flatten_recipe(key(stored))
    changed = sorted(k for k in now.keys() | then.keys() if now.get(k) != then.get(k))
    if changed:
        raise RecipeError(
            f"--resume: the recipe differs from the one the search in {folder} started with "
            f"({', '.join(changed[:8])}{', ...' if len(changed) > 8 else ''}). Resume with the "
            f"same recipe and overrides (the search's copy is {folder / SEARCH_FILE}), or start "
            "a new search with another --out."
        )
    if num_samples is not None and num_samples != stored.search.num_samples:
        raise RecipeError(
            f"--resume: --num-samples {num_samples} differs from the {stored.search.num_samples} "
            "the search started with; Ray Tune cannot change it midway. Drop --num-samples."
        )
    return stored


def searches_data(plan: SearchPlan) -> bool:
    """Whether trials may differ in their data (dataset, subsets, validation split)."""
    return any(path == "data" or path.startswith("data.") for path in plan.search.space)


def prepare_data(plan: SearchPlan, registry: Registry, root: Path, offline: bool) -> None:
    """Load (and if allowed, download) the dataset once here, before trials race to do it."""
    recipe = validate_recipe(plan.base, registry, source=plan.source)
    if "data.validation" in plan.search.space or "data.train_subset" in plan.search.space:
        return  # the split depends on the trial; the trials check it
    load_splits(recipe.data, registry, root, download=not offline)
