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

import copy
import difflib
import fnmatch
import itertools
import json
import re
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hebbkit.errors import HebbkitError, RecipeError, RunFolderError
from hebbkit.search import display, toml_inline

if TYPE_CHECKING:
    from hebbkit.experiment import Machine
    from hebbkit.progress import ProgressReporter
    from hebbkit.recipe import Recipe
    from hebbkit.registry import Registry

if sys.version_info >= (3, 11):
    pass
else:  # Python 3.10: the tomli backport
    pass

#: The file a grid writes into its output folder: the plan, for ``hebbkit report``.
MANIFEST = "grid.json"
SEED_FOLDER = "seed{seed}"
#: Characters a label segment (a folder name) may hold.
SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.,=+-]*$")
RECIPE_SECTIONS = ("data", "hebbian", "layers", "readout", "search")


class GridError(RecipeError):
    """A grid file, one of its keys, or one of its runs' recipes is invalid."""


# --- the file format -------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RunSpec(_Strict):
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


class StudySpec(_Strict):
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


class GridFile(_Strict):
    """A grid file as written (``hebbkit grid`` expands it into runs)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
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


# --- the plan --------------------------------------------------------------------------------


@dataclass
class GridRun:
    """One run of a grid: a label, a seed, its overrides and its validated recipe."""

    label: str
    seed: int
    #: the axes this run sits on: "run" for an explicit run, each [grid] path
    factors: dict[str, str]
    base: Path
    overrides: list[str]
    recipe: Recipe

    @property
    def folder(self) -> Path:
        """Relative to the grid's output folder."""
        return Path(self.label) / SEED_FOLDER.format(seed=self.seed)


@dataclass
class GridPlan:
    """A grid file expanded into validated runs."""

    source: Path
    spec: GridFile
    runs: list[GridRun]
    #: every label of the grid in order (with --only, ``runs`` may hold fewer)
    labels: list[str]
    seeds: list[int]
    #: each label's position on the grid's axes ("run" and the [grid] paths)
    factors: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    def manifest(self, command: list[str]) -> dict[str, Any]:
        """What ``hebbkit report`` needs to know about the grid (written as grid.json)."""
        return {
            "grid": self.spec.name,
            "description": self.spec.description,
            "source": str(self.source),
            "command": command,
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "labels": self.labels,
            "factors": self.factors,
            "seeds": self.seeds,
            "axes": list(self.spec.grid),
            "study": self.spec.study.model_dump(),
            "runs": [
                {
                    "label": run.label,
                    "seed": run.seed,
                    "factors": run.factors,
                    "folder": run.folder.as_posix(),
                    "base": str(run.base),
                    "overrides": run.overrides,
                }
                for run in self.runs
            ],
        }


def read_grid_file(path: Path) -> GridFile:
    """Read and validate a grid file; problems name the key."""
    from hebbkit.recipe import read_toml

    data = read_toml(path, "Grid file", GridError)
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
            shown = "" if isinstance(value, (dict, list)) else f" = {_short(value)}"
            lines.append(f"{where}{shown}: {message}.")
    count = "1 problem" if len(lines) == 1 else f"{len(lines)} problems"
    return f"Invalid grid file {path} ({count}):\n  " + "\n  ".join(lines)


