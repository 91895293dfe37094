"""The Ray Tune adapter: the only module of hebbkit that imports Ray.

Ray's API has moved often (``tune.run`` -> ``Tuner``, ``ray.air`` -> ``ray.train`` ->
``ray.tune.report``, ``local_dir`` -> ``storage_path``); keeping every Ray call here means
one file to change when it moves again. Written against Ray 2.60 (``ray.tune.report``,
``ray.tune.RunConfig``: Ray >= 2.41). Ray is imported when a function here first needs it,
so that importing this module (and the grid and search modules above it) never needs Ray.

A trial is exactly ``hebbkit run``: it runs the trial's recipe into a scratch folder on its
own node, reports the metrics of every read-out epoch to Tune (so that ASHA can stop bad
trials early) and persists the finished run folder as the trial's checkpoint in Ray's
storage. Nothing assumes a disk shared with the driver: the driver gathers run folders from
that storage into the output folder, and can send the data through Ray's object store.

Failures are sorted: an exception of the run itself (a bad value found late, divergence) is
reported as the trial's result, so that Tune records it once and never retries it; a lost
node or worker process is an error Tune retries (``FailureConfig``) and ``--resume`` reruns.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hebbkit.config.recipe import Recipe, hebbian_hash, recipe_dict, validate_recipe
from hebbkit.config.search_space import SearchConfig, decode, encode
from hebbkit.errors import HebbkitError, TuneSetupError
from hebbkit.plugins import get_registry
from hebbkit.runs.cluster import (
    Node,
    autoscales,
    can_host,
    check_fits,
    check_reachable,
    connect_error,
    first_line,
    missing_data_error,
    nodes_from_ray,
)
from hebbkit.runs.folder import (
    ERROR_FILE,
    HEBBIAN_CACHE_DIR,
    STOPPED_FILE,
    STOPPED_SUFFIX,
    TRIALS_DIR,
    RunSummary,
    failed_attempts,
    is_finished,
    leftovers,
    read_metrics,
    read_summary,
)
from hebbkit.runs.options import RayOptions
from hebbkit.runs.preloaded import PreloadedData, data_key, preload
from hebbkit.runs.reuse import HebbianCache
from hebbkit.runs.run import Machine, RunOrigin, resolve_device, run_recipe
from hebbkit.runs.search import SearchPlan, trial_recipe
from hebbkit.runs.storage import (
    download,
    fetch_file,
    join,
    names,
    pack,
    pack_folder,
    remove,
    resolve,
    store_file,
    unpack,
    upload,
)
from hebbkit.runs.storage import write_text as write_storage_text
from hebbkit.runs.trials import EPOCH_METRICS, TrialRecord

#: Ray puts Unix sockets at <temp>/session_<date>_<time>_<us>_<pid>/sockets/plasma_store,
#: and a socket path may hold at most 107 bytes on Linux.
SOCKET_PATH_LIMIT = 107
SESSION_SUFFIX = len("/session_2026-01-01_00-00-00_000000_4194304/sockets/plasma_store")

#: What a trial reports besides its metrics: how it ended, why it failed, where it ran.
STATUS, ERROR, NODE = "hebbkit_status", "hebbkit_error", "hebbkit_node"
#: A trial's configuration when hebbkit drew it (random and grid searches): its index.
TRIAL_INDEX = "hebbkit_trial"
#: In a trial's folder in Ray's storage: unfinished run folders (failed or stopped), each
#: followed by an empty ``<name>.done`` once it is complete.
PARTIAL_DIR, DONE_SUFFIX = "hebbkit_unfinished", ".done"
#: In a trial's folder in Ray's storage, beside each checkpoint known to be whole: an empty
#: ``<mark><checkpoint name>``.
COMPLETE_MARK = "hebbkit_complete-"
#: seconds the driver waits at most for a stopped trial to persist its partial run folder
#: (a trial unwinds slowly on a loaded machine; the wait ends as soon as the folder is there)
STOPPED_WAIT = 30.0
#: terminal colour codes in Ray's messages
ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: where Ray's monitor (on every head) keeps its report: node types, pending launches
AUTOSCALER_STATUS = b"__autoscaling_status"
#: attempts at joining through Ray Client (its proxy sometimes fails to start a server)
CLIENT_ATTEMPTS = 3
#: seconds between snapshots of Tune's experiment state in the storage (what --resume reads)
STATE_SYNC_PERIOD = 15


def require_tune(what: str = "This") -> Any:
    """``ray.tune``, or a message saying that ``what`` needs it and how to install it."""
    try:
        from ray import tune
    except ImportError as error:
        raise HebbkitError(
            f"{what} needs Ray Tune, which is not installed ({error}). Install it with: "
            "pip install 'hebbkit[tune]'."
        ) from None
    return tune


def ray_running() -> bool:
    """Whether this process is connected to Ray already (a notebook, a test)."""
    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


@dataclass
class SearchOutcome:
    records: list[TrialRecord]
    #: fewer trials ended than the search has (Ctrl-C, or the driver was stopped)
    interrupted: bool


# --- connecting --------------------------------------------------------------------------


@dataclass
class Session:
    """This process's connection to Ray."""

    address: str
    #: Ray Client (ray://): this process is not part of the cluster, Tune runs on its head
    client: bool
    nodes: list[Node]
    #: the head's GCS address (what ``--address`` resolved to), if known
    gcs_address: str | None = None
    warnings: list[str] = field(default_factory=list)


def check_ray_temp(path: Path) -> None:
    if len(str(path)) + SESSION_SUFFIX > SOCKET_PATH_LIMIT:
        raise TuneSetupError(
            f"--ray-temp {path} is {len(str(path))} characters long; Ray's socket paths under "
            f"it would pass the {SOCKET_PATH_LIMIT}-byte limit of Unix sockets. Use a folder "
            f"of at most {SOCKET_PATH_LIMIT - SESSION_SUFFIX} characters, e.g. /tmp/ray-$USER."
        )


def bootstrap_address(address: str) -> str:
    """``--address`` as Ray will dial it: ``auto`` becomes the address of the cluster that
    ``ray start`` recorded on this machine."""
    if address != "auto":
        return address
    require_tune()
    from ray._private.services import canonicalize_bootstrap_address

    try:
        found = canonicalize_bootstrap_address("auto")
    except Exception:  # Ray words "nothing found" differently between versions
        found = None
    if not found:
        raise TuneSetupError(
            "--address auto: no Ray cluster was started on this machine (`ray start` records "
            "its address; none is recorded). Start one with `ray start --head`, give the "
            "head's address (HOST:6379 or ray://HOST:10001), or use --address local."
        )
    return str(found)


