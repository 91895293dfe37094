"""``hebbkit run``: one recipe from data to run folder, reading top to bottom.

:class:`Machine` holds the settings of the machine, never of the experiment; it is the only
place that reads ``HEBBKIT_DATA``, ``HEBBKIT_OFFLINE``, ``HEBBKIT_DEVICE``,
``HEBBKIT_MAX_MEMORY``, ``HEBBKIT_TRACK`` and ``HEBBKIT_PRECISION`` (parsed by
:mod:`hebbkit.environment`, so a bad value names its variable). A run is checked against its
images and the machine's memory before anything is allocated (:func:`check_fits`).
"""

from __future__ import annotations

import contextlib
import math
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch

from hebbkit.config.recipe import (
    DataConfig,
    Recipe,
    flatten_recipe,
    hebbian_hash,
    recipe_dict,
    recipe_toml,
)
from hebbkit.config.toml import os_reason
from hebbkit.engine.allocator import keep_freed_memory
from hebbkit.engine.diagnostics import describe_layers
from hebbkit.engine.front import FrontCache, input_shapes, row_width
from hebbkit.engine.network import HebbianNetwork
from hebbkit.engine.precision import (
    PRECISION_SETTINGS,
    bf16_caution,
    pinned_numerics,
    precision_problem,
    resolve_precision,
    tf32_state,
)
from hebbkit.engine.prefault import faulting_in
from hebbkit.engine.progress import ProgressReporter, QuietProgress
from hebbkit.engine.readout import accuracy, readout_phase
from hebbkit.engine.seeds import derive_seed
from hebbkit.engine.shapes import (
    Counts,
    RecipePlan,
    declared_classes,
    declared_geometry,
    memory_problem,
    plan_recipe,
    planned_counts,
)
from hebbkit.engine.splits import DataSplits, load_splits
from hebbkit.engine.training import extract_features, feature_dtype, hebbian_phase
from hebbkit.environment import describe_setting, env_flag, env_value
from hebbkit.errors import ResourceError, SettingError
from hebbkit.registry import Registry
from hebbkit.runs.folder import (
    FILTERS_FILE,
    METRICS_FILE,
    RECIPE_FILE,
    SUMMARY_FILE,
    TRACKERS_DIR,
    WEIGHTS_FILE,
    WINNERS_FILE,
    RunSummary,
    staged_folder,
    utc_now,
    write_metrics,
    write_summary,
    write_table,
    writing,
)
from hebbkit.runs.memory import MemoryLimit, memory_limit, parse_size
from hebbkit.runs.pictures import save_filter_pictures
from hebbkit.runs.preloaded import PreloadedData
from hebbkit.runs.provenance import (
    code_provenance,
    component_provenance,
    hardware,
    package_versions,
    peak_memory_bytes,
)
from hebbkit.runs.reuse import HebbianCache, HebbianState, from_run_folder
from hebbkit.runs.signals import signals_held
from hebbkit.runs.tracking import (
    RunTrackers,
    TrackSpec,
    build_trackers,
    parse_track,
    tracker_params,
)
from hebbkit.tracking import Status, TrackedRun


def data_root(flag: str | Path | None = None) -> Path:
    """``--data-root``, else ``HEBBKIT_DATA``, else ``./data`` (absolute)."""
    if flag:
        value, source = str(flag), "--data-root"
    else:
        value, source = env_value("HEBBKIT_DATA") or "data", "HEBBKIT_DATA"
    try:
        root = Path(value).expanduser().resolve()
        is_file = root.exists() and not root.is_dir()
    except (OSError, RuntimeError, ValueError) as error:
        raise SettingError(
            f"{describe_setting(source, value)} is not a usable folder: {os_reason(error)}."
        ) from None
    if is_file:
        raise SettingError(
            f"{describe_setting(source, value)} is a file; it must be the folder that holds the "
            "datasets (e.g. DIR/MNIST/raw/*-ubyte.gz)."
        )
    return root


def offline(flag: bool = False) -> bool:
    """``--offline`` or ``HEBBKIT_OFFLINE=1``: never download. The variable is checked even
    when the flag is given: a bad value is never silently ignored."""
    from_env = env_flag("HEBBKIT_OFFLINE")
    return flag or from_env


def device_source(flag: str | None = None) -> tuple[str | None, str]:
    """The requested device and who asked: ``--device``, else ``HEBBKIT_DEVICE``."""
    if flag is not None and flag.strip():
        return flag.strip(), "--device"
    return env_value("HEBBKIT_DEVICE"), "HEBBKIT_DEVICE"


