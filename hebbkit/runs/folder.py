"""THE run-folder format: every file name, the summary record, staging and the default folder.

A run writes into a hidden sibling folder and moves it into place only when it succeeded,
so a failure never touches an earlier run folder; a failed run is kept as
``<out>.failed-<time>``. Grids and searches keep their own files beside their runs; those
names are here too, so that writers and readers spell each one once.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypedDict, cast

import polars as pl

from hebbkit.errors import RunFolderError

# --- a run folder ------------------------------------------------------------------------------
RECIPE_FILE = "recipe.toml"
SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.parquet"
METRICS_CSV = "metrics.csv"
WINNERS_FILE = "winners.parquet"
WEIGHTS_FILE = "weights.pt"
FILTERS_FILE = "filters.png"
#: in a failed (or stopped) run's folder: what went wrong
ERROR_FILE = "error.txt"
#: in a stopped trial's folder: why Tune stopped it
STOPPED_FILE = "stopped.txt"
#: each experiment tracker's own files (e.g. TensorBoard's event files): trackers/<name>/
TRACKERS_DIR = "trackers"

# --- names of unfinished run folders, beside the folder they were meant to become -------------
FAILED_MARK = ".failed-"
PARTIAL_MARK = ".partial-"
STOPPED_SUFFIX = ".stopped"

# --- beside the runs of a grid or a search ------------------------------------------------------
#: Hebbian phases shared by runs that differ only in read-out keys: <hash>.pt
HEBBIAN_CACHE_DIR = ".hebbian-cache"

# --- a grid's output folder ------------------------------------------------------------------
#: the plan, for ``hebbkit report``
MANIFEST_FILE = "grid.json"
#: each run of a grid is ``<label>/seed<k>/``
SEED_FOLDER = "seed{seed}"

# --- a search's output folder ----------------------------------------------------------------
SEARCH_FILE = "search.toml"
TRIALS_DIR = "trials"
#: Tune's own bookkeeping of the search (what --resume restores)
RAY_DIR = "ray"
TRIALS_FILE = "trials.parquet"
TRIALS_CSV = "trials.csv"
BEST_FILE = "best.toml"
SEEDS_FILE = "seeds.parquet"
SEEDS_CSV = "seeds.csv"
SEARCH_PLOT = "report.png"


class Seconds(TypedDict, total=False):
    data: float
    hebbian: float
    features: float
    readout: float
    total: float


class LayerTiming(TypedDict):
    layer: int
    seconds: float
    images_per_second: float


class RunSummary(TypedDict, total=False):
    """``summary.json``: what a finished run reports, read back by grids, searches and reports.

    Accuracies are fractions in [0, 1]; ``validation_accuracy`` exists only with a validation
    split, ``peak_gpu_bytes`` only on a GPU. Older folders may lack later keys: read with
    ``.get``.
    """

    recipe: str
    seed: int
    dataset: str
    test_accuracy: float
    train_accuracy: float
    validation_accuracy: float
    train_images: int
    validation_images: int
    test_images: int
    feature_size: int
    feature_dtype: str
    seconds: Seconds
    hebbian_layers: list[LayerTiming]
    hebbian_images_per_second: list[float]
    peak_rss_bytes: int
    peak_gpu_bytes: int
    hardware: dict[str, Any]
    versions: dict[str, str]
    components: dict[str, dict[str, str]]
    command: list[str]
    #: git commit and dirty flag of the hebbkit checkout and of the recipe's folder
    git: dict[str, dict[str, Any]]
    #: sha256 (16 hex digits) of everything that determines the Hebbian weights
    hebbian_hash: str
    #: the run folder or cache entry whose Hebbian weights this run reused (no Hebbian phase)
    hebbian_from: str
    started_at: str
    finished_at: str


def is_finished(folder: Path) -> bool:
    """A run folder is finished once its summary is written (the last file a run writes)."""
    return (folder / SUMMARY_FILE).is_file()


def read_summary(folder: Path) -> RunSummary:
    """The run's ``summary.json``; a missing or unreadable one is a :class:`RunFolderError`."""
    path = folder / SUMMARY_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise RunFolderError(f"Cannot read {path}: {error}.") from None
    if not isinstance(data, dict):
        raise RunFolderError(f"{path} does not hold a JSON object.")
    return cast(RunSummary, data)


def write_summary(folder: Path, summary: RunSummary) -> None:
    write_json(folder / SUMMARY_FILE, dict(summary))


def is_unfinished_name(name: str) -> bool:
    """Whether a folder name is a staged, failed or stopped run (never a result)."""
    return name.startswith(".") or FAILED_MARK in name or name.endswith(STOPPED_SUFFIX)


