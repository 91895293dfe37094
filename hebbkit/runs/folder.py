"""THE run-folder format: every file name, the summary record, claiming and staging, and
the default folder.

A run claims its folder (an exclusive lock beside it, so two runs never share one), writes
into ``<out>.running`` and moves it into place only when it succeeded, so a failure never
touches an earlier run folder; a failed run is kept as ``<out>.failed-<time>``, and a run
whose process was killed is found and kept that way by the next run. Grid and search folders
are claimed the same way. Grids and searches keep their own files beside their runs; those
names are here too, so that writers and readers spell each one once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypedDict, cast

import polars as pl

from hebbkit.config.toml import os_reason
from hebbkit.environment import env_value
from hebbkit.errors import FolderInUse, HebbkitNotice, RunFolderError, SettingError
from hebbkit.runs.file_lock import try_lock

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
#: a run in progress writes into ``<out>.running``
RUNNING_SUFFIX = ".running"
#: what an older hebbkit named its hidden staging folder (``.<out>.partial-<pid>``)
PARTIAL_MARK = ".partial-"
STOPPED_SUFFIX = ".stopped"
#: the claim on an output folder is ``.<name>.lock`` beside it
LOCK_SUFFIX = ".lock"
#: seconds a claim waits for a lock held only briefly (another run's scan for stale folders)
CLAIM_PATIENCE = 0.5

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
#: where that bookkeeping is when it is not RAY_DIR (hebbkit tune --storage)
STORAGE_FILE = "storage.json"
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


class HebbianLayerRecord(LayerTiming, total=False):
    """A layer's entry in ``summary.json``: its timing and (runs since ``bf16-auto``) the
    dtype its matrix products took."""

    product_dtype: str


class RunSummary(TypedDict, total=False):
    """``summary.json``: what a finished run reports, read back by grids, searches and reports.

    Accuracies are fractions in [0, 1]; ``validation_accuracy`` exists only with a validation
    split, ``peak_gpu_bytes`` and ``tf32`` (the TF32 flags in force) only on a GPU. Older
    folders may lack later keys (``precision``: fp32 before it was recorded): read with
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
    #: the last layer's inputs kept from the Hebbian phase (FrontCache), or None
    front_cache: dict[str, int] | None
    precision: str
    tf32: dict[str, str]
    seconds: Seconds
    hebbian_layers: list[HebbianLayerRecord]
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


def recorded_precision(summary: RunSummary) -> str:
    """The ``--precision`` a finished run ran with (fp32 for runs from before it was recorded)."""
    return summary.get("precision", "fp32")


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
    return (
        name.startswith(".")
        or FAILED_MARK in name
        or name.endswith(STOPPED_SUFFIX)
        or name.endswith(RUNNING_SUFFIX)
    )


def leftovers(parent: Path, name: str) -> list[Path]:
    """Unfinished attempts at the run folder ``parent/name``: staged, failed, stopped."""
    patterns = (f"{name}{STOPPED_SUFFIX}", f"{name}{FAILED_MARK}*")
    found = [path for pattern in patterns for path in sorted(parent.glob(pattern))]
    return found + staged_attempts(parent, name)


def failed_attempts(parent: Path, name: str) -> list[Path]:
    """``<name>.failed-<time>`` folders, oldest first."""
    return sorted(parent.glob(f"{name}{FAILED_MARK}*"))


def staged_attempts(parent: Path, name: str) -> list[Path]:
    """``<name>.running`` (and an older hebbkit's ``.<name>.partial-<pid>``): a run in
    progress, or one whose process died."""
    running = parent / f"{name}{RUNNING_SUFFIX}"
    legacy = sorted(parent.glob(f".{name}{PARTIAL_MARK}*"))
    return ([running] if running.is_dir() else []) + legacy


def run_name_of(failed: Path) -> str:
    """The run folder name a ``<name>.failed-<time>`` folder was meant to become."""
    return failed.name.split(FAILED_MARK)[0]


