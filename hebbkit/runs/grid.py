"""Grids: a grid file expanded into validated runs, run here one after another or through Ray.

The grid file format is :mod:`hebbkit.config.grid_file`. Each run is an ordinary run folder
``<out>/<label>/seed<k>/``; a finished run (one with a summary) is not repeated.

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
import shlex
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from hebbkit.config.grid_file import (
    MAX_RUNS,
    GridFile,
    RunSpec,
    check_label,
    read_grid_file,
)
from hebbkit.config.overrides import apply_overrides
from hebbkit.config.recipe import (
    Recipe,
    flatten_recipe,
    hebbian_hash,
    protocol_of,
    recipe_dict,
    validate_recipe,
)
from hebbkit.config.toml import display, read_toml, short, toml_inline
from hebbkit.engine.progress import ProgressReporter
from hebbkit.engine.shapes import startup_problem
from hebbkit.errors import ClusterLostError, GridError, HebbkitError, RecipeError, RunFolderError
from hebbkit.plugins import get_registry
from hebbkit.registry import Registry
from hebbkit.runs import ray as adapter
from hebbkit.runs.cluster import check_reachable, lost_cluster_message, reachable_now
from hebbkit.runs.folder import (
    HEBBIAN_CACHE_DIR,
    MANIFEST_FILE,
    RECIPE_FILE,
    SEED_FOLDER,
    FolderClaim,
    RunSummary,
    read_summary,
    recorded_precision,
    writing,
)
from hebbkit.runs.folder import (
    is_finished as folder_is_finished,
)
from hebbkit.runs.options import RayOptions
from hebbkit.runs.reuse import HebbianCache, from_run_folder
from hebbkit.runs.run import Machine, RunOrigin, run_recipe
from hebbkit.runs.supervise import ChildLost, run_in_child, tell_parent
from hebbkit.runs.tracking import build_trackers

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
    #: the grid's own protocol for this run (PROTOCOL_PATHS without the command line's -s):
    #: the report marks a run whose recipe differs from it
    protocol: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        """Relative to the grid's output folder."""
        return Path(self.label) / SEED_FOLDER.format(seed=self.seed)

    @property
    def name(self) -> str:
        """``<label>/seed<k>``: how trackers name the run."""
        return self.folder.as_posix()

    @property
    def hebbian_hash(self) -> str:
        return hebbian_hash(self.recipe)


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
                    "protocol": run.protocol,
                }
                for run in self.runs
            ],
        }