@contextmanager
def connect(options: RayOptions, unit: str = "trial") -> Iterator[Session]:
    """Start an embedded Ray (``local``) or join a cluster; check that the trials fit.

    A Ray this process started already (a test, a notebook) is used as it is and left
    running. Every failure to start or join Ray is one paragraph (exit code 2).
    """
    require_tune()
    import ray

    level = logging.INFO if options.verbose else logging.ERROR
    started = False
    target = options.address
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"log_to_driver": options.verbose, "logging_level": level}
        if options.address == "local":
            if options.ray_temp is not None:
                check_ray_temp(options.ray_temp)
                options.ray_temp.mkdir(parents=True, exist_ok=True)
                kwargs["_temp_dir"] = str(options.ray_temp)
            kwargs.update(address="local", include_dashboard=False)
        else:
            target = bootstrap_address(options.address)
            # ray.init retries a dead address for about 14 minutes: ask the port first
            check_reachable(target, options.address)
            kwargs["address"] = target
        for attempt in range(1, CLIENT_ATTEMPTS + 1):
            try:
                ray.init(**kwargs)
                break
            except Exception as error:  # each of Ray's many ways to fail here: one paragraph
                if attempt < CLIENT_ATTEMPTS and _client_server_hiccup(options.address, error):
                    time.sleep(2.0 * attempt)
                    continue
                raise connect_error(options.address, error) from None
        started = True
    restore = None if options.verbose else _short_cluster_errors()
    try:
        client = bool(ray.util.client.ray.is_connected())
        session = Session(options.address, client, [], None if client else _gcs_address())
        if session.gcs_address is None and not client and target not in ("local", "auto"):
            session.gcs_address = target
        session.nodes, autoscaling = _cluster_facts()
        session.warnings = check_fits(options, session.nodes, autoscaling, unit)
        yield session
    finally:
        if restore is not None:
            restore()
        if started:
            ray.shutdown()


def _short_cluster_errors() -> Callable[[], None]:
    """Shorten the cluster's own error notices to their first line.

    Ray's driver prints every error the cluster publishes (a raylet that died comes with
    twenty lines of its log) from a thread of its own, whatever ``log_to_driver`` says.
    Returns what undoes it.
    """
    import ray._private.worker as worker

    original = worker.print_to_stdstream

    def short(data: dict[str, Any], ignore_prefix: bool) -> None:
        lines = [ANSI.sub("", str(line)).strip() for line in data.get("lines", [])]
        text = next((line for line in lines if line), "")
        if text and data.get("is_err", True):
            print(f"Ray: {first_line(text, 200)}", file=sys.stderr, flush=True)

    worker.print_to_stdstream = short
    return lambda: setattr(worker, "print_to_stdstream", original)


def _client_server_hiccup(address: str, error: Exception) -> bool:
    """Ray Client's proxy could not start this client's server process: it happens under
    load, and the next attempt usually succeeds."""
    return address.startswith("ray://") and "Starting Ray client server failed" in str(error)


def _gcs_address() -> str | None:
    import ray

    try:
        return str(ray.get_runtime_context().gcs_address)
    except Exception:
        return None


def _cluster_facts() -> tuple[list[Node], bool]:
    """The alive nodes, and whether an autoscaler may add more (through Ray Client too)."""
    import ray

    nodes = nodes_from_ray(ray.nodes())
    try:
        from ray.experimental.internal_kv import _internal_kv_get

        raw = _internal_kv_get(AUTOSCALER_STATUS)
        report = json.loads(raw)["autoscaler_report"] if raw else None
    except Exception:  # no report, or one of another form: taken for a fixed cluster
        report = None
    if not isinstance(report, dict):
        return nodes, False
    types = [*(report.get("active_nodes") or {}), *(report.get("idle_nodes") or {})]
    pending = len(report.get("pending_nodes") or []) + len(report.get("pending_launches") or {})
    return nodes, autoscales(types, pending)