def runs_root() -> Path:
    """``HEBBKIT_RUNS``, else ``./runs``: where run, grid and search folders go by default."""
    value = env_value("HEBBKIT_RUNS")
    if value is None:
        return Path("runs")
    root = Path(value).expanduser()
    if root.exists() and not root.is_dir():
        raise SettingError(
            f"HEBBKIT_RUNS={value!r} is a file, not a folder: set it to the folder that holds "
            "run, grid and search folders (default ./runs), or pass --out."
        )
    return root


def default_run_folder(name: str, root: Path | None = None) -> Path:
    """``<runs root>/<name>/<timestamp>``, made unique with a suffix."""
    root = runs_root() if root is None else root
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = root / name / stamp
    suffix = 1
    while folder.exists() or running_folder(folder).exists():
        folder = root / name / f"{stamp}-{suffix}"
        suffix += 1
    return folder


def check_run_folder(folder: Path, overwrite: bool) -> None:
    try:
        exists, is_dir = folder.exists(), folder.is_dir()
        empty = not exists or (is_dir and not any(folder.iterdir()))
    except OSError as error:
        raise RunFolderError(f"Cannot use --out {folder}: {os_reason(error)}.") from None
    if exists and not is_dir:
        raise RunFolderError(f"--out {folder} is a file, not a folder.")
    if not empty and not overwrite:
        raise RunFolderError(
            f"Run folder {folder} already exists and is not empty. Choose another --out, or pass "
            "--overwrite to replace it once the new run has succeeded."
        )


# --- claiming a folder -------------------------------------------------------------------------


def running_folder(folder: Path) -> Path:
    """Where a run writes until it has finished: ``<out>.running``, visible beside ``<out>``."""
    return folder.parent / f"{folder.name}{RUNNING_SUFFIX}"


def staging_path(folder: Path, pid: int | None = None) -> Path:
    """Where the run meant to become ``folder`` is written while it runs: what to read to
    watch a run. ``pid`` is accepted for older callers; the folder is one per ``folder``
    (:func:`running_folder`), whichever process writes it."""
    return running_folder(folder)


def lock_file(folder: Path) -> Path:
    """The lock that claims ``folder``: ``.<name>.lock`` beside it."""
    return folder.parent / f".{folder.name}{LOCK_SUFFIX}"


class FolderClaim:
    """An exclusive claim on an output folder, held by this process until released.

    The claim is an ``flock`` on ``.<name>.lock`` beside the folder, which records the
    holder (pid, host, start time, command): taking it is atomic (never check-then-act), a
    second claim is refused naming the holder, and the kernel drops it when the holder dies,
    even by SIGKILL, so a claim never outlives its process. Run, grid and search folders are
    all claimed this way.
    """

    def __init__(self, folder: Path, what: str = "Run folder") -> None:
        self.folder = folder
        self.what = what
        self.path = lock_file(folder)
        self._fd: int | None = None

    def acquire(self) -> FolderClaim:
        if not self.folder.name or self.folder.name in (".", ".."):
            raise RunFolderError(
                f"{self.what} {self.folder} names no folder: give a path below it."
            )
        try:
            self.folder.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunFolderError(
                f"Cannot create {self.folder.parent}: {os_reason(error)}."
            ) from None
        deadline = time.monotonic() + CLAIM_PATIENCE
        while self._fd is None:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                raise RunFolderError(
                    f"Cannot claim {self.what.lower()} {self.folder}: cannot create its lock "
                    f"{self.path}: {os_reason(error)}."
                ) from None
            try:
                locked = try_lock(fd)
            except OSError as error:
                os.close(fd)
                raise RunFolderError(
                    f"Cannot lock {self.path} to claim {self.folder}: {os_reason(error)}."
                ) from None
            if not locked:
                holder = _read_holder(fd)
                os.close(fd)
                if time.monotonic() < deadline:  # perhaps only another run's stale scan
                    time.sleep(0.05)
                    continue
                raise FolderInUse(
                    f"{self.what} {self.folder} is in use by another hebbkit process "
                    f"({holder}). Wait for it to end, or choose another --out."
                )
            if _same_file(fd, self.path):
                self._fd = fd
            else:  # its holder released and removed it in between: claim the new one
                os.close(fd)
        _write_holder(self._fd)
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        # removed while still locked: whoever opened the old file sees it is gone and retries
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> FolderClaim:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _same_file(fd: int, path: Path) -> bool:
    try:
        mine, there = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)


