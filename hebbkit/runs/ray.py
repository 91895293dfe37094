"""The Ray Tune adapter: the only module of hebbkit that imports Ray.

Ray's API has moved often (``tune.run`` -> ``Tuner``, ``ray.air`` -> ``ray.train`` ->
``ray.tune.report``, ``local_dir`` -> ``storage_path``); keeping every Ray call here means
one file to change when it moves again. Written against Ray 2.60 (``ray.tune.report``,
``ray.tune.RunConfig``: Ray >= 2.41). Ray is imported when a function here first needs it,
so that importing this module (and the grid and search modules above it) never needs Ray.

A trial is exactly ``hebbkit run`` with the sampled overrides: it builds the trial recipe,
calls :func:`hebbkit.runs.run.run_recipe` into ``<out>/trials/<trial_id>/`` and reports the
metrics of every read-out epoch to Tune, so that ASHA can stop bad trials early.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hebbkit.config.recipe import Recipe, validate_recipe
from hebbkit.config.search_space import SearchConfig, decode, encode
from hebbkit.errors import HebbkitError, TuneSetupError
from hebbkit.plugins import get_registry
from hebbkit.runs.folder import (
    ERROR_FILE,
    HEBBIAN_CACHE_DIR,
    RAY_DIR,
    STOPPED_FILE,
    STOPPED_SUFFIX,
    TRIALS_DIR,
    RunSummary,
    failed_attempts,
    is_finished,
    leftovers,
    read_metrics,
    read_summary,
    staged_attempts,
)
from hebbkit.runs.options import RayOptions
from hebbkit.runs.run import Machine, RunOrigin, resolve_device, run_recipe
from hebbkit.runs.search import SearchPlan, trial_recipe
from hebbkit.runs.trials import EPOCH_METRICS, TrialRecord

#: Ray puts Unix sockets at <temp>/session_<date>_<time>_<us>_<pid>/sockets/plasma_store,
#: and a socket path may hold at most 107 bytes on Linux.
SOCKET_PATH_LIMIT = 107
SESSION_SUFFIX = len("/session_2026-01-01_00-00-00_000000_4194304/sockets/plasma_store")


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


@dataclass
class SearchOutcome:
    records: list[TrialRecord]
    #: fewer trials ended than the search has (Ctrl-C, or the driver was stopped)
    interrupted: bool


# --- connecting --------------------------------------------------------------------------


def check_ray_temp(path: Path) -> None:
    if len(str(path)) + SESSION_SUFFIX > SOCKET_PATH_LIMIT:
        raise TuneSetupError(
            f"--ray-temp {path} is {len(str(path))} characters long; Ray's socket paths under "
            f"it would pass the {SOCKET_PATH_LIMIT}-byte limit of Unix sockets. Use a folder "
            f"of at most {SOCKET_PATH_LIMIT - SESSION_SUFFIX} characters, e.g. /tmp/ray-$USER."
        )


@contextmanager
def connect(options: RayOptions) -> Iterator[dict[str, float]]:
    """Start an embedded Ray (``local``) or join a cluster; yields the cluster's resources.

    A Ray this process started already (a test, a notebook) is used as it is and left
    running.
    """
    require_tune()
    import ray

    level = logging.INFO if options.verbose else logging.ERROR
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"log_to_driver": options.verbose, "logging_level": level}
        try:
            if options.address == "local":
                if options.ray_temp is not None:
                    check_ray_temp(options.ray_temp)
                    options.ray_temp.mkdir(parents=True, exist_ok=True)
                    kwargs["_temp_dir"] = str(options.ray_temp)
                ray.init(address="local", include_dashboard=False, **kwargs)
            else:
                ray.init(address=options.address, **kwargs)
        except ConnectionError as error:
            raise TuneSetupError(
                f"--address {options.address}: no Ray cluster answered ({error}). Start one "
                "with `ray start --head` on the head node (and `ray start --address=HEAD:6379` "
                "on the others), or run on this machine alone with --address local."
            ) from None
        started = True
    try:
        resources = ray.cluster_resources()
        check_resources(options, resources)
        yield resources
    finally:
        if started:
            ray.shutdown()


def check_resources(options: RayOptions, resources: dict[str, float]) -> None:
    cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
    if options.cpus_per_trial > cpus:
        raise TuneSetupError(
            f"--cpus-per-trial {options.cpus_per_trial:g} is more than the {cpus:g} CPUs of the "
            "Ray cluster, so no trial could ever start. Ask for fewer."
        )
    if options.gpus_per_trial > gpus:
        raise TuneSetupError(
            f"--gpus-per-trial {options.gpus_per_trial:g} but the Ray cluster has {gpus:g} "
            "GPUs, so no trial could ever start. Use --gpus-per-trial 0 (and --device cpu), or "
            "join a cluster with GPUs (--address)."
        )


# --- the search space in Ray's terms ------------------------------------------------------


def param_space(search: SearchConfig) -> dict[str, Any]:
    """One Ray domain per searched path (its key is the dotted path itself)."""
    tune = require_tune()
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


# --- one trial ---------------------------------------------------------------------------


def epoch_metrics(row: dict[str, Any]) -> dict[str, Any]:
    metrics = {k: row[k] for k in EPOCH_METRICS if k in row}
    metrics["epoch"] = row.get("epoch", 0)
    return metrics


def run_in_trial(
    recipe: Recipe,
    folder: Path,
    context: dict[str, Any],
    on_metrics: Callable[[dict[str, Any]], None] | None = None,
) -> RunSummary:
    """The body of every Ray trial (a search's trial, a grid's run): ``hebbkit run`` into
    ``folder`` with the machine settings the driver passed in ``context``."""
    torch.set_num_threads(context["threads"])
    machine = Machine(
        data_root=Path(context["data_root"]),
        device=resolve_device(context["device"]),
        offline=context["offline"],
        track=context.get("track", []),
        precision=context.get("precision", "fp32"),
    )
    cache = context.get("hebbian_cache")
    return run_recipe(
        recipe,
        folder,
        get_registry(),
        machine,
        overwrite=True,
        on_metrics=on_metrics,
        hebbian_cache=Path(cache) if cache else None,
        origin=RunOrigin.from_context(context, folder),
    )


def run_trial(config: dict[str, Any], context: dict[str, Any]) -> None:
    """Tune's trainable of a search: one ``hebbkit run`` with the trial's overrides."""
    tune = require_tune()
    trial_id = tune.get_context().get_trial_id()
    trials = Path(context["trials_dir"])
    folder = trials / trial_id
    if is_finished(folder):
        # It finished before the search was interrupted, but Ray had not recorded that yet:
        # report what it wrote rather than train again.
        _replay(folder)
        return
    for path in leftovers(trials, trial_id):  # an earlier, interrupted attempt
        shutil.rmtree(path, ignore_errors=True)
    search = SearchConfig.model_validate(context["search"])
    values = decode(search, config)
    recipe = trial_recipe(
        context["base"],
        search,
        values,
        get_registry(),
        source=f"{context['source']} (trial {trial_id})",
    )
    last = recipe.readout.epochs
    final: dict[str, Any] = {}

    def on_metrics(row: dict[str, Any]) -> None:
        if row.get("phase") != "readout":
            return
        if row.get("epoch") == last:
            # Reported once the run folder is complete: Tune may stop the trial at any
            # report (ASHA does at max_t), and then the run never returns.
            final.update(row)
            return
        tune.report(epoch_metrics(row))

    # When Tune stops the trial (ASHA, Ctrl-C), tune.report raises SystemExit in here; the
    # run folder is then left as <id>.failed-*, which collect() renames to <id>.stopped.
    summary = run_in_trial(recipe, folder, context, on_metrics)
    tune.report(epoch_metrics(final or {**summary, "epoch": 0}))  # 0 read-out epochs: summary


def run_grid_job(config: dict[str, Any], context: dict[str, Any]) -> None:
    """Tune's trainable of a grid: one grid run (the run folder is the result)."""
    job = context["jobs"][config["job"]]
    folder = Path(job["folder"])
    if is_finished(folder):
        return  # finished in an earlier attempt of this trial
    recipe = validate_recipe(job["recipe"], get_registry(), source=f"grid run {job['label']}")
    run_in_trial(recipe, folder, context)