def _allowed(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = GridFile
    if loc and loc[0] == "runs":
        model = RunSpec
    elif loc and loc[0] == "study":
        model = StudySpec
    return [f.alias or name for name, f in model.model_fields.items()]


def _short(value: Any) -> str:
    try:
        text = toml_inline(value)
    except TypeError:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def level_names(path: str, levels: list[Any] | dict[str, Any]) -> dict[str, Any]:
    """Name -> value of an axis; a list's values are named after themselves."""
    if isinstance(levels, dict):
        return dict(levels)
    names = [_value_name(v, levels) for v in levels]
    if len(set(names)) != len(names):
        raise GridError(
            f'grid."{path}": its values {_short(levels)} give repeated names '
            f"({', '.join(names)}); name them instead, e.g. "
            f'"{path}" = {{ a = ..., b = ... }}.'
        )
    return dict(zip(names, levels, strict=True))


def _value_name(value: Any, siblings: list[Any]) -> str:
    if isinstance(value, dict) and "name" in value:
        text = str(value["name"])
        # two levels of the same component: tell them apart by their parameters
        same = [v for v in siblings if isinstance(v, dict) and v.get("name") == value["name"]]
        params = [f"{k}={display(v)}" for k, v in value.items() if k != "name"]
        if len(same) > 1 and params:
            text += "," + ",".join(params)
    elif isinstance(value, str):
        text = value
    else:
        text = display(value)
    text = re.sub(r"[^A-Za-z0-9_.,=+-]+", "_", text).strip("_")
    return text or "value"


def _override(path: str, value: Any) -> str:
    return f"{path}={toml_inline(value)}"


def _apply(data: dict[str, Any], overrides: list[str], where: str) -> dict[str, Any]:
    from hebbkit.recipe import apply_overrides

    try:
        return apply_overrides(data, overrides)
    except RecipeError as error:
        raise GridError(f"{where}: {error}") from None


def _label_template(spec: GridFile) -> str:
    if spec.label is not None:
        return spec.label
    tokens = (["{run}"] if spec.runs else []) + [f"{{{path}}}" for path in spec.grid]
    return "/".join(tokens)


def _render(template: str, values: dict[str, str], source: Path) -> str:
    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise GridError(
                f"Grid file {source}: label = {template!r} uses {{{key}}}, which is not "
                f"{'one of ' + ', '.join('{' + k + '}' for k in values) if values else 'known'}."
            )
        return values[key]

    return re.sub(r"\{([^{}]+)\}", substitute, template)


def load_grid(
    path: Path | str,
    registry: Registry,
    *,
    cli_overrides: list[str] | None = None,
    seeds: list[int] | None = None,
    only: list[str] | None = None,
) -> GridPlan:
    """Expand a grid file into runs; validate each run's recipe and initialise its network.

    All of it happens before any run starts (networks are cached per distinct layer stack).
    """
    from hebbkit.network import initialisation_problem
    from hebbkit.recipe import read_toml, validate_recipe

    built: dict[str, str | None] = {}

    source = Path(path).resolve()
    spec = read_grid_file(source)
    seeds = list(spec.seeds if seeds is None else seeds)
    runs = spec.runs or [RunSpec(label=_default_label(spec, source))]
    axes = {p: level_names(p, levels) for p, levels in spec.grid.items()}
    # names first, then deeper paths: setting a component's name clears its old parameters
    order = sorted(axes, key=lambda p: (p.count("."), not p.endswith(".name"), list(axes).index(p)))
    template = _label_template(spec)

    for where, overrides in [("set", spec.overrides), ("-s", cli_overrides or [])]:
        _check_no_seed(overrides, where)
    for index, run in enumerate(spec.runs):
        _check_no_seed(run.overrides, f"runs.{index}.set")
    bases: dict[Path, dict[str, Any]] = {}
    problems: list[str] = []
    plan_runs: list[GridRun] = []
    labels: list[str] = []
    label_factors: dict[str, dict[str, str]] = {}
    for index, run in enumerate(runs):
        base_text = run.base or spec.base
        if base_text is None:
            raise GridError(
                f"Grid file {source}: runs.{index} ({run.label!r}) has no base recipe. Give "
                'base = "recipe.toml" at the top of the grid file or in the run.'
            )
        base_path = (source.parent / base_text).resolve()
        if base_path not in bases:
            key = f"runs.{index}.base" if run.base else "base"
            try:
                data = read_toml(base_path)
            except RecipeError as error:
                raise GridError(f"Grid file {source}, {key} = {base_text!r}: {error}") from None
            data = {k: v for k, v in data.items() if k != "search"}
            bases[base_path] = _apply(data, spec.overrides, f"Grid file {source}, set")
        try:
            run_data = _apply(bases[base_path], run.overrides, f"runs.{index}.set")
        except GridError as error:
            problems.append(f"run {run.label!r}: {error}")
            run_data = None
        for combination in itertools.product(*(axes[p].items() for p in axes)):
            chosen = dict(zip(axes, combination, strict=True))
            factors = {"run": run.label} if spec.runs else {}
            factors.update({p: name for p, (name, _) in chosen.items()})
            label = _render(template, factors, source) if factors else run.label
            try:
                check_label(label)
            except ValueError as error:
                raise GridError(f"Grid file {source}: {error}.") from None
            if label in labels:
                raise GridError(
                    f"Grid file {source}: two runs are labelled {label!r}. Give the runs "
                    "different labels (or a label template that uses every [grid] path)."
                )
            labels.append(label)
            label_factors[label] = factors
            if run_data is None:
                continue
            levels = [_override(p, chosen[p][1]) for p in order]
            overrides = [*spec.overrides, *run.overrides, *levels, *(cli_overrides or [])]
            try:
                data = _apply(run_data, levels, "grid")
                data = _apply(data, cli_overrides or [], "-s")
            except GridError as error:
                problems.append(f"run {label!r}: {error}")
                continue
            for seed in seeds:
                recipe_data = {**copy.deepcopy(data), "seed": seed}
                try:
                    recipe = validate_recipe(
                        recipe_data, registry, source=f"{base_path.name} with the overrides"
                    )
                except RecipeError as error:
                    problems.append(f"run {label!r}: {error}")
                    break  # the other seeds fail the same way
                if seed == seeds[0] and (
                    refused := initialisation_problem(recipe, registry, built)
                ):
                    problems.append(f"run {label!r}: {refused}")
                    break
                plan_runs.append(
                    GridRun(label, seed, factors, base_path, [*overrides, f"seed={seed}"], recipe)
                )
    if problems:
        shown = "\n".join(problems[:6])
        more = f"\n... and {len(problems) - 6} more." if len(problems) > 6 else ""
        raise GridError(
            f"Grid {source}: {len(problems)} of {len(labels)} runs are not valid recipes, so "
            f"none was started:\n{shown}{more}"
        )
    _check_study(spec, labels, source)
    if only:
        plan_runs = [r for r in plan_runs if any(fnmatch.fnmatchcase(r.label, p) for p in only)]
        if not plan_runs:
            raise GridError(
                f"--only {' '.join(only)} matches none of the labels of {source}: "
                f"{', '.join(labels)}."
            )
    return GridPlan(source, spec, plan_runs, labels, seeds, label_factors)


def _check_no_seed(overrides: list[str], where: str) -> None:
    if any(o.partition("=")[0].strip() == "seed" for o in overrides):
        raise GridError(
            f"{where}: sets seed; a grid's seeds come from seeds = [...] in the grid file "
            "(or --seeds), so that every run is repeated per seed."
        )


def _default_label(spec: GridFile, source: Path) -> str:
    base = spec.base or source.stem
    stem = Path(base).stem
    return re.sub(r"[^A-Za-z0-9_.,=+-]+", "_", stem) or "run"


def _check_study(spec: GridFile, labels: list[str], source: Path) -> None:
    problems = []
    for table in ("figures", "nonzero_weights"):
        for label in getattr(spec.study, table):
            if label not in labels:
                close = difflib.get_close_matches(label, labels, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                problems.append(f"study.{table}.{label}: not a run label of the grid.{hint}")
    if problems:
        raise GridError(
            f"Invalid grid file {source}:\n  "
            + "\n  ".join(problems)
            + f"\n  The labels are: {', '.join(labels)}."
        )


def parse_seeds(text: str) -> list[int]:
    """``--seeds 0-3`` or ``--seeds 0,2,5``."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                low, high = (int(x) for x in part.split("-", 1))
                seeds.extend(range(low, high + 1))
            elif part:
                seeds.append(int(part))
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise HebbkitError(
            f"--seeds {text!r}: give seeds as 0-3 or 0,1,2,3 (each 0 or more, no repeats)."
        )
    return seeds


# --- state of the output folder --------------------------------------------------------------


def is_finished(out: Path, run: GridRun) -> bool:
    return (out / run.folder / "summary.json").is_file()


def check_finished(out: Path, run: GridRun, registry: Registry) -> None:
    """A finished run must have been made by the recipe the grid asks for now.

    The stored recipe is validated again first, so that a field added to hebbkit since (with
    its default) does not count as a change.
    """
    from hebbkit.recipe import flatten_recipe, read_toml, recipe_dict, validate_recipe

    folder = out / run.folder
    try:
        stored = read_toml(folder / "recipe.toml")
    except RecipeError:
        return  # nothing to compare with: trust the summary
    try:
        then = flatten_recipe(
            recipe_dict(validate_recipe(stored, registry, str(folder / "recipe.toml")))
        )
    except RecipeError as error:
        raise RunFolderError(
            f"{folder} holds a finished run of {run.label!r} whose recipe this hebbkit cannot "
            f"read any more ({error}). Delete that folder to run it again, or choose another "
            "--out."
        ) from None
    now = flatten_recipe(recipe_dict(run.recipe))
    changed = sorted(k for k in now.keys() | then.keys() if now.get(k) != then.get(k))
    if changed:
        raise RunFolderError(
            f"{folder} holds a finished run of {run.label!r} (seed {run.seed}) made by a "
            f"different recipe ({', '.join(changed[:6])}{', ...' if len(changed) > 6 else ''} "
            "differ). Delete that folder to run it again with the grid's recipe, or choose "
            "another --out."
        )


def write_manifest(out: Path, plan: GridPlan, command: list[str]) -> None:
    """Write (or merge into) ``<out>/grid.json``; refuse a folder of another grid."""
    path = out / MANIFEST
    manifest = plan.manifest(command)
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            old = {}
        if old.get("grid") not in (None, plan.name):
            raise RunFolderError(
                f"{out} holds the grid {old.get('grid')!r}, not {plan.name!r}. Choose another "
                "--out for this grid."
            )
        # keep the runs of earlier invocations (other seeds, other --only) in the plan
        current = {(r["label"], r["seed"]) for r in manifest["runs"]}
        kept = [r for r in old.get("runs", []) if (r.get("label"), r.get("seed")) not in current]
        manifest["runs"] = kept + manifest["runs"]
    elif out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out} is a file, not a folder.")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2) + "\n")


# --- running ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What became of one run of a grid."""

    run: GridRun
    #: done (finished before), ran (finished now), failed
    status: Literal["done", "ran", "failed"]
    error: str | None = None
    seconds: float = 0.0
    summary: dict[str, Any] | None = field(default=None, repr=False)


def pending(plan: GridPlan, out: Path, registry: Registry) -> tuple[list[GridRun], list[GridRun]]:
    """(finished, to run) — finished runs are checked against the recipe they should have."""
    finished, todo = [], []
    for run in plan.runs:
        if is_finished(out, run):
            check_finished(out, run, registry)
            finished.append(run)
        else:
            todo.append(run)
    return finished, todo


def run_local(
    runs: list[GridRun],
    out: Path,
    registry: Registry,
    machine: Machine,
    *,
    progress: Callable[[], ProgressReporter],
    echo: Callable[[str], None],
) -> list[Outcome]:
    """Run ``runs`` one after another in this process; a failed run does not stop the rest."""
    from hebbkit.experiment import run_recipe

    outcomes = []
    for number, run in enumerate(runs, start=1):
        echo(f"[{number}/{len(runs)}] {run.label} seed {run.seed}")
        started = time.perf_counter()
        try:
            summary = run_recipe(
                run.recipe, out / run.folder, registry, machine, overwrite=True, progress=progress()
            )
        except KeyboardInterrupt:
            raise
        except Exception as error:  # one run's failure must not stop the grid
            if not isinstance(error, HebbkitError):
                traceback.print_exc()  # not the user's doing: show where it broke
            text = f"{type(error).__name__}: {error}"
            notes = getattr(error, "__notes__", [])
            outcomes.append(
                Outcome(run, "failed", " ".join([text, *notes]), time.perf_counter() - started)
            )
            echo(f"    failed: {text}")
            continue
        seconds = time.perf_counter() - started
        outcomes.append(Outcome(run, "ran", None, seconds, summary))
        echo(f"    test accuracy {100 * summary['test_accuracy']:.2f}% in {seconds:.0f} s")
        _free_device_memory(machine)
    return outcomes


def _free_device_memory(machine: Machine) -> None:
    # The next run of a big grid should not find the last run's cached blocks in the way.
    if machine.device.type == "cuda":
        import torch

        torch.cuda.empty_cache()


# --- running through Ray (Tune) -----------------------------------------------------------------


def run_grid_job(config: dict[str, Any], context: dict[str, Any]) -> None:
    """One grid run as a Ray Tune trial (no Ray import: the run folder is the result)."""
    import torch

    from hebbkit.experiment import Machine, resolve_device, run_recipe
    from hebbkit.plugins import get_registry
    from hebbkit.recipe import validate_recipe

    job = context["jobs"][config["job"]]
    folder = Path(job["folder"])
    if (folder / "summary.json").exists():
        return  # finished in an earlier attempt of this trial
    registry = get_registry()
    recipe = validate_recipe(job["recipe"], registry, source=f"grid run {job['label']}")
    torch.set_num_threads(context["threads"])
    machine = Machine(
        data_root=Path(context["data_root"]),
        device=resolve_device(context["device"]),
        offline=context["offline"],
    )
    run_recipe(recipe, folder, registry, machine, overwrite=True)


def run_on_ray(
    runs: list[GridRun], out: Path, options: Any, echo: Callable[[str], None]
) -> list[Outcome]:
    """Run ``runs`` as trials of one Ray Tune experiment (``hebbkit.tune`` connects).

    ``options`` is a :class:`hebbkit.tune.TuneOptions`. Each trial is ``hebbkit run`` into
    the run's folder; Tune only schedules (resources per run, concurrency, cluster).
    """
    from hebbkit import tune as adapter
    from hebbkit.recipe import recipe_dict

    jobs = [
        {
            "label": run.label,
            "seed": run.seed,
            "folder": str((out / run.folder).resolve()),
            "recipe": recipe_dict(run.recipe),
        }
        for run in runs
    ]
    context = {
        "jobs": jobs,
        "data_root": str(options.data_root),
        "device": options.device,
        "offline": options.offline,
        "threads": max(1, int(options.cpus_per_trial)),
    }
    started = time.perf_counter()
    with adapter.connect(options):
        echo(
            f"Ray: {len(jobs)} runs, {options.cpus_per_trial:g} CPUs and "
            f"{options.gpus_per_trial:g} GPUs each"
        )
        names = [f"{job['label']} seed {job['seed']}" for job in jobs]
        errors = adapter.run_jobs(run_grid_job, context, names, out, options)
    seconds = time.perf_counter() - started
    outcomes = []
    for index, run in enumerate(runs):
        summary_path = out / run.folder / "summary.json"
        if summary_path.exists():
            summary = json.loads(summary_path.read_text())
            total = summary.get("seconds", {}).get("total", seconds)
            outcomes.append(Outcome(run, "ran", None, total, summary))
        else:
            error = errors.get(index) or "the trial ended without a summary.json"
            outcomes.append(Outcome(run, "failed", error))
    return outcomes