def level_names(path: str, levels: list[Any] | dict[str, Any]) -> dict[str, Any]:
    """Name -> value of an axis; a list's values are named after themselves."""
    if isinstance(levels, dict):
        return dict(levels)
    names = [_value_name(v, levels) for v in levels]
    if len(set(names)) != len(names):
        raise GridError(
            f'grid."{path}": its values {short(levels)} give repeated names '
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
    memory_limit: tuple[int, str] | None = None,
) -> GridPlan:
    """Expand a grid file into runs; validate each run's recipe, walk its shapes, check its
    memory against ``memory_limit`` ((bytes, where the limit comes from), if given) and
    initialise its network.

    All of it happens before any run starts (the checks are cached per distinct recipe).
    """
    built: dict[str, str | None] = {}

    source = Path(path).resolve()
    spec = read_grid_file(source)
    seeds = list(spec.seeds if seeds is None else seeds)
    if spec.run_count(len(seeds)) > MAX_RUNS:
        raise GridError(
            f"Grid file {source} plans {spec.run_count(len(seeds))} runs (runs × grid levels × "
            f"seeds); hebbkit plans at most {MAX_RUNS} at once. Split the grid or use fewer "
            "levels or seeds."
        )
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
            # without -s, each run's own recipe is the grid's protocol; with it, ask the grid
            grid_protocol = _grid_protocol(run_data, levels, registry) if cli_overrides else None
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
                    refused := startup_problem(recipe, registry, built, memory_limit)
                ):
                    problems.append(f"run {label!r}: {refused}")
                    break
                plan_runs.append(
                    GridRun(
                        label,
                        seed,
                        factors,
                        base_path,
                        [*overrides, f"seed={seed}"],
                        recipe,
                        (grid_protocol or {})
                        if cli_overrides
                        else protocol_of(recipe_dict(recipe)),
                    )
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


def _grid_protocol(
    run_data: dict[str, Any], levels: list[str], registry: Registry
) -> dict[str, Any] | None:
    """The protocol the grid file itself gives a run (its recipe without -s from the command
    line); None (unknown) if that recipe is not valid on its own."""
    try:
        recipe = validate_recipe(apply_overrides(run_data, levels), registry)
    except RecipeError:
        return None
    return protocol_of(recipe_dict(recipe))


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
                if high - low >= MAX_RUNS:  # never list a billion seeds to refuse them
                    raise HebbkitError(f"--seeds {text!r}: at most {MAX_RUNS} seeds.")
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
    return folder_is_finished(out / run.folder)


def check_finished(out: Path, run: GridRun, registry: Registry, precision: str = "fp32") -> None:
    """A finished run must have been made by the recipe the grid asks for now, and with the
    grid's ``--precision`` (a grid's runs are one precision's, for its mean ± std).

    The stored recipe is validated again first, so that a field added to hebbkit since (with
    its default) does not count as a change.
    """
    folder = out / run.folder
    theirs = recorded_precision(read_summary(folder))
    if theirs != precision:
        raise RunFolderError(
            f"{folder} holds a finished run of {run.label!r} (seed {run.seed}) made with "
            f"--precision {theirs}, but this grid runs with --precision {precision}. Choose "
            f"another --out for the {precision} runs, or run the grid with --precision {theirs}."
        )
    try:
        stored = read_toml(folder / RECIPE_FILE)
    except RecipeError:
        return  # nothing to compare with: trust the summary
    try:
        then = flatten_recipe(
            recipe_dict(validate_recipe(stored, registry, str(folder / RECIPE_FILE)))
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
    path = out / MANIFEST_FILE
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
    summary: RunSummary | None = field(default=None, repr=False)


def finished_precision(plan: GridPlan, out: Path) -> str | None:
    """The precision the runs of ``plan`` already finished in ``out`` used, or None if none is
    (:func:`check_finished` holds the others to it)."""
    for run in plan.runs:
        if is_finished(out, run):
            return recorded_precision(read_summary(out / run.folder))
    return None


def pending(
    plan: GridPlan, out: Path, registry: Registry, precision: str = "fp32"
) -> tuple[list[GridRun], list[GridRun]]:
    """(finished, to run) — finished runs are checked against the recipe and the precision
    they should have."""
    finished, todo = [], []
    for run in plan.runs:
        if is_finished(out, run):
            check_finished(out, run, registry, precision)
            finished.append(run)
        else:
            todo.append(run)
    return finished, todo


@dataclass
class HebbianSharing:
    """Which runs of a grid share a Hebbian phase (same :func:`hebbian_hash`).

    A run to do whose phase a finished run of the grid learnt takes it from that run's
    folder; runs to do that share a phase among themselves go through a cache in the grid's
    output folder, removed once all of them have finished.
    """

    cache: Path
    #: the runs' --precision (cache entries are kept per precision)
    precision: str = "fp32"
    #: hashes shared by two or more runs to do
    shared: set[str] = field(default_factory=set)
    #: hash -> folder of a finished run of the grid
    finished: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def plan(
        cls, out: Path, finished: list[GridRun], todo: list[GridRun], precision: str = "fp32"
    ) -> HebbianSharing:
        keys = [run.hebbian_hash for run in todo]
        sources = {run.hebbian_hash: out / run.folder for run in finished}
        shared = {key for key in keys if keys.count(key) > 1 and key not in sources}
        return cls(out / HEBBIAN_CACHE_DIR, precision, shared, sources)

    def source(self, run: GridRun) -> tuple[Path | None, Path | None]:
        """(``hebbian_from``, ``hebbian_cache``) for ``run``."""
        key = run.hebbian_hash
        if key in self.finished:
            return self.finished[key], None
        return None, self.cache if key in self.shared else None

    def seed_cache(self, todo: list[GridRun], registry: Registry) -> None:
        """Put the phases of finished runs that runs to do need into the cache, for runs
        in other processes (Ray) that cannot be handed a folder each."""
        for run in todo:
            key = run.hebbian_hash
            if key in self.finished and key not in self.shared:
                state = from_run_folder(self.finished[key], run.recipe, registry, self.precision)
                HebbianCache(self.cache, self.precision).store(state, learnt_by=self.finished[key])
                self.shared.add(key)

    def forget(self, outcomes: list[Outcome]) -> None:
        """Remove the cache entries no run needs any more (all their runs finished)."""
        failed = {o.run.hebbian_hash for o in outcomes if o.status == "failed"}
        done = [key for key in self.shared if key not in failed]
        if done:
            HebbianCache(self.cache, self.precision).remove(done)


def run_local(
    runs: list[GridRun],
    out: Path,
    registry: Registry,
    machine: Machine,
    *,
    progress: Callable[[], ProgressReporter],
    echo: Callable[[str], None],
    sharing: HebbianSharing | None = None,
    experiment: str | None = None,
    command: list[str] | None = None,
) -> list[Outcome]:
    """Run ``runs`` one after another in this process; a failed run does not stop the rest.

    Runs that share a Hebbian phase (``sharing``) learn it once.
    """
    sharing = sharing or HebbianSharing(out / HEBBIAN_CACHE_DIR, machine.precision)
    outcomes = []
    for number, run in enumerate(runs, start=1):
        echo(f"[{number}/{len(runs)}] {run.label} seed {run.seed}")
        started = time.perf_counter()
        hebbian_from, hebbian_cache = sharing.source(run)
        try:
            summary = run_recipe(
                run.recipe,
                out / run.folder,
                registry,
                machine,
                overwrite=True,
                progress=progress(),
                hebbian_from=hebbian_from,
                hebbian_cache=hebbian_cache,
                origin=RunOrigin(
                    source=run.base, command=command, experiment=experiment, name=run.name
                ),
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
        reused = " (Hebbian phase reused)" if summary.get("hebbian_from") else ""
        echo(f"    test accuracy {100 * summary['test_accuracy']:.2f}% in {seconds:.0f} s{reused}")
        _free_device_memory(machine)
    sharing.forget(outcomes)
    return outcomes


def _free_device_memory(machine: Machine) -> None:
    # The next run of a big grid should not find the last run's cached blocks in the way.
    if machine.device.type == "cuda":
        torch.cuda.empty_cache()


# --- running through Ray (Tune) -----------------------------------------------------------------


def run_on_ray(
    runs: list[GridRun],
    out: Path,
    options: RayOptions,
    echo: Callable[[str], None],
    *,
    command: list[str],
    sharing: HebbianSharing | None = None,
    experiment: str | None = None,
) -> list[Outcome]:
    """Run ``runs`` as trials of one Ray Tune experiment.

    Each trial is ``hebbkit run`` on its node; its run folder travels back through Ray's
    storage into ``out``. Tune only schedules (resources per run, concurrency, cluster) and
    starts again runs whose node was lost. Runs that share a Hebbian phase go through the
    grid's cache, kept in Ray's storage on a cluster (concurrent ones may each learn it).
    """
    adapter.require_tune("--address")
    folders = [(out / run.folder).resolve() for run in runs]
    job = _GridJob(
        context={
            "jobs": [
                {
                    "label": run.label,
                    "seed": run.seed,
                    "folder": str(folder),
                    "recipe": recipe_dict(run.recipe),
                }
                for run, folder in zip(runs, folders, strict=True)
            ],
            "data_root": str(options.data_root),
            "device": options.device,
            "offline": options.offline,
            "precision": options.precision,
            "threads": max(1, int(options.cpus_per_trial)),
            "track": options.track,
            "hebbian_cache": str(sharing.cache.resolve()) if sharing and sharing.shared else None,
            "experiment": experiment,
            "command": command,
            "runs": {
                str(folder): {"name": run.name, "source": str(run.base)}
                for run, folder in zip(runs, folders, strict=True)
            },
        },
        names=[f"{run.label} seed {run.seed}" for run in runs],
        folders=folders,
        experiment=grid_experiment(out, options),
        options=options,
    )
    started = time.perf_counter()
    if options.remote and not adapter.ray_running():
        check_reachable(options.address, options.address)  # before starting a process
        try:
            errors = run_in_child(_drive_grid, job, echo)
        except ChildLost as lost:
            reachable = reachable_now(lost.notes.get("gcs") or options.address)
            raise ClusterLostError(
                lost_cluster_message(
                    options.address,
                    lost.exit_code,
                    reachable,
                    shlex.join(command),
                    f"Runs that finished are kept in {out}.",
                )
                + " (finished runs are not repeated)."
            ) from None
    else:
        errors = _drive_grid(job, echo)
    seconds = time.perf_counter() - started
    outcomes = []
    for index, run in enumerate(runs):
        if is_finished(out, run):
            summary = read_summary(out / run.folder)
            total = summary.get("seconds", {}).get("total", seconds)
            outcomes.append(Outcome(run, "ran", None, total, summary))
        else:
            error = errors.get(index) or "the run ended without a summary.json"
            outcomes.append(Outcome(run, "failed", error))
    if sharing is not None:
        sharing.forget(outcomes)
    return outcomes


@dataclass
class _GridJob:
    """What the process that drives Ray needs for a grid (recipes as plain data)."""

    context: dict[str, Any]
    names: list[str]
    folders: list[Path]
    experiment: adapter.Experiment
    options: RayOptions


def _drive_grid(job: _GridJob, echo: Callable[[str], None]) -> dict[int, str]:
    options = job.options
    with adapter.connect(options, unit="run") as session:
        tell_parent("gcs", session.gcs_address)
        for warning in session.warnings:
            echo(f"Warning: {warning}")
        registry = get_registry()
        recipes = [
            validate_recipe(j["recipe"], registry, source=f"grid run {j['label']}")
            for j in job.context["jobs"]
        ]
        data = adapter.trial_data(session, recipes, options, echo)
        echo(
            f"Ray: {len(job.names)} runs, {options.cpus_per_trial:g} CPUs and "
            f"{options.gpus_per_trial:g} GPUs each"
            + (f", on {len(session.nodes)} nodes" if options.remote else "")
        )
        return adapter.run_jobs(
            adapter.run_grid_job,
            job.context,
            job.names,
            job.folders,
            job.experiment,
            session,
            options,
            data,
        )


def grid_experiment(out: Path, options: RayOptions) -> adapter.Experiment:
    """Tune's bookkeeping of one invocation of a grid: hidden in ``<out>/.ray`` unless
    ``--storage`` says otherwise (resuming is done by the run folders' summaries)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if options.storage is None:
        return adapter.Experiment(str((out / ".ray").resolve()), f"ray-{stamp}")
    return adapter.Experiment(options.storage, f"{out.name}-{stamp}")


def run_grid(
    plan: GridPlan,
    out: Path,
    registry: Registry,
    *,
    command: list[str],
    machine: Machine | None = None,
    ray: RayOptions | None = None,
    progress: Callable[[], ProgressReporter],
    echo: Callable[[str], None],
) -> list[Outcome]:
    """Run what is left of ``plan`` in ``out``: here (``machine``) or through Ray (``ray``).

    Finished runs are checked against the recipe they should have and kept; ``command``
    (the command line that reproduces the grid) goes into the manifest.
    """
    settings = ray or machine or Machine()
    build_trackers(settings.track, registry)  # a bad --track stops here
    with FolderClaim(out, "Grid folder"):  # one grid at a time in a folder
        finished, todo = pending(plan, out, registry, settings.precision)
        with writing(out / MANIFEST_FILE):
            write_manifest(out, plan, command)
        where = f"on {ray.address}" if ray is not None else "here, one after another"
        echo(
            f"Grid {plan.name}: {len(plan.runs)} runs, {len(finished)} finished before, "
            f"{len(todo)} to run {where}; folder {out}"
        )
        if not todo:
            return []
        sharing = HebbianSharing.plan(out, finished, todo, settings.precision)
        if ray is not None:
            sharing.seed_cache(todo, registry)
            return run_on_ray(
                todo, out, ray, echo, command=command, sharing=sharing, experiment=plan.name
            )
        return run_local(
            todo,
            out,
            registry,
            machine or Machine(),
            progress=progress,
            echo=echo,
            sharing=sharing,
            experiment=plan.name,
            command=command,
        )
