"""Faults while runs are going: signals, a rival run on the same folder, a full or read-only
disk. No finished run is ever lost, an unfinished one is always visible, and the same seed
gives the same numbers.

Real ``hebbkit run`` processes on fake data, started together so that the module costs one
start-up; disk faults use a small tmpfs where this machine lets us mount one (root), and an
injected OSError everywhere.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
import tomli_w
import torch
from typer.testing import CliRunner

from hebbkit.cli.app import app
from hebbkit.runs.folder import FolderClaim
from tests.conftest import TINY_RECIPE
from tests.data_files import write_random_mnist

runner = CliRunner()

#: long enough to be stopped in the middle (a few hundred Hebbian epochs over 600 images)
LONG = {**TINY_RECIPE, "hebbian": {"epochs": 500, "batch_size": 8, "diagnostics": 2}}
SHORT = {**TINY_RECIPE, "readout": {"epochs": 2, "batch_size": 16}}
STOP_AFTER = 1.0  # seconds after <out>.running appears: the run is reading data or learning


def digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and the SHA-256 of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def cli_run(recipe: Path, out: Path, data: Path, *extra: str) -> tuple[int, str]:
    args = ["run", str(recipe), "--out", str(out), "--data-root", str(data), "--offline", "-q"]
    result = runner.invoke(app, [*args, *extra])
    return result.exit_code, result.output


def start(recipe: Path, out: Path, data: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "hebbkit", "run", str(recipe), "--out", str(out)]
    command += ["--data-root", str(data), "--offline", "-q", *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEBBKIT_")}
    env["OMP_NUM_THREADS"] = "1"  # tiny tensors: threads only wait for each other
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # a signal to the test's group never reaches it, nor back
    )


def wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"the run ended before {path} appeared: {process.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear in {timeout} s")
        time.sleep(0.05)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """The runs here are tiny; on a busy machine two threads per tiny operation mostly wait
    for each other (tens of times slower), so this module computes on one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@dataclass