def _write_holder(fd: int) -> None:
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": utc_now(),
        "command": " ".join(sys.argv)[:500],
    }
    with contextlib.suppress(OSError):  # a full disk must not stop a run from claiming
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)  # not pwrite: Windows has none
        os.write(fd, (json.dumps(holder) + "\n").encode())


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        holder = json.loads(os.read(fd, 4096).decode() or "{}")
    except (OSError, ValueError):
        holder = {}
    if not isinstance(holder, dict) or "pid" not in holder:
        return "it is just starting"
    return (
        f"pid {holder.get('pid')} on {holder.get('host', '?')}, started "
        f"{holder.get('started', '?')}: {holder.get('command', '?')}"
    )


# --- staging a run folder --------------------------------------------------------------------


def _stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def _failed_name(folder: Path) -> Path:
    """A new ``<out>.failed-<time>`` (``-1``, ``-2``... when one exists for that second)."""
    base = folder.parent / f"{folder.name}{FAILED_MARK}{_stamp()}"
    target, suffix = base, 1
    while target.exists():
        target = base.with_name(f"{base.name}-{suffix}")
        suffix += 1
    return target


def keep_failed(staging: Path, folder: Path, reason: str) -> Path | None:
    """Rename a run's staging folder to ``<out>.failed-<time>`` with ``error.txt`` saying
    ``reason``; returns where it went (None if even that failed: then it stays put)."""
    with contextlib.suppress(OSError):  # a full disk may refuse error.txt, not the rename
        (staging / ERROR_FILE).write_text(reason.rstrip() + "\n")
    target = _failed_name(folder)
    try:
        staging.rename(target)
    except OSError:
        return None
    return target


def recover_stale(parent: Path, held: Path | None = None) -> list[Path]:
    """Find the staging folders in ``parent`` whose process died (killed, out of memory) and
    keep each as ``<name>.failed-<time>``; also drop lock files nobody holds. ``held`` is a
    folder this process has claimed (its staging folder, if any, is stale by definition).
    Returns the failed folders made, so that the caller can say so: leftovers never pile up
    silently."""
    kept = []
    if held is not None and running_folder(held).is_dir():
        target = keep_failed(running_folder(held), held, STALE_REASON)
        kept += [target] if target else []
    try:
        running = sorted(parent.glob(f"*{RUNNING_SUFFIX}"))
        legacy = sorted(parent.glob(f".*{PARTIAL_MARK}*"))
        locks = sorted(parent.glob(f".*{LOCK_SUFFIX}"))
    except OSError:
        return []
    for staging in running:
        folder = staging.with_name(staging.name.removesuffix(RUNNING_SUFFIX))
        if folder == held:
            continue
        try:
            with FolderClaim(folder):
                if staging.is_dir():
                    target = keep_failed(staging, folder, STALE_REASON)
                    kept += [target] if target else []
        except RunFolderError:
            continue  # its run is alive (or the folder cannot be claimed): leave it
    for staging in legacy:  # an older hebbkit's hidden staging folder: dead if its pid is
        name, _, pid = staging.name[1:].rpartition(PARTIAL_MARK)
        if pid.isdigit() and not _alive(int(pid)) and staging.is_dir():
            target = keep_failed(staging, staging.with_name(name), STALE_REASON)
            kept += [target] if target else []
    for lock in locks:
        folder = lock.with_name(lock.name[1:].removesuffix(LOCK_SUFFIX))
        if folder != held and not running_folder(folder).exists() and _old(lock):
            with contextlib.suppress(RunFolderError), FolderClaim(folder):
                pass  # claimed and released: the file is removed
    return kept