def _replay(folder: Path) -> None:
    tune = require_tune()
    rows = read_metrics(folder)
    readout = rows.filter(rows["phase"] == "readout") if "phase" in rows.columns else rows
    for row in readout.iter_rows(named=True):
        tune.report(epoch_metrics(row))
    if readout.is_empty():
        tune.report(epoch_metrics(dict(read_summary(folder))))


# --- the search --------------------------------------------------------------------------


def _search_progress(metric: str, total: int) -> Any:
    """A Tune callback printing one line per finished trial (Ray's own output is off
    unless --verbose)."""
    tune = require_tune()

    class Progress(tune.Callback):
        def __init__(self) -> None:
            self.metric = metric
            self.total = total

        def _line(self, trials: list[Any], trial: Any, text: str) -> None:
            # the trial's own status is not updated yet when Tune calls back
            done = 1 + sum(t.status in ("TERMINATED", "ERROR") for t in trials if t is not trial)
            print(
                f"[{done}/{self.total}] trial {trial.trial_id} {text}", file=sys.stderr, flush=True
            )

        def on_trial_complete(
            self, iteration: int, trials: list[Any], trial: Any, **info: Any
        ) -> None:
            value = (trial.last_result or {}).get(self.metric)
            shown = f"{value:.4f}" if isinstance(value, float) and math.isfinite(value) else "-"
            epochs = (trial.last_result or {}).get("training_iteration", 0)
            self._line(trials, trial, f"ended after {epochs} epochs: {self.metric} {shown}")

        def on_trial_error(
            self, iteration: int, trials: list[Any], trial: Any, **info: Any
        ) -> None:
            self._line(trials, trial, f"failed: {_error_text(_trial_error(trial))}")

    return Progress()