def leftovers(parent: Path, name: str) -> list[Path]:
    """Unfinished attempts at the run folder ``parent/name``: staged, failed, stopped."""
    patterns = (f"{name}{STOPPED_SUFFIX}", f"{name}{FAILED_MARK}*", f".{name}{PARTIAL_MARK}*")
    return [path for pattern in patterns for path in sorted(parent.glob(pattern))]


def failed_attempts(parent: Path, name: str) -> list[Path]:
    """``<name>.failed-<time>`` folders, oldest first."""
    return sorted(parent.glob(f"{name}{FAILED_MARK}*"))


def staged_attempts(parent: Path, name: str) -> list[Path]:
    """``.<name>.partial-<pid>`` folders: runs in progress, or whose process died."""
    return sorted(parent.glob(f".{name}{PARTIAL_MARK}*"))


def run_name_of(failed: Path) -> str:
    """The run folder name a ``<name>.failed-<time>`` folder was meant to become."""
    return failed.name.split(FAILED_MARK)[0]


def runs_root() -> Path:
    """``HEBBKIT_RUNS``, else ``./runs``: where run, grid and search folders go by default."""
    return Path(os.environ.get("HEBBKIT_RUNS", "runs"))


def default_run_folder(name: str, root: Path | None = None) -> Path:
    """``<runs root>/<name>/<timestamp>``, made unique with a suffix."""
    root = runs_root() if root is None else root
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = root / name / stamp
    suffix = 1
    while folder.exists():
        folder = root / name / f"{stamp}-{suffix}"
        suffix += 1
    return folder


def check_run_folder(folder: Path, overwrite: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"--out {folder} is a file, not a folder.")
    if folder.exists() and any(folder.iterdir()) and not overwrite:
        raise RunFolderError(
            f"Run folder {folder} already exists and is not empty. Choose another --out, or pass "
            "--overwrite to replace it once the new run has succeeded."
        )


def staging_path(folder: Path, pid: int | None = None) -> Path:
    """Where the run meant to become ``folder`` is written while it runs (by process ``pid``,
    default this one): what to read to watch a run."""
    return folder.parent / f".{folder.name}{PARTIAL_MARK}{os.getpid() if pid is None else pid}"


@contextmanager
def staged_folder(folder: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a staging folder that becomes ``folder`` only if the block succeeds."""
    check_run_folder(folder, overwrite)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunFolderError(f"Cannot create {folder.parent}: {error}.") from None
    staging = staging_path(folder)
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        yield staging
    except BaseException as error:
        (staging / ERROR_FILE).write_text(f"{type(error).__name__}: {error}\n")
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        failed = folder.parent / f"{folder.name}{FAILED_MARK}{stamp}"
        staging.rename(failed)
        error.add_note(f"The unfinished run's files are in {failed}.")
        raise
    old = None
    if folder.exists():
        old = folder.parent / f".{folder.name}.old-{os.getpid()}"
        folder.rename(old)
    staging.rename(folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --- writing tables --------------------------------------------------------------------------


def metrics_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(
            {"phase": [], "epoch": []}, schema={"phase": pl.Utf8, "epoch": pl.Int64}
        )
    return pl.from_dicts(rows, infer_schema_length=None)


def write_metrics(folder: Path, rows: list[dict[str, Any]], *, live: bool = False) -> None:
    """The metrics table as Parquet and CSV; ``live``: Parquet only, as it grows during a run.

    Parquet is replaced atomically, so a reader (``pl.read_parquet``) mid-run always finds a
    whole table; a run rewrites it after every row (tens to a few hundred rows: milliseconds).
    """
    frame = metrics_frame(rows)
    replace_atomically(folder / METRICS_FILE, frame.write_parquet)
    if not live:
        frame.write_csv(folder / METRICS_CSV)


def replace_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """``write(temporary)`` beside ``path``, then rename it over ``path`` in one step."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def read_metrics(folder: Path) -> pl.DataFrame:
    """The run's metrics table (empty if the run wrote none)."""
    path = folder / METRICS_FILE
    return pl.read_parquet(path) if path.is_file() else pl.DataFrame()


def write_table(path: Path, rows: list[dict[str, Any]]) -> None:
    replace_atomically(path, pl.from_dicts(rows).write_parquet)


def write_frame(frame: pl.DataFrame, parquet: Path, csv: Path) -> None:
    """One table as Parquet and as CSV."""
    frame.write_parquet(parquet)
    frame.write_csv(csv)


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