class Stopped:
    """A run stopped by a signal in the middle: its folder, and what it left."""

    out: Path
    earlier: dict[str, str]
    returncode: int
    stderr: str
    rival_code: int = 0
    rival_output: str = ""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Fake data, the two recipes, and one finished run to copy as an earlier result."""
    root = tmp_path_factory.mktemp("faults")
    data = write_random_mnist(root / "data", train=600, test=100)
    long, short = root / "long.toml", root / "short.toml"
    long.write_text(tomli_w.dumps(LONG))
    short.write_text(tomli_w.dumps(SHORT))
    code, output = cli_run(short, root / "template", data)
    assert code == 0, output
    return {"root": root, "data": data, "long": long, "short": short, "template": root / "template"}


@dataclass
class Launched:
    out: Path
    process: subprocess.Popen[str]
    #: the earlier run's files in ``out`` (empty when there was none)
    earlier: dict[str, str]


@pytest.fixture(scope="module")
def launched(world: dict[str, Path]) -> Iterator[dict[str, Launched]]:
    """Every real process of this module, started at once (one start-up wave): three long
    runs, each replacing an earlier finished run (--overwrite), to be stopped by SIGINT,
    SIGTERM and SIGKILL; and two long runs on one fresh folder, started together."""
    started = {}
    for name in ("SIGINT", "SIGTERM", "SIGKILL"):
        out = world["root"] / name / "out"
        shutil.copytree(world["template"], out)
        before = digest(out)
        started[name] = Launched(
            out, start(world["long"], out, world["data"], "--overwrite"), before
        )
    for name in ("pair-a", "pair-b"):
        out = world["root"] / "pair" / "out"
        started[name] = Launched(out, start(world["long"], out, world["data"]), {})
    yield started
    for run in started.values():  # none may outlive the module
        if run.process.poll() is None:
            run.process.kill()
            run.process.communicate()


@pytest.fixture(scope="module")
def stopped(world: dict[str, Path], launched: dict[str, Launched]) -> dict[str, Stopped]:
    """The three runs stopped mid-run by their signal; while the SIGINT one runs, a rival run
    on its folder is tried from this process."""
    results = {}
    for name in ("SIGINT", "SIGTERM", "SIGKILL"):
        out, process, before = launched[name].out, launched[name].process, launched[name].earlier
        wait_for(out.with_name("out.running"), process)
        result = Stopped(out, before, 0, "")
        if name == "SIGINT":  # a second run on a folder in use is refused, naming the holder
            result.rival_code, result.rival_output = cli_run(
                world["short"], out, world["data"], "--overwrite"
            )
        time.sleep(STOP_AFTER)
        assert process.poll() is None, "the run ended before it could be stopped"
        os.kill(process.pid, getattr(signal, name))
        _, result.stderr = process.communicate(timeout=120)
        result.returncode = process.returncode
        results[name] = result
    return results


@pytest.mark.parametrize("name, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_stopped_run_keeps_earlier_folder_and_a_failed_one(
    stopped: dict[str, Stopped], name: str, code: int
) -> None:
    run = stopped[name]
    assert run.returncode == code, run.stderr
    assert "Traceback" not in run.stderr
    assert digest(run.out) == run.earlier  # byte for byte
    failed = sorted(run.out.parent.glob("out.failed-*"))
    assert len(failed) == 1, list(run.out.parent.iterdir())
    assert f"The unfinished run's files are in {failed[0]}" in run.stderr
    reason = (failed[0] / "error.txt").read_text()
    assert ("KeyboardInterrupt" if name == "SIGINT" else "stopped by SIGTERM") in reason
    assert (failed[0] / "recipe.toml").is_file() and (failed[0] / "metrics.parquet").is_file()
    assert not out_running(run.out).exists()
    assert not [p for p in run.out.parent.iterdir() if ".partial-" in p.name]


def out_running(out: Path) -> Path:
    return out.with_name(out.name + ".running")


def test_rival_run_on_a_folder_in_use_is_refused(stopped: dict[str, Stopped]) -> None:
    run = stopped["SIGINT"]
    assert run.rival_code == 2, run.rival_output
    assert "in use by another hebbkit process (pid" in run.rival_output
    assert "Traceback" not in run.rival_output
    assert digest(run.out) == run.earlier


def test_killed_run_is_visible_then_found_by_the_next_run(
    stopped: dict[str, Stopped], world: dict[str, Path]
) -> None:
    run = stopped["SIGKILL"]
    assert run.returncode == -signal.SIGKILL
    assert digest(run.out) == run.earlier
    staging = out_running(run.out)
    assert staging.is_dir()  # visible, not hidden
    # the next run on the same folder reports and keeps the leftover, and (without
    # --overwrite) refuses to replace the earlier run
    code, output = cli_run(world["short"], run.out, world["data"])
    assert code == 2, output
    assert "Found the unfinished run folder of a process that died" in output
    assert "already exists" in output
    assert not staging.exists()
    failed = sorted(run.out.parent.glob("out.failed-*"))
    assert len(failed) == 1 and "killed" in (failed[0] / "error.txt").read_text()
    assert digest(run.out) == run.earlier


def test_stale_staging_of_another_run_in_the_same_parent(
    tmp_path: Path, world: dict[str, Path]
) -> None:
    """A dead process's <name>.running beside a new run's folder is found too (default
    folders are timestamps in one parent, so the next run never has the same name)."""
    (tmp_path / "20260101-000000.running").mkdir()
    (tmp_path / "20260101-000000.running" / "recipe.toml").write_text("name = 'x'\n")
    (tmp_path / ".20260101-000001.partial-999999999").mkdir()  # an older hebbkit's
    code, output = cli_run(world["short"], tmp_path / "20260101-000002", world["data"])
    assert code == 0, output
    assert output.count("Found the unfinished run folder") == 2
    names = sorted(p.name for p in tmp_path.iterdir())
    assert [n for n in names if ".failed-" in n] == [
        n for n in names if n.startswith(("20260101-000000.failed-", "20260101-000001.failed-"))
    ]
    assert len([n for n in names if ".failed-" in n]) == 2
    assert not [n for n in names if n.endswith(".running") or ".partial-" in n]


def test_two_runs_started_together(launched: dict[str, Launched]) -> None:
    processes = [launched["pair-a"].process, launched["pair-b"].process]
    out = launched["pair-a"].out
    deadline = time.monotonic() + 180
    while all(p.poll() is None for p in processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    refused = next(p for p in processes if p.poll() is not None)
    winner = next(p for p in processes if p is not refused)
    _, stderr = refused.communicate(timeout=30)
    assert refused.returncode == 2, stderr
    assert f"in use by another hebbkit process (pid {winner.pid}" in stderr
    assert "Traceback" not in stderr
    assert winner.poll() is None  # still running, undisturbed
    os.kill(winner.pid, signal.SIGTERM)
    winner.communicate(timeout=120)
    assert winner.returncode == 143
    assert not out.exists() and len(list(out.parent.glob("out.failed-*"))) == 1


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small tmpfs at ``path``, or a skip where this machine does not allow mounting."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


BIG_READOUT = {  # 64·14·14 features: weights.pt (~0.5 MiB) does not fit in 256 KiB
    **SHORT,
    "layers": [{**TINY_RECIPE["layers"][0], "channels": 64}],
}


def test_disk_full_on_a_real_tmpfs(tmp_path: Path, world: dict[str, Path]) -> None:
    recipe = tmp_path / "big.toml"
    recipe.write_text(tomli_w.dumps(BIG_READOUT))
    with tmpfs(tmp_path / "disk", "256k") as disk:
        code, output = cli_run(recipe, disk / "out", world["data"])
        assert code == 2, output
        assert "No space left on device" in output and "Traceback" not in output
        failed = sorted(disk.glob("out.failed-*"))
        assert len(failed) == 1 and not (disk / "out").exists()
        assert str(failed[0]) in output
        # what was written before the disk filled up is kept
        assert (failed[0] / "recipe.toml").is_file()
        assert (failed[0] / "metrics.parquet").is_file()


def test_disk_full_injected(
    tmp_path: Path, world: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(obj: object, path: object, *args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(torch, "save", full)
    code, output = cli_run(world["short"], tmp_path / "out", world["data"])
    assert code == 2, output
    assert "Cannot write" in output and "weights.pt: No space left on device" in output
    failed = sorted(tmp_path.glob("out.failed-*"))
    assert len(failed) == 1 and (failed[0] / "metrics.parquet").is_file()
    assert not (tmp_path / "out").exists()


def test_read_only_output_keeps_the_earlier_run(tmp_path: Path, world: dict[str, Path]) -> None:
    with tmpfs(tmp_path / "disk", "4m") as disk:
        shutil.copytree(world["template"], disk / "out")
        before = digest(disk / "out")
        remount = subprocess.run(
            ["mount", "-o", "remount,ro", str(disk)], capture_output=True, check=False
        )
        if remount.returncode != 0:
            pytest.skip(f"cannot remount read-only: {remount.stderr.decode().strip()}")
        code, output = cli_run(world["short"], disk / "out", world["data"], "--overwrite")
        assert code == 2, output
        assert "Read-only file system" in output and "Traceback" not in output
        assert digest(disk / "out") == before


def test_same_seed_gives_identical_numbers(tmp_path: Path, world: dict[str, Path]) -> None:
    summaries, metrics = [], []
    for name in ("a", "b"):
        code, output = cli_run(world["short"], tmp_path / name, world["data"])
        assert code == 0, output
        summaries.append(json.loads((tmp_path / name / "summary.json").read_text()))
        frame = pl.read_parquet(tmp_path / name / "metrics.parquet")
        metrics.append(frame.drop([c for c in frame.columns if "second" in c]))
    for key in ("test_accuracy", "train_accuracy", "feature_size"):
        assert summaries[0][key] == summaries[1][key]
    assert metrics[0].equals(metrics[1])
    weights = [torch.load(tmp_path / n / "weights.pt", weights_only=True) for n in ("a", "b")]
    for key, tensor in weights[0]["network"].items():
        assert torch.equal(tensor, weights[1]["network"][key]), key


def test_grid_folder_in_use_is_refused(tmp_path: Path, world: dict[str, Path]) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text(f'name = "g"\nbase = "{world["short"]}"\n')
    out = tmp_path / "grid-out"
    with FolderClaim(out, "Grid folder"):
        result = runner.invoke(
            app, ["grid", str(grid), "--out", str(out), "--data-root", str(world["data"])]
        )
    assert result.exit_code == 2, result.output
    assert f"Grid folder {out} is in use by another hebbkit process (pid {os.getpid()}" in (
        result.output
    )
    assert not out.exists()


def test_search_folder_in_use_is_refused(tmp_path: Path, world: dict[str, Path]) -> None:
    pytest.importorskip("ray.tune")
    recipe = tmp_path / "search.toml"
    space = {"readout.lr": {"choice": [0.01]}}
    recipe.write_text(
        tomli_w.dumps({**SHORT, "search": {"metric": "test_accuracy", "space": space}})
    )
    out = tmp_path / "search-out"
    with FolderClaim(out, "Search folder"):
        result = runner.invoke(app, ["tune", str(recipe), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert f"Search folder {out} is in use by another hebbkit process" in result.output
    assert not out.exists()