def _trial_error(trial: Any) -> Any:
    """The trial's exception, from the local copy Tune writes before it calls back."""
    from ray import cloudpickle

    try:
        path = trial.pickled_error_file
        if path and Path(path).exists():
            with open(path, "rb") as file:
                return cloudpickle.load(file)
        return trial.get_error()
    except Exception:  # unreadable or not written yet: the table has the error later
        return None


def run_search(plan: SearchPlan, out: Path, options: RayOptions) -> SearchOutcome:
    """Run (or resume) the search of ``plan`` in ``out``; Ray must be connected."""
    tune = require_tune()
    search = plan.search
    trials_dir = out / TRIALS_DIR
    trials_dir.mkdir(parents=True, exist_ok=True)
    context = {
        "base": plan.base,
        "search": search.model_dump(),
        "source": plan.source,
        "trials_dir": str(trials_dir),
        "data_root": str(options.data_root),
        "device": options.device,
        "offline": options.offline,
        "precision": options.precision,
        "threads": max(1, math.floor(options.cpus_per_trial)),
        "track": options.track,
        "hebbian_cache": str(out / HEBBIAN_CACHE_DIR) if plan.shares_hebbian_phases else None,
        "experiment": plan.name,
        "command": sys.argv,
    }
    resources = {"cpu": options.cpus_per_trial, "gpu": options.gpus_per_trial}
    trainable = tune.with_resources(tune.with_parameters(run_trial, context=context), resources)
    experiment = out / RAY_DIR
    if options.resume and tune.Tuner.can_restore(str(experiment)):
        # Finished and failed trials are kept; trials that were running start again.
        tuner = tune.Tuner.restore(
            str(experiment), trainable, resume_unfinished=True, resume_errored=False
        )
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=param_space(search),
            tune_config=tune.TuneConfig(
                metric=search.metric,
                mode=search.mode,
                search_alg=make_searcher(search, options.max_concurrent, options.verbose),
                scheduler=make_scheduler(search, plan.readout_epochs),
                num_samples=search.num_samples,
                reuse_actors=True,  # saves starting a Python with torch for every trial
                trial_name_creator=trial_dirname,
                trial_dirname_creator=trial_dirname,
            ),
            run_config=tune.RunConfig(
                name=RAY_DIR,
                storage_path=str(out),
                verbose=1 if options.verbose else 0,
                failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                callbacks=[_search_progress(search.metric, search.trial_count())],
            ),
        )
    with _quiet_tune(options.verbose):
        grid = tuner.fit()
    records = collect(grid, plan, trials_dir)
    ended = sum(r.status != "unfinished" for r in records)
    return SearchOutcome(records, interrupted=ended < search.trial_count())


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


# --- results -----------------------------------------------------------------------------


def collect(grid: Any, plan: SearchPlan, trials_dir: Path) -> list[TrialRecord]:
    """A :class:`TrialRecord` per trial, from the experiment state Tune saved.

    The saved state, not the live result grid: after Ctrl-C Tune tidies its live trials up
    as if they had ended, while the saved state still says which ones never did.
    """
    tune = require_tune()
    path = Path(grid.experiment_path)
    try:
        analysis = tune.ExperimentAnalysis(str(path)) if path.exists() else None
    except Exception:  # no state saved (interrupted at once): use what the grid holds
        analysis = None
    analysis = analysis or getattr(grid, "_experiment_analysis", None)
    trials = list(getattr(analysis, "trials", None) or [])
    frames = getattr(analysis, "trial_dataframes", {}) or {}
    records = []
    for trial in trials:
        trial_id = trial.trial_id
        try:
            values = decode(plan.search, trial.config)
        except KeyError:
            values = {}
        folder = trials_dir / trial_id
        summary = read_summary(folder) if is_finished(folder) else None
        if summary is not None:
            # The run folder is complete even when an interruption came before Tune recorded
            # the trial's last report (a resumed search replays it instead of training again).
            state = "ok"
        elif trial.status == "ERROR":
            state = "failed"
        elif trial.status != "TERMINATED":
            state = "unfinished"
        else:
            state = "stopped"
        records.append(
            TrialRecord(
                trial_id=trial_id,
                status=state,
                values=values,
                epochs=_folder_epochs(folder) if summary else _epochs(frames.get(trial_id)),
                summary=summary,
                error=_error_text(_trial_error(trial)) if state == "failed" else None,
            )
        )
    stopped = [r for r in records if r.status in ("stopped", "unfinished")]
    _wait_for_staging(trials_dir, [r.trial_id for r in stopped])
    for record in stopped:
        _keep_stopped(trials_dir, record.trial_id, len(record.epochs))
    for record in records:
        record.run_folder = _run_folder(trials_dir, record.trial_id)
    return records