def _on_storage_node(session: Session, function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` where Tune keeps its state: here, or on the head for Ray Client.

    Under Ray Client, Tune runs on the node of the client server, so a local storage path
    names a folder on that node, not on this machine.
    """
    if not session.client:
        return function(*args)
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    head = ray.get_runtime_context().get_node_id()  # the client server's node
    task = ray.remote(num_cpus=0, max_retries=2)(function).options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=head, soft=False)
    )
    return ray.get(task.remote(*args), timeout=600)


# --- data on the nodes ---------------------------------------------------------------------


def check_data_on_nodes(session: Session, recipes: Sequence[Recipe], options: RayOptions) -> None:
    """One task on every node that can run a trial reads the data the trials will read
    there; any node that cannot is named, with what it lacks (exit code 2)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    distinct = {data_key(recipe.data): recipe_dict(recipe) for recipe in recipes}
    check = ray.remote(num_cpus=0, max_retries=0)(_read_data_here)
    hosts = [node for node in session.nodes if can_host(node, options)]
    pending = {
        node: check.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node.node_id, soft=False)
        ).remote(list(distinct.values()), str(options.data_root), options.offline)
        for node in hosts
    }
    problems: dict[Node, str] = {}
    for node, reference in pending.items():
        try:
            problem = ray.get(reference, timeout=300)
        except Exception as error:  # the node died, or hebbkit cannot even start there
            problem = f"the check could not run there ({_error_text(error)})"
        if problem:
            problems[node] = problem
    if problems:
        raise missing_data_error(problems, len(hosts), str(options.data_root))


def trial_data(
    session: Session,
    recipes: Sequence[Recipe],
    options: RayOptions,
    echo: Callable[[str], None],
    complete: bool = False,
) -> tuple[PreloadedData, ...]:
    """With ``--ship-data``, the data read here once, for the object store (``complete``:
    whole datasets, as trials may carve any split); else, on a cluster, a check that every
    node can read it itself (nothing to send)."""
    if options.ship_data:
        data = preload(
            [recipe.data for recipe in recipes],
            get_registry(),
            options.data_root,
            download=not options.offline,
            complete=complete,
        )
        size = sum(item.nbytes for item in data) / 2**20
        echo(f"Sending the data ({size:.0f} MiB) to the trials through Ray's object store")
        return data
    if options.remote:
        check_data_on_nodes(session, recipes, options)
    return ()


def _read_data_here(recipes: list[dict[str, Any]], data_root: str, offline: bool) -> str | None:
    """On one node: read what the trials will read (and download it where allowed)."""
    registry = get_registry()
    machine = Machine(data_root=Path(data_root), device=torch.device("cpu"), offline=offline)
    for data in recipes:
        try:
            recipe = validate_recipe(data, registry, source="the search's recipe")
            machine.load_splits(recipe.data, registry)
        except HebbkitError as error:
            return str(error)
    return None


# --- the search space in Ray's terms ------------------------------------------------------


def param_space(search: SearchConfig, count: int | None = None) -> dict[str, Any]:
    """Tune's parameter space: with ``count``, the indices of trials hebbkit drew itself
    (random and grid searches, exactly what ``--dry-run`` shows); otherwise one Ray domain
    per searched path (Optuna draws its own points), keyed by the dotted path."""
    tune = require_tune()
    if count is not None:
        return {TRIAL_INDEX: tune.grid_search(list(range(count)))}
    space: dict[str, Any] = {}
    grid = set(search.enumerated())
    for path, dim in search.space.items():
        if path in grid:
            space[path] = tune.grid_search([encode(dim, v) for v in dim.values])
        elif dim.kind == "choice":
            space[path] = tune.choice([encode(dim, v) for v in dim.values])
        elif dim.kind == "uniform":
            space[path] = tune.uniform(*dim.args)
        elif dim.kind == "loguniform":
            space[path] = tune.loguniform(*dim.args)
        elif dim.kind == "randint":
            space[path] = tune.randint(dim.args[0], dim.args[1] + 1)  # Ray's high is excluded
        elif dim.kind == "quniform":
            space[path] = tune.quniform(*dim.args)
        else:  # pragma: no cover - SearchConfig rules this out
            raise HebbkitError(f"search.space {path!r}: {dim.kind} cannot be searched here.")
    return space


def make_searcher(
    search: SearchConfig, max_concurrent: int | None = None, verbose: bool = False
) -> Any:
    """Tune's search algorithm, limited to ``max_concurrent`` running trials."""
    require_tune()
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.basic_variant import BasicVariantGenerator

    if search.algorithm == "optuna":
        try:
            import optuna
            from ray.tune.search.optuna import OptunaSearch
        except ImportError as error:
            raise HebbkitError(
                f'search.algorithm = "optuna" needs the optuna package ({error}). Install it '
                "with: pip install 'hebbkit[optuna]'."
            ) from None
        if not verbose:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
        searcher = OptunaSearch(seed=search.seed)  # TPE, Optuna's default sampler
        if max_concurrent:
            return ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)
        return searcher
    # Tune ignores TuneConfig.max_concurrent_trials for a BasicVariantGenerator passed in.
    return BasicVariantGenerator(max_concurrent=max_concurrent or 0, random_state=search.seed)


def make_scheduler(search: SearchConfig, readout_epochs: int) -> Any:
    require_tune()
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    config = search.scheduler
    if config.name == "asha":
        return ASHAScheduler(
            time_attr="training_iteration",  # one report per read-out epoch
            max_t=config.max_t or max(1, readout_epochs),
            grace_period=config.grace_period,
            reduction_factor=config.reduction_factor,
        )
    return FIFOScheduler()


def trial_dirname(trial: Any) -> str:
    # Ray's default names spell out the config: long, and unreadable for table values.
    return str(trial.trial_id)


def trial_values(search: SearchConfig, config: dict[str, Any], samples: Sequence[Any]) -> Any:
    """The searched values of a trial, from its index or (Optuna) from its Tune config."""
    if TRIAL_INDEX in config:
        return dict(samples[int(config[TRIAL_INDEX])])
    return decode(search, config)


# --- one trial, on its node ----------------------------------------------------------------


def epoch_metrics(row: dict[str, Any]) -> dict[str, Any]:
    metrics = {k: row[k] for k in EPOCH_METRICS if k in row}
    metrics["epoch"] = row.get("epoch", 0)
    return metrics


def run_in_trial(
    recipe: Recipe,
    folder: Path,
    context: dict[str, Any],
    data: tuple[PreloadedData, ...] = (),
    on_metrics: Callable[[dict[str, Any]], None] | None = None,
    *,
    meant_for: Path | None = None,
) -> RunSummary:
    """``hebbkit run`` into ``folder`` with the machine settings the driver passed in
    ``context``, and the data it shipped (if any). ``meant_for``: the folder in the output
    that the run becomes (how the driver named it in ``context``), if not ``folder``."""
    torch.set_num_threads(context["threads"])
    machine = Machine(
        data_root=Path(context["data_root"]),
        device=resolve_device(context["device"]),
        offline=context["offline"],
        track=context.get("track", []),
        precision=context.get("precision", "fp32"),
        preloaded=data,
    )
    cache = context.get("hebbian_cache")
    store = context.get("hebbian_store")
    with _stored_phase(store, recipe, machine.precision, folder.parent) as local:
        return run_recipe(
            recipe,
            folder,
            get_registry(),
            machine,
            overwrite=True,
            on_metrics=on_metrics,
            hebbian_cache=local or (Path(cache) if cache else None),
            origin=RunOrigin.from_context(context, meant_for or folder),
        )


@contextmanager
def _stored_phase(
    store: str | None, recipe: Recipe, precision: str, scratch: Path
) -> Iterator[Path | None]:
    """On a cluster, the Hebbian cache of the trials lives in Ray's storage (``store``): a
    local cache folder holding this run's phase if another trial learnt it already; a phase
    learnt here is put there for the others. Best effort: the run never fails for it."""
    if store is None:
        yield None
        return
    local = HebbianCache(scratch / HEBBIAN_CACHE_DIR, precision)
    entry = local.path(hebbian_hash(recipe))
    try:
        fs, path = resolve(join(store, entry.name))
        had = fetch_file(fs, path, entry)
    except Exception:
        fs, path, had = None, "", True  # the storage is unusable: no sharing
    yield local.root
    if fs is not None and not had and entry.is_file():
        with contextlib.suppress(Exception):
            store_file(entry, fs, path)


class _Attempt:
    """One attempt at a trial on this node: a scratch folder, and the trial's Ray storage."""

    def __init__(self, context: dict[str, Any], name: str | None = None) -> None:
        import ray

        self.tune = require_tune()
        trial = self.tune.get_context()
        self.trial_id = trial.get_trial_id()
        self.storage = trial.get_storage()
        self.node = ray.get_runtime_context().get_node_id()
        self.metric = context.get("metric")
        scratch = Path(tempfile.gettempdir()) / "hebbkit-trials" / context["ray_experiment"]
        self.scratch = scratch / self.trial_id
        shutil.rmtree(self.scratch, ignore_errors=True)  # an earlier attempt on this node
        self.scratch.mkdir(parents=True)
        #: the run folder (named as in the output folder: failed attempts keep the name)
        self.folder = self.scratch / (name or self.trial_id)

    def finished_run(self) -> Path | None:
        """A run folder this trial finished in an earlier attempt (the search was resumed
        from a state older than its checkpoint), copied here; else None. Only checkpoints
        marked complete count: one cut short by a lost node may hold half-written files."""
        fs, trial_path = self.storage.storage_filesystem, self.storage.trial_fs_path
        entries = names(fs, trial_path)
        complete = [n for n in entries if COMPLETE_MARK + n in entries]
        for name in reversed(complete):
            local = self.scratch / "finished"
            download(fs, join(trial_path, name), local)
            if is_finished(local):
                return local
        return None

    def report_finished(self, folder: Path, metrics: dict[str, Any]) -> None:
        checkpoint = self.tune.Checkpoint.from_directory(str(folder))
        self.tune.report({**metrics, STATUS: "ok", NODE: self.node}, checkpoint=checkpoint)
        # Tune persists a checkpoint before report returns: the newest one is now whole
        fs, trial_path = self.storage.storage_filesystem, self.storage.trial_fs_path
        with contextlib.suppress(Exception):  # unmarked, a later attempt runs it again
            newest = [n for n in names(fs, trial_path) if n.startswith("checkpoint_")][-1]
            write_storage_text(fs, join(trial_path, COMPLETE_MARK + newest), "")

    def report_failed(self, error: BaseException) -> None:
        """The run raised: Tune records the trial as ended with this error, and never
        retries it (the same recipe would fail the same way)."""
        self.persist_unfinished()
        metrics: dict[str, Any] = {STATUS: "failed", ERROR: _error_text(error), NODE: self.node}
        if self.metric:
            metrics[self.metric] = math.nan  # Tune wants its metric in every result
        self.tune.report(metrics)

    def persist_unfinished(self) -> None:
        """Copy the run's partial folder (``<name>.failed-<time>``) to the trial's storage."""
        fs, trial_path = self.storage.storage_filesystem, self.storage.trial_fs_path
        for folder in failed_attempts(self.scratch, self.folder.name):
            try:
                target = join(trial_path, PARTIAL_DIR, folder.name)
                upload(folder, fs, target)
                write_storage_text(fs, target + DONE_SUFFIX, "")
            except Exception:  # best effort: the error is recorded either way
                pass

    def run(self, run: Callable[[], RunSummary]) -> RunSummary | None:
        """``run()``; None if it raised, reported as the trial's failure (never retried)."""
        try:
            return run()
        except SystemExit:
            # Tune stopped the trial (ASHA, Ctrl-C): tune.report raised in the run, whose
            # folder was left as run.failed-*: keep it, the driver names it <id>.stopped.
            self.persist_unfinished()
            raise
        except Exception as error:
            self.report_failed(error)
            return None

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)


def run_trial(
    config: dict[str, Any], context: dict[str, Any], data: tuple[PreloadedData, ...] = ()
) -> None:
    """Tune's trainable of a search: one ``hebbkit run`` with the trial's overrides."""
    attempt = _Attempt(context)
    tune = attempt.tune
    try:
        finished = attempt.finished_run()
        if finished is not None:
            _replay(attempt, finished)
            return
        search = SearchConfig.model_validate(context["search"])
        final: dict[str, Any] = {}

        def run() -> RunSummary:
            values = trial_values(search, config, context["samples"])
            recipe = trial_recipe(
                context["base"],
                search,
                values,
                get_registry(),
                source=f"{context['source']} (trial {attempt.trial_id})",
            )
            last = recipe.readout.epochs

            def on_metrics(row: dict[str, Any]) -> None:
                if row.get("phase") != "readout":
                    return
                if row.get("epoch") == last:
                    # Reported with the finished run folder: Tune may stop the trial at any
                    # report (ASHA does at max_t), and then the run never returns.
                    final.update(row)
                    return
                tune.report(epoch_metrics(row))

            meant_for = Path(context["trials_dir"]) / attempt.trial_id
            return run_in_trial(
                recipe, attempt.folder, context, data, on_metrics, meant_for=meant_for
            )

        summary = attempt.run(run)
        if summary is not None:
            metrics = epoch_metrics(final or {**summary, "epoch": 0})
            attempt.report_finished(attempt.folder, metrics)
    finally:
        attempt.close()


def _replay(attempt: _Attempt, folder: Path) -> None:
    rows = read_metrics(folder)
    readout = rows.filter(rows["phase"] == "readout") if "phase" in rows.columns else rows
    rows_list = list(readout.iter_rows(named=True))
    for row in rows_list[:-1]:
        attempt.tune.report(epoch_metrics(row))
    last = rows_list[-1] if rows_list else {**read_summary(folder), "epoch": 0}
    attempt.report_finished(folder, epoch_metrics(last))


def run_grid_job(
    config: dict[str, Any], context: dict[str, Any], data: tuple[PreloadedData, ...] = ()
) -> None:
    """Tune's trainable of a grid: one grid run, persisted as the trial's checkpoint."""
    job = context["jobs"][config["job"]]
    attempt = _Attempt(context, Path(job["folder"]).name)
    try:
        finished = attempt.finished_run()
        if finished is not None:
            attempt.report_finished(
                finished, {"test_accuracy": read_summary(finished)["test_accuracy"]}
            )
            return

        def run() -> RunSummary:
            source = f"grid run {job['label']}"
            recipe = validate_recipe(job["recipe"], get_registry(), source=source)
            return run_in_trial(
                recipe, attempt.folder, context, data, meant_for=Path(job["folder"])
            )

        summary = attempt.run(run)
        if summary is not None:
            attempt.report_finished(attempt.folder, {"test_accuracy": summary["test_accuracy"]})
    finally:
        attempt.close()


# --- callbacks: progress lines, gathering ------------------------------------------------------


def _callbacks(
    session: Session,
    options: RayOptions,
    *,
    total: int,
    metric: str | None,
    labels: list[str] | None,
    destinations: dict[str, Any],
    relay: Any,
) -> list[Any]:
    tune = require_tune()
    from ray.tune.progress_reporter import TrialProgressCallback

    class Progress(tune.Callback):
        """One line per trial that ends, is retried or lost. Runs where Tune runs: on the
        head under Ray Client, so the lines travel back through a queue there."""

        def __init__(self) -> None:
            self.total, self.metric, self.labels = total, metric, labels
            self.retries, self.queue = options.max_retries, relay

        def _label(self, trial: Any) -> str:
            if self.labels is not None and "job" in (trial.config or {}):
                return self.labels[trial.config["job"]]
            return f"trial {trial.trial_id}"

        def _emit(self, trials: list[Any], trial: Any, text: str, ended: bool = True) -> None:
            # the trial's own status is not updated yet when Tune calls back
            done = sum(t.status in ("TERMINATED", "ERROR") for t in trials if t is not trial)
            line = f"[{done + int(ended)}/{self.total}] {self._label(trial)} {text}"
            if self.queue is not None:
                try:
                    self.queue.put_nowait(line)
                    return
                except Exception:  # the queue is gone: the line stays in the head's log
                    pass
            print(line, file=sys.stderr, flush=True)

        def on_trial_complete(
            self, iteration: int, trials: list[Any], trial: Any, **info: Any
        ) -> None:
            result = trial.last_result or {}
            epochs = result.get("training_iteration", 0)
            if result.get(STATUS) == "failed":
                self._emit(trials, trial, f"failed: {first_line(str(result.get(ERROR)))}")
                return
            value = result.get(self.metric) if self.metric else None
            shown = f"{value:.4f}" if isinstance(value, float) and math.isfinite(value) else "-"
            score = f": {self.metric} {shown}" if self.metric else ""
            if result.get(STATUS) == "ok":
                text = f"ended after {epochs} epochs{score}" if self.metric else "finished"
            else:
                text = f"stopped after {epochs} epochs{score}"
            self._emit(trials, trial, text)

        def on_trial_recover(
            self, iteration: int, trials: list[Any], trial: Any, **info: Any
        ) -> None:
            cause = _trial_error(trial)
            why = f" ({_error_text(cause)})" if cause is not None else ""
            self._emit(
                trials,
                trial,
                f"lost its node or worker process{why}; starting it again "
                f"(retry {trial.num_failures} of {self.retries})",
                ended=False,
            )

        def on_trial_error(
            self, iteration: int, trials: list[Any], trial: Any, **info: Any
        ) -> None:
            tries = f" after {self.retries} retries" if self.retries else ""
            self._emit(trials, trial, f"lost{tries}: {_error_text(_trial_error(trial))}")

    class Gather(tune.Callback):
        """Copies each finished run folder into the output folder as soon as the trial
        ends (only where this process runs Tune itself, not under Ray Client)."""

        def __init__(self) -> None:
            self.destinations = destinations

        def on_trial_complete(
            self, iteration: int, trials: list[Any], trial: Any, **info: Any
        ) -> None:
            result, checkpoint = trial.last_result or {}, trial.checkpoint
            destination = _destination(self.destinations, trial.trial_id, trial.config or {})
            if result.get(STATUS) != "ok" or checkpoint is None or is_finished(destination):
                return
            with contextlib.suppress(Exception):  # gathered again once the search ends
                download(checkpoint.filesystem, checkpoint.path, destination)

    class Silent(TrialProgressCallback):
        """Stands in for Tune's own progress lines ("Trial job3 completed. Last result:
        ..."), which it prints whatever the verbosity."""

        def on_trial_result(self, *args: Any, **kwargs: Any) -> None:
            pass

        def on_trial_complete(self, *args: Any, **kwargs: Any) -> None:
            pass

        def on_trial_error(self, *args: Any, **kwargs: Any) -> None:
            pass

    callbacks: list[Any] = [Progress()]
    if not session.client:
        callbacks.append(Gather())
    if not options.verbose:
        callbacks.append(Silent())
    return callbacks


def _destination(destinations: dict[str, Any], trial_id: str, config: dict[str, Any]) -> Path:
    if "jobs" in destinations:
        return Path(destinations["jobs"][config["job"]])
    return Path(destinations["trials"]) / trial_id


@contextmanager
def _relayed_lines(session: Session) -> Iterator[Any]:
    """Under Ray Client, a queue on the cluster that Tune's callbacks put their lines into;
    a thread here prints them. Elsewhere None: the callbacks print themselves."""
    if not session.client:
        yield None
        return
    import ray
    from ray.util.queue import Empty, Queue
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    # beside Tune on the client server's node: a queue on a worker node dies with it
    head = ray.get_runtime_context().get_node_id()
    queue = Queue(
        actor_options={
            "num_cpus": 0,
            "scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=head, soft=False),
        }
    )
    stop = threading.Event()

    def pump() -> None:
        while not stop.is_set():
            try:
                print(queue.get(timeout=0.5), file=sys.stderr, flush=True)
            except Empty:
                continue
            except Exception:  # the connection is gone
                return

    thread = threading.Thread(target=pump, name="hebbkit-progress", daemon=True)
    thread.start()
    try:
        yield queue
    finally:
        stop.set()
        thread.join(timeout=5)
        try:
            while not queue.empty():
                print(queue.get_nowait(), file=sys.stderr, flush=True)
            queue.shutdown()
        except Exception:
            pass


def _set_callbacks(tuner: Any, callbacks: list[Any], client: bool) -> None:
    """Give a restored Tuner this session's callbacks (Tune restores the pickled ones, whose
    queue belonged to an earlier session)."""
    import ray

    if client:
        remote = tuner._remote_tuner
        config = ray.get(remote.get_run_config.remote())
        config.callbacks = callbacks
        ray.get(remote.set_run_config_and_remote_string_queue.remote(config, None))
    else:
        tuner._local_tuner._run_config.callbacks = callbacks


@contextmanager
def _quiet_tune(verbose: bool) -> Iterator[None]:
    # Tune logs each failed trial's traceback and a summary at ERROR; hebbkit records the
    # errors in its table, so they are only noise unless asked for.
    # Tune's newer console output prints its banner and every trial error whatever the
    # verbosity; the classic reporter honours verbose=0.
    logger = logging.getLogger("ray.tune")
    level = logger.level
    saved = os.environ.get("RAY_AIR_NEW_OUTPUT")
    if not verbose:
        logger.setLevel(logging.CRITICAL)
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    try:
        yield
    finally:
        logger.setLevel(level)
        if saved is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = saved


# --- running -------------------------------------------------------------------------------


@dataclass
class Experiment:
    """Where Tune keeps an experiment: ``<storage>/<name>``."""

    storage: str
    name: str

    @property
    def uri(self) -> str:
        return join(self.storage, self.name)


def _tuner(
    trainable: Any,
    experiment: Experiment,
    session: Session,
    options: RayOptions,
    callbacks: list[Any],
    fresh: Callable[[], tuple[dict[str, Any], Any]],
) -> Any:
    """A new Tuner, or with ``--resume`` the experiment's Tuner restored (finished trials
    are kept; unfinished and lost ones run again)."""
    tune = require_tune()
    try:
        if options.resume and _on_storage_node(session, _can_restore, experiment.uri):
            tuner = tune.Tuner.restore(
                experiment.uri, trainable, resume_unfinished=True, resume_errored=True
            )
            _set_callbacks(tuner, callbacks, session.client)
            return tuner
        space, tune_config = fresh()
        return _new_tuner(trainable, space, tune_config, experiment, options, callbacks)
    except HebbkitError:
        raise
    except Exception as error:  # Tune sets its storage up here: a path it cannot use
        raise TuneSetupError(
            f"Ray Tune cannot keep its results in {experiment.uri} ({_error_text(error)}). "
            "Give --storage a folder this machine can write and every node can reach (NFS), "
            "or a cloud URI (s3://bucket/path, gs://bucket/path) with credentials on every "
            "node."
        ) from None


def _new_tuner(
    trainable: Any,
    space: dict[str, Any],
    tune_config: Any,
    experiment: Experiment,
    options: RayOptions,
    callbacks: list[Any],
) -> Any:
    tune = require_tune()
    return tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune_config,
        run_config=tune.RunConfig(
            name=experiment.name,
            storage_path=experiment.storage,
            verbose=1 if options.verbose else 0,
            failure_config=tune.FailureConfig(max_failures=options.max_retries, fail_fast=False),
            # one checkpoint per trial, the finished run folder; keeping one also makes Tune
            # save its experiment state as each trial finishes
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            sync_config=tune.SyncConfig(sync_period=STATE_SYNC_PERIOD),
            callbacks=callbacks,
        ),
    )


def _can_restore(uri: str) -> bool:
    return bool(require_tune().Tuner.can_restore(uri))


def _trainable(
    function: Callable[..., None],
    context: dict[str, Any],
    data: tuple[PreloadedData, ...],
    options: RayOptions,
) -> Any:
    tune = require_tune()
    resources = {"cpu": options.cpus_per_trial, "gpu": options.gpus_per_trial}
    # with_parameters puts the context and the data into the object store once
    return tune.with_resources(
        tune.with_parameters(function, context=context, data=data), resources
    )


def _fit(tuner: Any, session: Session, options: RayOptions) -> bool:
    """Run the experiment; False if it was interrupted before Tune ended it."""
    try:
        with _quiet_tune(options.verbose):
            tuner.fit()
    except KeyboardInterrupt:
        if not session.client:
            raise
        # Tune runs on the head: stop it there (its trials go with it), keep what ended
        import ray

        ray.kill(tuner._remote_tuner)
        return False
    return True


def phase_sharing(
    cache: Path | None, experiment: Experiment, options: RayOptions
) -> dict[str, str | None]:
    """Where the trials share Hebbian phases (``cache``: the folder this machine would
    use, None: no sharing): that folder for a local Ray, else beside the experiment in Ray's
    storage, which every node reaches (they need not see this machine's disk)."""
    if cache is None:
        return {"hebbian_cache": None, "hebbian_store": None}
    if options.remote:
        return {"hebbian_cache": None, "hebbian_store": join(experiment.uri, HEBBIAN_CACHE_DIR)}
    return {"hebbian_cache": str(cache.resolve()), "hebbian_store": None}


def run_search(
    plan: SearchPlan,
    samples: list[dict[str, Any]] | None,
    out: Path,
    experiment: Experiment,
    session: Session,
    options: RayOptions,
    data: tuple[PreloadedData, ...] = (),
) -> SearchOutcome:
    """Run (or resume) the search of ``plan`` with results gathered into ``out``.

    ``samples``: every trial's values as hebbkit drew them (random and grid searches), or
    None to let Tune's searcher draw (Optuna).
    """
    search = plan.search
    trials_dir = out / TRIALS_DIR
    trials_dir.mkdir(parents=True, exist_ok=True)
    context = {
        "base": plan.base,
        "search": search.model_dump(),
        "source": plan.source,
        "metric": search.metric,
        "samples": samples or [],
        "ray_experiment": experiment.name,
        "trials_dir": str(trials_dir.resolve()),
        "data_root": str(options.data_root),
        "device": options.device,
        "offline": options.offline,
        "precision": options.precision,
        "threads": max(1, math.floor(options.cpus_per_trial)),
        "track": options.track,
        "experiment": plan.name,
        "command": sys.argv,
        **phase_sharing(
            out / HEBBIAN_CACHE_DIR if plan.shares_hebbian_phases else None, experiment, options
        ),
    }
    total = search.trial_count()
    trainable = _trainable(run_trial, context, data, options)

    def fresh() -> tuple[dict[str, Any], Any]:
        tune = require_tune()
        drawn = samples is not None
        return param_space(search, len(samples) if drawn else None), tune.TuneConfig(
            metric=search.metric,
            mode=search.mode,
            search_alg=make_searcher(search, options.max_concurrent, options.verbose),
            scheduler=make_scheduler(search, plan.readout_epochs),
            num_samples=1 if drawn else search.num_samples,
            reuse_actors=True,  # saves starting a Python with torch for every trial
            trial_name_creator=trial_dirname,
            trial_dirname_creator=trial_dirname,
        )

    with _relayed_lines(session) as relay:
        callbacks = _callbacks(
            session,
            options,
            total=total,
            metric=search.metric,
            labels=None,
            destinations={"trials": str(trials_dir)},
            relay=relay,
        )
        tuner = _tuner(trainable, experiment, session, options, callbacks, fresh)
        completed = _fit(tuner, session, options)
    reader = StorageReader(experiment, session)
    records = collect(reader, plan, samples or [], trials_dir)
    ended = sum(r.status != "unfinished" for r in records)
    interrupted = not completed or ended < total
    if not interrupted:  # a resumed search would still use them
        _forget_phases(context, reader)
    return SearchOutcome(records, interrupted=interrupted)


def _forget_phases(context: dict[str, Any], reader: StorageReader) -> None:
    """Remove the Hebbian phases the trials shared (here, or in Ray's storage)."""
    if context.get("hebbian_cache"):
        HebbianCache(Path(context["hebbian_cache"])).remove()
    if context.get("hebbian_store"):
        with contextlib.suppress(Exception):  # only space is lost
            reader.remove(context["hebbian_store"])


def run_jobs(
    job: Callable[..., None],
    context: dict[str, Any],
    names: list[str],
    folders: list[Path],
    experiment: Experiment,
    session: Session,
    options: RayOptions,
    data: tuple[PreloadedData, ...] = (),
) -> dict[int, str]:
    """Run ``job(config, context, data)`` for ``config = {"job": i}``, i < len(names), as
    Tune trials, and gather each finished run folder into ``folders[i]``.

    Returns each job's error text where it did not finish. Used by ``hebbkit grid
    --address``.
    """
    tune = require_tune()
    count = len(names)
    cache = context.get("hebbian_cache")
    context = {
        **context,
        "ray_experiment": experiment.name,
        **phase_sharing(Path(cache) if cache else None, experiment, options),
    }
    reader = StorageReader(experiment, session)
    if context["hebbian_store"] and cache and Path(cache).is_dir():
        # phases of finished runs that runs to do take: to where every node finds them
        reader.send(Path(cache), context["hebbian_store"])
    trainable = _trainable(job, context, data, options)

    def fresh() -> tuple[dict[str, Any], Any]:
        return {"job": tune.grid_search(list(range(count)))}, tune.TuneConfig(
            max_concurrent_trials=options.max_concurrent,
            trial_name_creator=lambda trial: f"job{trial.config['job']}",
            trial_dirname_creator=lambda trial: f"job{trial.config['job']}",
        )

    with _relayed_lines(session) as relay:
        callbacks = _callbacks(
            session,
            options,
            total=count,
            metric=None,
            labels=names,
            destinations={"jobs": [str(f) for f in folders]},
            relay=relay,
        )
        tuner = _tuner(trainable, experiment, session, options, callbacks, fresh)
        completed = _fit(tuner, session, options)
    if context["hebbian_store"]:  # each invocation of a grid is an experiment of its own
        with contextlib.suppress(Exception):
            reader.remove(context["hebbian_store"])
    errors: dict[int, str] = {}
    seen = set()
    for state in reader.states():
        index = (state["config"] or {}).get("job")
        if index is None:
            continue
        seen.add(int(index))
        folder = folders[int(index)]
        if state["outcome"] == "ok":
            if not is_finished(folder):
                reader.fetch(state["checkpoint"], folder)
            continue
        for name in state["unfinished"]:
            target = folder.parent / name
            if not target.exists():
                reader.fetch(join(state["path"], PARTIAL_DIR, name), target)
        errors[int(index)] = state["error"] or "the run did not end (interrupted)"
    for index in range(count):
        if index not in seen and not is_finished(folders[index]):
            errors[index] = "the run never started (interrupted)"
    if not completed:
        raise KeyboardInterrupt
    return errors


# --- reading results back from Ray's storage -------------------------------------------------


class StorageReader:
    """Trial states and run folders from the experiment's storage, wherever it is."""

    def __init__(self, experiment: Experiment, session: Session) -> None:
        self.experiment, self.session = experiment, session

    def states(self) -> list[dict[str, Any]]:
        return _on_storage_node(self.session, _trial_states, self.experiment.uri)

    def unfinished(self, trial_path: str) -> list[str]:
        return _on_storage_node(self.session, _unfinished, self.experiment.uri, trial_path)

    def fetch(self, path: str, folder: Path) -> None:
        """Copy the folder ``path`` of the storage to ``folder`` on this machine."""
        if self.session.client:
            unpack(_on_storage_node(self.session, _pack, self.experiment.uri, path), folder)
        else:
            fs, _ = resolve(self.experiment.uri)
            download(fs, path, folder)

    def send(self, folder: Path, uri: str) -> None:
        """Copy the local ``folder`` into the storage at ``uri``."""
        if self.session.client:
            data = pack_folder(folder)
            _on_storage_node(self.session, _unpack_into, uri, data)
        else:
            fs, path = resolve(uri)
            upload(folder, fs, path)

    def remove(self, uri: str) -> None:
        _on_storage_node(self.session, _remove_folder, uri)


def _unpack_into(uri: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        unpack(data, Path(scratch) / "folder")
        fs, path = resolve(uri)
        upload(Path(scratch) / "folder", fs, path)


def _remove_folder(uri: str) -> None:
    fs, path = resolve(uri)
    remove(fs, path)


def _pack(uri: str, path: str) -> bytes:
    fs, _ = resolve(uri)
    return pack(fs, path)


def _unfinished(uri: str, trial_path: str) -> list[str]:
    """The complete unfinished run folders a trial left in its storage."""
    fs, _ = resolve(uri)
    entries = names(fs, join(trial_path, PARTIAL_DIR))
    return [n for n in entries if not n.endswith(DONE_SUFFIX) and n + DONE_SUFFIX in entries]


def _trial_states(uri: str) -> list[dict[str, Any]]:
    """Every trial of the experiment at ``uri`` as plain data, from the state Tune saved.

    The saved state, not the live result grid: after Ctrl-C Tune tidies its live trials up
    as if they had ended, while the saved state still says which ones never did.
    """
    tune = require_tune()
    import ray

    try:
        analysis = tune.ExperimentAnalysis(uri)
    except Exception:  # no state saved (interrupted at once)
        return []
    frames = analysis.trial_dataframes or {}
    states = []
    for trial in analysis.trials:
        result = dict(trial.last_result or {})
        error = None
        if trial.status == "ERROR":
            cause = _trial_error(trial)
            lost = isinstance(cause, ray.exceptions.RayActorError)
            outcome = "lost" if lost else "failed"
            error = _error_text(cause)
        elif trial.status == "TERMINATED":
            outcome = {"ok": "ok", "failed": "failed"}.get(result.get(STATUS), "stopped")
            if outcome == "failed":
                error = str(result.get(ERROR))
            elif outcome == "ok" and trial.checkpoint is None:
                outcome = "stopped"
        else:
            outcome = "unfinished"
        states.append(
            {
                "trial_id": trial.trial_id,
                "outcome": outcome,
                "config": dict(trial.config or {}),
                "error": error,
                "node": result.get(NODE),
                "retries": int(trial.num_failures),
                "path": trial.path,
                "checkpoint": trial.checkpoint.path if trial.checkpoint else None,
                "unfinished": _unfinished(uri, trial.path),
                "epochs": _epochs(frames.get(trial.trial_id)),
            }
        )
    return states


def collect(
    reader: StorageReader, plan: SearchPlan, samples: Sequence[Any], trials_dir: Path
) -> list[TrialRecord]:
    """A :class:`TrialRecord` per trial, each run folder gathered into ``trials_dir``."""
    states = reader.states()
    waiting = [s for s in states if s["outcome"] in ("stopped", "unfinished")]
    deadline = time.monotonic() + STOPPED_WAIT
    # Tune moves on as soon as it has told a trial to stop, while the trial's process is
    # still unwinding: give it a moment to persist its partial run folder.
    while waiting and time.monotonic() < deadline:
        for state in waiting:
            state["unfinished"] = reader.unfinished(state["path"])
        waiting = [s for s in waiting if not s["unfinished"]]
        if waiting:
            time.sleep(0.5)
    records = []
    for state in states:
        trial_id = state["trial_id"]
        try:
            values = trial_values(plan.search, state["config"], samples)
        except (KeyError, IndexError, ValueError):
            values = {}
        folder = trials_dir / trial_id
        if state["outcome"] == "ok":
            try:
                if not is_finished(folder):
                    reader.fetch(state["checkpoint"], folder)
            except Exception as error:  # finished, but out of reach: --resume gathers again
                state["outcome"] = "lost"
                state["error"] = (
                    f"finished, but its run folder could not be copied from Ray's storage "
                    f"({state['checkpoint']}): {_error_text(error)}"
                )
            else:
                for path in leftovers(trials_dir, trial_id):  # attempts before it finished
                    shutil.rmtree(path, ignore_errors=True)
                state["unfinished"] = []
        for name in state["unfinished"]:
            target = trials_dir / name
            if not target.exists() and not (trials_dir / f"{trial_id}{STOPPED_SUFFIX}").exists():
                with contextlib.suppress(Exception):  # its error is recorded either way
                    reader.fetch(join(state["path"], PARTIAL_DIR, name), target)
        status = state["outcome"]
        summary = read_summary(folder) if is_finished(folder) else None
        if summary is not None:
            # The run folder is complete even when an interruption came before Tune recorded
            # the trial's last report (a resumed search replays it instead of training again).
            status, state["error"] = "ok", None
        elif status == "ok":
            status = "stopped"
        if status in ("stopped", "unfinished"):
            _keep_stopped(trials_dir, trial_id, len(state["epochs"]))
        records.append(
            TrialRecord(
                trial_id=trial_id,
                status=status,
                values=values,
                epochs=_folder_epochs(folder) if summary else state["epochs"],
                summary=summary,
                error=state["error"],
                run_folder=_run_folder(trials_dir, trial_id),
                retries=state["retries"],
                node=state["node"],
            )
        )
    return records


def _keep_stopped(trials_dir: Path, trial_id: str, epochs: int) -> None:
    """Name the partial run folder of a stopped trial ``<id>.stopped``."""
    left = sorted(failed_attempts(trials_dir, trial_id), key=lambda p: p.name)
    if not left:
        return
    target = trials_dir / f"{trial_id}{STOPPED_SUFFIX}"
    shutil.rmtree(target, ignore_errors=True)
    left[-1].rename(target)
    for other in left[:-1]:
        shutil.rmtree(other, ignore_errors=True)
    (target / ERROR_FILE).unlink(missing_ok=True)  # "SystemExit: 0": how Tune stops a trial
    (target / STOPPED_FILE).write_text(
        f"Stopped by Ray Tune after {epochs} read-out epochs: the scheduler judged it worse "
        "than its peers, or the search was interrupted (hebbkit tune --resume runs it again).\n"
    )


def _trial_error(trial: Any) -> Any:
    """The trial's exception, from Tune's pickled copy (or its text) in the storage."""
    try:
        return trial.get_pickled_error() or trial.get_error()
    except Exception:  # unreadable or not written yet
        return None


def _epochs(frame: Any) -> list[dict[str, float]]:
    if frame is None or frame.empty or "epoch" not in frame.columns:
        return []
    if STATUS in frame.columns:  # a failed trial's last report carries no epoch
        frame = frame[frame[STATUS] != "failed"]
    by_epoch: dict[int, dict[str, float]] = {}
    # A restarted trial reports its epochs again: the last report of an epoch wins.
    for row in frame.to_dict("records"):
        epoch = row.get("epoch")
        if epoch is None or (isinstance(epoch, float) and math.isnan(epoch)):
            continue
        metrics = {
            k: float(row[k])
            for k in EPOCH_METRICS
            if k in row and isinstance(row[k], (int, float)) and math.isfinite(row[k])
        }
        by_epoch[int(epoch)] = {"epoch": int(epoch), **metrics}
    return [by_epoch[e] for e in sorted(by_epoch)]


def _folder_epochs(folder: Path) -> list[dict[str, float]]:
    """A finished trial's read-out metrics per epoch, from its run folder (what it reported)."""
    rows = read_metrics(folder)
    if "phase" not in rows.columns:
        return []
    readout = rows.filter(rows["phase"] == "readout")
    return [epoch_metrics(row) for row in readout.iter_rows(named=True)]


def _error_text(error: Any) -> str:
    if error is None:
        return "unknown error (see the trial's error.txt in Ray's storage)"
    if isinstance(error, str):  # Tune's text copy of the error: its last line names it
        return first_line(error.strip().splitlines()[-1]) if error.strip() else "unknown error"
    cause = getattr(error, "cause", None) or error
    text = str(cause).strip()
    if "Traceback" in text or "\n" in text:  # a Ray error with its traceback inlined
        text = first_line(text) if "Traceback" not in text else text.splitlines()[-1]
    text = first_line(text)
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


def _run_folder(trials_dir: Path, trial_id: str) -> str | None:
    candidates = [trials_dir / trial_id, trials_dir / f"{trial_id}{STOPPED_SUFFIX}"]
    candidates += failed_attempts(trials_dir, trial_id)[::-1]
    for path in candidates:
        if path.is_dir():
            return str(path)
    return None