STALE_REASON = (
    "The process that wrote this run ended without finishing or cleaning up: it was killed "
    "(SIGKILL, the out-of-memory killer, a lost node). Its partial files are kept here."
)


def _old(path: Path, seconds: float = 60.0) -> bool:
    """Whether ``path`` was last changed more than ``seconds`` ago (a fresh lock may be a run
    starting)."""
    try:
        return time.time() - path.stat().st_mtime > seconds
    except OSError:
        return False


def _alive(pid: int) -> bool:
    if sys.platform == "win32":  # os.kill(pid, 0) would end the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def staged_folder(folder: Path, overwrite: bool) -> Iterator[Path]:
    """Yield ``<out>.running``, which becomes ``folder`` only if the block succeeds.

    ``folder`` is claimed (:class:`FolderClaim`) for the whole run, so a second run on the
    same folder is refused and a finished folder is replaced only with ``overwrite``, by the
    run holding the claim, once it has succeeded. A failed or interrupted run (Ctrl-C,
    SIGTERM) is kept as ``<out>.failed-<time>`` with ``error.txt``; a killed run's staging
    folder is found and kept that way by the next run in the same parent folder.
    """
    with FolderClaim(folder):
        for stale in recover_stale(folder.parent, held=folder):
            warnings.warn(
                f"Found the unfinished run folder of a process that died; kept it as {stale} "
                f"({ERROR_FILE} says so).",
                HebbkitNotice,
                stacklevel=3,
            )
        check_run_folder(folder, overwrite)
        staging = running_folder(folder)
        try:
            staging.mkdir()
        except OSError as error:
            raise RunFolderError(f"Cannot create {staging}: {os_reason(error)}.") from None
        try:
            yield staging
        except BaseException as error:
            failed = keep_failed(staging, folder, f"{type(error).__name__}: {error}")
            where = failed or staging
            error.add_note(f"The unfinished run's files are in {where}.")
            raise
        _move_into_place(staging, folder, overwrite)


def _move_into_place(staging: Path, folder: Path, overwrite: bool) -> None:
    """``staging`` becomes ``folder``; an old ``folder`` goes only if empty or ``overwrite``."""
    old = None
    try:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        elif folder.exists() and overwrite:
            old = folder.parent / f".{folder.name}.old-{os.getpid()}"
            folder.rename(old)
        elif folder.exists():
            failed = keep_failed(staging, folder, "Finished; the run folder appeared meanwhile.")
            raise RunFolderError(
                f"{folder} appeared while the run was going (created outside hebbkit) and is "
                f"not empty, so it was left alone. The finished run is in {failed or staging}."
            )
        staging.rename(folder)
    except OSError as error:
        raise RunFolderError(
            f"Cannot move the finished run {staging} to {folder}: {os_reason(error)}. "
            f"The run's files are in {staging}{f' and the old run in {old}' if old else ''}."
        ) from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn a failure to write ``path`` (disk full, read-only, no permission) into a
    :class:`~hebbkit.errors.RunFolderError` naming the file and the reason."""
    try:
        yield
    except OSError as error:
        raise RunFolderError(f"Cannot write {path}: {os_reason(error)}.") from None
    except Exception as error:
        # torch and polars report a failed write in their own exception types
        reason = _disk_problem(path)
        if reason is None:
            raise
        raise RunFolderError(
            f"Cannot write {path}: {reason} ({type(error).__name__}: {str(error)[:200]})."
        ) from None


def _disk_problem(path: Path) -> str | None:
    """Why files cannot be written next to ``path``, if we can tell."""
    try:
        if not os.access(path.parent, os.W_OK):
            return "the folder is not writable"
        if shutil.disk_usage(path.parent).free < 1024**2:
            return "No space left on device"
    except OSError as error:
        return os_reason(error)
    return None


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