def _wait_for_staging(trials_dir: Path, trial_ids: list[str], wait: float = 10.0) -> None:
    """Tune moves on as soon as it has told a trial to stop, while the trial's process is
    still unwinding: give those processes a moment to move their run folders out of staging.
    """
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(staged_attempts(trials_dir, t) for t in trial_ids):
        time.sleep(0.1)


def _keep_stopped(trials_dir: Path, trial_id: str, epochs: int) -> None:
    """Name the partial run folder of a stopped trial ``<id>.stopped``."""
    left = sorted(failed_attempts(trials_dir, trial_id), key=lambda p: p.stat().st_mtime)
    left += staged_attempts(trials_dir, trial_id)  # its process died mid-run
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


def _epochs(frame: Any) -> list[dict[str, float]]:
    if frame is None or frame.empty or "epoch" not in frame.columns:
        return []
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
        return "unknown error (see the trial's error.txt in the Ray folder)"
    if isinstance(error, str):  # Tune's text copy of the error: its last line names it
        return error.strip().splitlines()[-1] if error.strip() else "unknown error"
    cause = getattr(error, "cause", None) or error
    text = str(cause).strip()
    if cause is error and "Traceback" in text:  # a Ray error with its traceback inlined
        text = text.splitlines()[-1]
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


def _run_folder(trials_dir: Path, trial_id: str) -> str | None:
    candidates = [trials_dir / trial_id, trials_dir / f"{trial_id}{STOPPED_SUFFIX}"]
    candidates += failed_attempts(trials_dir, trial_id)[::-1]
    for path in candidates:
        if path.is_dir():
            return str(path)
    return None


def run_jobs(
    job: Callable[[dict[str, Any], dict[str, Any]], None],
    context: dict[str, Any],
    names: list[str],
    out: Path,
    options: RayOptions,
) -> dict[int, str]:
    """Run ``job(config, context)`` for ``config = {"job": i}``, i < len(names), as Tune trials.

    Tune only schedules (resources per job, concurrency, cluster); each job writes its own
    results. Returns each failed job's error text. Used by ``hebbkit grid --address``.
    """
    tune = require_tune()
    count = len(names)

    class Progress(tune.Callback):
        # Tune pickles its callbacks with the experiment: hold plain data, print to stderr.
        def __init__(self) -> None:
            self.names = names
            self.ended = 0

        def _line(self, trial: Any, text: str) -> None:
            self.ended += 1
            name = self.names[trial.config["job"]]
            print(f"[{self.ended}/{len(self.names)}] {name} {text}", file=sys.stderr, flush=True)

        def on_trial_complete(
            self, iteration: int, trials: list[Any], trial: Any, **info: Any
        ) -> None:
            self._line(trial, "finished")

        def on_trial_error(
            self, iteration: int, trials: list[Any], trial: Any, **info: Any
        ) -> None:
            self._line(trial, "failed")

    resources = {"cpu": options.cpus_per_trial, "gpu": options.gpus_per_trial}
    trainable = tune.with_resources(tune.with_parameters(job, context=context), resources)
    tuner = tune.Tuner(
        trainable,
        param_space={"job": tune.grid_search(list(range(count)))},
        tune_config=tune.TuneConfig(
            max_concurrent_trials=options.max_concurrent,
            trial_name_creator=lambda trial: f"job{trial.config['job']}",
            trial_dirname_creator=lambda trial: f"job{trial.config['job']}",
        ),
        run_config=tune.RunConfig(
            # Tune's bookkeeping, hidden from reports: resuming is done by summary.json
            name=f"ray-{time.strftime('%Y%m%d-%H%M%S')}",
            storage_path=str((out / ".ray").resolve()),
            verbose=1 if options.verbose else 0,
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
            callbacks=[Progress()],
        ),
    )
    # Tune's own console output is quieted; failed jobs are reported by the caller
    with _quiet_tune(options.verbose):
        results = tuner.fit()
    errors = {}
    for result in results:
        index = (result.config or {}).get("job")
        if result.error is not None and index is not None:
            cause = getattr(result.error, "cause", None) or result.error
            lines = str(cause).strip().splitlines()
            errors[int(index)] = f"{type(cause).__name__}: {lines[-1] if lines else ''}"
    return errors