def resolve_device(name: str | None = None) -> torch.device:
    """``--device``, else ``HEBBKIT_DEVICE``, else cpu; a bad value names where it came from."""
    value, source = device_source(name)
    if value is None:
        return torch.device("cpu")
    setting = describe_setting(source, value)
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise SettingError(f"{setting} is not a device; use cpu, cuda or cuda:N.") from None
    if device.type not in {"cpu", "cuda"}:
        raise SettingError(f"{setting}: hebbkit runs on cpu or cuda (or cuda:N).")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SettingError(
            f"{setting} asked for a GPU, but torch {torch.__version__} sees none here. "
            f"Use cpu{' (or unset HEBBKIT_DEVICE)' if source.startswith('HEBBKIT') else ''}."
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise SettingError(
            f"{setting}: this machine has {torch.cuda.device_count()} GPU(s), cuda:0 to "
            f"cuda:{torch.cuda.device_count() - 1}."
        )
    return device


def max_memory_setting(flag: str | None = None) -> tuple[int | None, str]:
    """``--max-memory``, else ``HEBBKIT_MAX_MEMORY`` (bytes), else None; and who set it."""
    if flag is not None:
        return parse_size(flag, "--max-memory"), "--max-memory"
    value = env_value("HEBBKIT_MAX_MEMORY")
    if value is None:
        return None, ""
    return parse_size(value, "HEBBKIT_MAX_MEMORY"), "HEBBKIT_MAX_MEMORY"


def memory_setting(flag: str | None = None) -> MemoryLimit | None:
    """``--max-memory`` or ``HEBBKIT_MAX_MEMORY`` as a limit, without asking the machine
    (for runs on other machines, through Ray)."""
    limit, source = max_memory_setting(flag)
    return MemoryLimit(limit, source) if limit is not None else None


def local_memory_limit(device: str) -> MemoryLimit | None:
    """What a run on this machine's ``device`` (cpu or cuda) could ever hold: the bound of
    the checks before a grid or search starts (each run checks free memory when it starts)."""
    return memory_limit(torch.device(device), None, "", total=True)


def track_setting(flags: list[str] | None = None) -> list[TrackSpec]:
    """``--track NAME[:URI]`` (repeatable), else ``HEBBKIT_TRACK`` (specs separated by
    commas), else no tracker."""
    if flags is not None:  # given, even as none at all
        return parse_track(flags, "--track")
    return parse_track(os.environ.get("HEBBKIT_TRACK", "").split(","), "HEBBKIT_TRACK")


def precision_setting(flag: str | None = None) -> str:
    """``--precision``, else ``HEBBKIT_PRECISION``, else auto; checked for its spelling (auto
    is resolved for the device later, :func:`hebbkit.engine.precision.resolve_precision`)."""
    if flag is not None and flag.strip():
        raw, source = flag, "--precision"
    else:
        raw, source = env_value("HEBBKIT_PRECISION") or "auto", "HEBBKIT_PRECISION"
    value = raw.strip().lower()
    if value not in PRECISION_SETTINGS:
        raise SettingError(
            f"{describe_setting(source, raw)} is not a precision; use "
            f"{', '.join(PRECISION_SETTINGS)} (auto, the default: bf16-auto on a CPU with "
            "bfloat16 instructions, else fp32; fp32: strict float32; bf16: bfloat16 products in "
            "the Hebbian phase; bf16-auto: bf16 only in layers wide enough to gain from it; "
            "tf32: TF32 on CUDA GPUs)."
        )
    return value


@dataclass
class Machine:
    """Settings of the machine, not of the experiment: they never live in a recipe."""

    data_root: Path = field(default_factory=data_root)
    device: torch.device = field(default_factory=lambda: resolve_device(None))
    offline: bool = field(default_factory=offline)
    #: the experiment trackers every run on this machine logs to
    track: list[TrackSpec] = field(default_factory=track_setting)
    #: the most memory a run may plan to use (None: what the machine has free)
    max_memory: int | None = field(default_factory=lambda: max_memory_setting()[0])
    max_memory_source: str = field(default_factory=lambda: max_memory_setting()[1])
    #: numerics of the Hebbian phase and the features pass (hebbkit.engine.precision)
    precision: str = field(default_factory=precision_setting)
    #: data already in memory (shipped by a Ray driver); anything else is read from data_root
    preloaded: tuple[PreloadedData, ...] = ()

    def __post_init__(self) -> None:
        self.precision = resolve_precision(self.precision, self.device)
        problem = precision_problem(self.precision, self.device)
        if problem:
            raise SettingError(f"--precision {self.precision}: {problem} (device {self.device}).")

    @classmethod
    def from_flags(
        cls,
        data: str | Path | None = None,
        device: str | None = None,
        no_download: bool = False,
        track: list[str] | None = None,
        max_memory: str | None = None,
        precision: str | None = None,
    ) -> Machine:
        """From command-line flags, each falling back to its ``HEBBKIT_*`` variable."""
        limit, source = max_memory_setting(max_memory)
        return cls(
            data_root(data),
            resolve_device(device),
            offline(no_download),
            track_setting(track),
            limit,
            source,
            precision_setting(precision),
        )

    def memory_limit(self, total: bool = False) -> MemoryLimit | None:
        """What a run on this machine may plan to hold: ``--max-memory``, else what is free
        (with ``total``: what the machine has at all; see :mod:`hebbkit.runs.memory`)."""
        return memory_limit(self.device, self.max_memory, self.max_memory_source, total)

    def load_splits(self, data: DataConfig, registry: Registry) -> DataSplits:
        """The splits of ``data``: from the preloaded data if it holds them, else from disk."""
        for preloaded in self.preloaded:
            splits = preloaded.splits_for(data)
            if splits is not None:
                return splits
        return load_splits(data, registry, self.data_root, download=not self.offline)


class Stopwatch:
    """Seconds per named phase of a run, and in all."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._start = time.perf_counter()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def total(self) -> float:
        return time.perf_counter() - self._start


def seed_everything(recipe: Recipe, device: torch.device) -> None:
    torch.manual_seed(derive_seed(recipe.seed, "global"))
    if recipe.deterministic and device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # torch's first call imports torch._inductor (about a second), which swallows Ctrl-C
    with signals_held():
        torch.use_deterministic_algorithms(recipe.deterministic, warn_only=recipe.deterministic)
    if recipe.deterministic:
        torch.backends.cudnn.benchmark = False


def check_fits(
    recipe: Recipe,
    registry: Registry,
    machine: Machine,
    image_shape: Sequence[int],
    counts: Counts,
    classes: int,
) -> RecipePlan:
    """Walk the recipe's shapes and estimate its memory for these images; refuse (exit 2)
    with the layer and the figure when it does not fit, before anything is allocated."""
    plan = plan_recipe(
        recipe, registry, image_shape, counts, device=machine.device.type, classes=classes
    )
    limit = machine.memory_limit()
    if limit is not None:
        problem = memory_problem(plan, limit.bytes, limit.what)
        if problem:
            raise ResourceError(f"Recipe {recipe.name}: {problem}")
    return plan


def keep_front(
    recipe: Recipe,
    network: HebbianNetwork,
    plan: RecipePlan,
    machine: Machine,
    image_shape: Sequence[int],
    count: int,
) -> FrontCache | None:
    """A :class:`FrontCache` for the layers' inputs, where it pays and fits: a CPU run of
    several layers learning one at a time, whose rows take at most half of what the memory
    limit leaves above the run's estimated peak (half: other runs may start beside it)."""
    greedy = recipe.hebbian.mode == "greedy" and recipe.hebbian.epochs > 0
    if machine.device.type != "cpu" or len(recipe.layers) < 2 or not greedy:
        return None
    limit = machine.memory_limit()
    shapes = input_shapes(network, image_shape)
    need = count * row_width(shapes) * 4
    if limit is None or 2 * need > limit.bytes - plan.memory.device_bytes:
        return None
    return FrontCache.for_shapes(shapes, count, machine.device)


def preflight(recipe: Recipe, registry: Registry, machine: Machine) -> RecipePlan | None:
    """:func:`check_fits` on the images the dataset declares (before reading them); None
    when the dataset declares nothing (then the run checks once the data is read)."""
    image_shape, sizes = declared_geometry(recipe, registry)
    if image_shape is None or sizes is None:
        return None
    counts = planned_counts(recipe.data, sizes)
    classes = declared_classes(recipe, registry)
    return check_fits(recipe, registry, machine, image_shape, counts, classes)


def inspect_recipe(recipe: Recipe, registry: Registry, machine: Machine) -> dict[str, Any]:
    """``hebbkit inspect``: each layer's map sizes and, right after initialisation, its
    weights; and the run's memory estimate (checked before the network is built)."""
    plan = preflight(recipe, registry, machine)
    if plan is None:  # the dataset declares nothing: read its test set to see its images
        spec = recipe.data.dataset
        component = registry.get("dataset", spec.name)
        with component.call(f"failed to read the dataset {spec.name!r}"):
            images = component.build(spec).load(
                machine.data_root, train=False, download=not machine.offline
            )
        counts = Counts(len(images), 0, len(images), 0, 2 * len(images))
        shape = tuple(images.images.shape[1:])
        plan = check_fits(recipe, registry, machine, shape, counts, len(images.classes))
    network = HebbianNetwork.from_recipe(recipe, plan.image_shape[0], registry)
    layers = describe_layers(network)
    for row, shape in zip(layers, plan.layers, strict=True):
        row["input_map"] = list(shape.input)
        row["output_map"] = list(shape.output)
    limit = machine.memory_limit()
    return {
        "layers": layers,
        "memory": {
            "device": plan.memory.device,
            "peak_bytes": plan.memory.device_bytes,
            "host_bytes": plan.memory.host_bytes,
            "peak_phase": plan.memory.peak_phase,
            "limit_bytes": limit.bytes if limit else None,
            "limit": limit.what if limit else None,
            "parts": plan.memory.rows(),
        },
    }


def _run_counts(splits: DataSplits) -> Counts:
    unlabeled = 0 if splits.unlabeled is None else int(splits.unlabeled.shape[0])
    validation = 0 if splits.validation is None else len(splits.validation)
    held = len(splits.train) + validation + len(splits.test)
    return Counts(len(splits.train), validation, len(splits.test), unlabeled, held + unlabeled)


def _save_partial(folder: Path, rows: list[dict[str, Any]], winners: list[dict[str, Any]]) -> None:
    """Write what a failing run measured, as far as the disk lets us (the run's own error
    is the one to report)."""
    with contextlib.suppress(Exception):
        write_metrics(folder, rows)
        if winners:
            write_table(folder / WINNERS_FILE, winners)


@dataclass(frozen=True)
class RunOrigin:
    """Where a run comes from, and how trackers name it."""

    #: the recipe file (its git commit and dirty flag are recorded)
    source: Path | None = None
    #: the command line that makes the run (default: this process's)
    command: list[str] | None = None
    #: what groups the run in a tracker (default: the recipe's name)
    experiment: str | None = None
    #: the run's name in a tracker (default: ``<recipe name>/<run folder name>``)
    name: str | None = None
    #: the folder the run ends up in, where it is written elsewhere first (a Ray trial on
    #: its node); what trackers and reusing runs are told (default: the run's own folder)
    folder: Path | None = None

    @classmethod
    def from_context(cls, context: dict[str, Any], folder: Path) -> RunOrigin:
        """The origin of a Ray trial's run meant for ``folder`` of the output, from what the
        driver put in the trial context: ``source``, ``command``, ``experiment``, and per run
        folder in ``runs`` its ``name`` (default: the folder's name, a trial id) and
        ``source``."""
        own = context.get("runs", {}).get(str(folder), {})
        source = own.get("source") or context.get("source")
        return cls(
            source=Path(source) if source else None,
            command=context.get("command"),
            experiment=context.get("experiment"),
            name=own.get("name") or folder.name,
            folder=folder,
        )


def run_recipe(
    recipe: Recipe,
    out: Path,
    registry: Registry,
    machine: Machine | None = None,
    *,
    overwrite: bool = False,
    progress: ProgressReporter | None = None,
    on_metrics: Callable[[dict[str, Any]], None] | None = None,
    hebbian_from: Path | None = None,
    hebbian_cache: Path | None = None,
    origin: RunOrigin | None = None,
) -> RunSummary:
    """Train and evaluate ``recipe``; write the run folder ``out``; return the summary.

    ``hebbian_from``: take the Hebbian weights of that finished run (checked to match) and
    train only the read-out. ``hebbian_cache``: a folder of Hebbian phases shared with other
    runs; the phase is taken from it when there, else stored there once learnt. Metrics rows
    reach ``metrics.parquet``, the trackers, ``progress`` and ``on_metrics`` as they happen.
    """
    machine = machine or Machine()
    progress = progress or QuietProgress()
    origin = origin or RunOrigin()
    device = machine.device
    # everything that can refuse the run does so before any work
    trackers = RunTrackers(build_trackers(machine.track, registry), progress.log)
    key = hebbian_hash(recipe)
    reused = (
        from_run_folder(hebbian_from, recipe, registry, machine.precision) if hebbian_from else None
    )
    cache = HebbianCache(hebbian_cache, machine.precision) if hebbian_cache is not None else None
    if reused is None and cache is not None:
        reused = cache.load(key)
    preflight(recipe, registry, machine)  # shapes and memory, before the folder is claimed
    git = code_provenance(origin.source)
    command = list(origin.command or sys.argv)
    rows: list[dict[str, Any]] = []
    winners: list[dict[str, Any]] = []

    keep_freed_memory()  # same numbers, fewer page faults per step
    started_at = utc_now()
    clock = Stopwatch()
    with staged_folder(out, overwrite) as folder, pinned_numerics(machine.precision):
        progress.log(f"Run folder {out} (written in {folder} until the run ends)")
        with writing(folder / RECIPE_FILE):
            (folder / RECIPE_FILE).write_text(recipe_toml(recipe))

        def record(row: dict[str, Any]) -> None:
            rows.append(row)
            with writing(folder / METRICS_FILE):
                write_metrics(folder, rows, live=True)  # readable while the run goes
            if row.get("phase") == "hebbian" and winners:
                with writing(folder / WINNERS_FILE):
                    write_table(folder / WINNERS_FILE, winners)
            trackers.log_row(row)
            progress.metrics(row)
            if on_metrics is not None:
                on_metrics(row)

        trackers.start(
            TrackedRun(
                experiment=origin.experiment or recipe.name,
                name=origin.name or f"{recipe.name}/{out.name}",
                folder=origin.folder or out,
                live_folder=folder,
                files=folder / TRACKERS_DIR,
                params=tracker_params(flatten_recipe(recipe_dict(recipe))),
                tags=_tags(recipe, key, git, command, reused),
            )
        )
        try:
            seed_everything(recipe, device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            with clock.phase("data"):
                splits = machine.load_splits(recipe.data, registry)
            image_shape = tuple(splits.train.images.shape[1:])
            classes = len(splits.train.classes)
            plan = check_fits(recipe, registry, machine, image_shape, _run_counts(splits), classes)
            network = HebbianNetwork.from_recipe(recipe, image_shape[0], registry).to(device)
            initial_filters = network.layers[0].weight.detach().cpu().clone()
            product_dtypes = network.set_precision(machine.precision)
            if caution := bf16_caution(product_dtypes, device):
                progress.log(caution)
            feature_size = math.prod(network.feature_shape(image_shape))
            dtype = feature_dtype(recipe.readout.feature_dtype, len(splits.train), feature_size)
            named = {"train": splits.train, "test": splits.test}
            if splits.validation is not None:
                named["validation"] = splits.validation
            # on a CPU, allocated ahead so that their pages fault in while the Hebbian phase
            # computes (on a GPU they would only raise the Hebbian phase's peak memory)
            caches = {
                name: torch.empty(len(images), feature_size, dtype=dtype, device=device)
                for name, images in named.items()
                if device.type == "cpu"
            }
            front = (
                keep_front(recipe, network, plan, machine, image_shape, len(splits.hebbian_images))
                if reused is None
                else None
            )
            ahead = ([front.storage] if front is not None else []) + list(caches.values())
            with faulting_in(ahead):
                with clock.phase("hebbian"):
                    if reused is not None:
                        progress.log(f"Hebbian phase taken from {reused.source}")
                        network.load_state_dict(reused.network)
                        winners.extend(reused.winners)
                        for row in reused.rows:
                            record(dict(row))
                        layer_timings = [
                            {"seconds": t["seconds"], "images_per_second": t["images_per_second"]}
                            for t in reused.layers
                        ]
                    else:
                        layer_timings = hebbian_phase(
                            network,
                            splits.hebbian_images,
                            recipe.hebbian,
                            recipe.seed,
                            device,
                            progress,
                            record,
                            winners,
                            front,
                        )
                        if cache is not None:
                            learnt = _hebbian_state(key, network, rows, winners, layer_timings)
                            cache.store(learnt, learnt_by=origin.folder or out)
                cached: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
                kept = front if front is not None and front.filled else None
                with clock.phase("features"):
                    for name, images in named.items():
                        cached[name] = (
                            extract_features(
                                network,
                                images.images,
                                dtype,
                                device,
                                progress,
                                f"Features ({name})",
                                out=caches.pop(name, None),
                                front=kept if name == "train" else None,
                            ),
                            images.labels,
                        )
            front_cache = (
                {"layer": front.layer, "bytes": front.bytes} if front is not None else None
            )
            del front, kept, ahead  # the front rows are not needed again: freed before the read-out
            evaluations = {name: value for name, value in cached.items() if name != "train"}
            with clock.phase("readout"):
                result = readout_phase(
                    cached["train"],
                    evaluations,
                    classes,
                    recipe.readout,
                    recipe.seed,
                    device,
                    progress,
                    record,
                )
            final = {
                f"{name}_accuracy": accuracy(result.model, x, y.to(device))
                for name, (x, y) in cached.items()
            }
            summary = cast(
                RunSummary,
                {
                    "recipe": recipe.name,
                    "seed": recipe.seed,
                    "dataset": recipe.data.dataset.name,
                    **final,
                    "train_images": len(splits.train),
                    "validation_images": len(splits.validation)
                    if splits.validation is not None
                    else 0,
                    "test_images": len(splits.test),
                    "feature_size": feature_size,
                    "feature_dtype": str(dtype).removeprefix("torch."),
                    "front_cache": front_cache,
                    "precision": machine.precision,
                    **({"tf32": tf32_state()} if device.type == "cuda" else {}),
                    "seconds": {**clock.seconds, "total": clock.total()},
                    "hebbian_layers": [
                        {
                            "layer": i,
                            "seconds": t["seconds"],
                            "images_per_second": t["images_per_second"],
                            "product_dtype": product_dtypes[i],
                        }
                        for i, t in enumerate(layer_timings)
                    ],
                    "hebbian_images_per_second": [t["images_per_second"] for t in layer_timings],
                    "hebbian_hash": key,
                    **({"hebbian_from": reused.source} if reused is not None else {}),
                    **peak_memory_bytes(device),
                    "hardware": hardware(device),
                    "versions": package_versions(),
                    "components": component_provenance(recipe, registry),
                    "command": command,
                    "git": git,
                    "started_at": started_at,
                    "finished_at": utc_now(),
                },
            )
            with writing(folder / WEIGHTS_FILE):
                torch.save(
                    {"network": network.state_dict(), "readout": result.model.state_dict()},
                    folder / WEIGHTS_FILE,
                )
            with writing(folder / FILTERS_FILE):
                save_filter_pictures(
                    initial_filters, network.layers[0].weight, folder / FILTERS_FILE
                )
            with writing(folder / METRICS_FILE):
                write_metrics(folder, rows)
            if winners:
                with writing(folder / WINNERS_FILE):
                    write_table(folder / WINNERS_FILE, winners)
            with writing(folder / SUMMARY_FILE):
                write_summary(folder, summary)
            trackers.finish("finished", summary)
        except BaseException as error:
            _save_partial(folder, rows, winners)
            stopped = isinstance(error, (KeyboardInterrupt, SystemExit))
            status: Status = "stopped" if stopped else "failed"
            trackers.finish(status, {"error": f"{type(error).__name__}: {error}"})
            raise
        finally:
            progress.close()
    return summary


def _tags(
    recipe: Recipe,
    key: str,
    git: dict[str, dict[str, Any]],
    command: list[str],
    reused: HebbianState | None,
) -> dict[str, str]:
    """What a tracker records about a run besides its recipe."""
    tags = {
        "hebbkit.version": package_versions().get("hebbkit", "unknown"),
        "hebbkit.seed": str(recipe.seed),
        "hebbkit.dataset": recipe.data.dataset.name,
        "hebbkit.hebbian_hash": key,
        "hebbkit.command": shlex.join(command),
    }
    for where, state in git.items():
        dirty = " (dirty)" if state.get("dirty") else ""
        tags[f"hebbkit.git.{where}"] = f"{state['commit']}{dirty}"
    if reused is not None:
        tags["hebbkit.hebbian_from"] = reused.source
    return tags


def _hebbian_state(
    key: str,
    network: HebbianNetwork,
    rows: list[dict[str, Any]],
    winners: list[dict[str, Any]],
    timings: list[dict[str, float]],
) -> HebbianState:
    """The Hebbian phase just learnt, as a cache entry (on the CPU)."""
    return HebbianState(
        hebbian_hash=key,
        network={name: value.detach().cpu() for name, value in network.state_dict().items()},
        rows=[dict(row) for row in rows],
        winners=list(winners),
        layers=[
            {"layer": i, "seconds": t["seconds"], "images_per_second": t["images_per_second"]}
            for i, t in enumerate(timings)
        ],
    )
