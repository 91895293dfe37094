"""Watching a run: progress lines in a job log, bars with loss and accuracy on a terminal, the
run folder printed first, and metrics.parquet readable while the run goes."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import tomli_w
from rich.console import Console

from hebbkit.engine.progress import LogProgress, RichProgress, make_progress, row_text
from hebbkit.plugins import get_registry
from hebbkit.runs.folder import METRICS_FILE, staging_path
from hebbkit.runs.run import Machine, run_recipe
from tests.conftest import TINY_RECIPE
from tests.grid_helpers import mnist_data

HEBBKIT = Path(sys.executable).with_name("hebbkit")
READOUT_ROW = {
    "phase": "readout",
    "epoch": 2,
    "train_loss": 0.25,
    "train_running_accuracy": 0.9,
    "test_accuracy": 0.875,
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def small_recipe(epochs: int = 3) -> dict[str, Any]:
    data = {**TINY_RECIPE, "data": {"dataset": "mnist", "train_subset": 600, "test_subset": 200}}
    return {**data, "readout": {"epochs": epochs, "batch_size": 16}}


# --- reporters -------------------------------------------------------------------------------


def test_row_text_shows_loss_and_accuracies() -> None:
    assert row_text(READOUT_ROW) == "loss 0.2500 · train 90.00% · test 87.50%"
    trace = {"phase": "hebbian_trace", "distinct_filters": 7, "dead_neurons": 2}
    assert row_text(trace) == "distinct filters 7 · dead 2"
    assert row_text({"phase": "features"}) == ""


def test_log_progress_writes_a_line_per_phase_and_every_30_seconds() -> None:
    stream, clock = io.StringIO(), FakeClock()
    progress = LogProgress(stream, interval=30.0, clock=clock)
    with progress.phase("Hebbian layer 2, epoch 1/1", 1000) as advance:
        for step in range(10):  # 100 images per 10 s: a line at 30, 60 and 90 s
            clock.now += 10
            advance(100)
            if step == 3:  # a diagnostics point: shown with the lines that follow
                progress.metrics({"phase": "hebbian_trace", "distinct_filters": 90})
    progress.metrics({"phase": "hebbian", "layer": 2, "epoch": 1, "distinct_filters": 96})
    with progress.phase("Read-out, epoch 2/3", 500) as advance:
        advance(500)
    progress.metrics(READOUT_ROW)
    with progress.phase("Features (test)", 200) as advance:
        advance(200)
    progress.log("done")
    lines = stream.getvalue().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == [
        "Hebbian layer 2, epoch 1/1: 300/1,000 (30%), 10/s, 1 min 10 s left",
        "Hebbian layer 2, epoch 1/1: 600/1,000 (60%), 10/s, 40.0 s left · distinct filters 90",
        "Hebbian layer 2, epoch 1/1: 900/1,000 (90%), 10/s, 10.0 s left · distinct filters 90",
        "Hebbian layer 2, epoch 1/1: 1,000 in 1 min 40 s, 10/s · distinct filters 96",
        "Read-out, epoch 2/3: 500 in 0.0 s · loss 0.2500 · train 90.00% · test 87.50%",
        "Features (test): 200 in 0.0 s",
        "done",
    ]


def test_rich_bars_show_loss_and_accuracy() -> None:
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=200)
    progress = RichProgress(console)
    with progress.phase("Read-out, epoch 2/3", 500) as advance:
        advance(500)
    progress.metrics(READOUT_ROW)
    progress.close()
    assert "loss 0.2500 · train 90.00% · test 87.50%" in stream.getvalue()


def test_make_progress_picks_bars_only_for_a_terminal() -> None:
    assert isinstance(make_progress(console=Console(file=io.StringIO())), LogProgress)
    terminal = Console(file=io.StringIO(), force_terminal=True)
    assert isinstance(make_progress(console=terminal), RichProgress)
    assert not isinstance(make_progress(quiet=True, console=terminal), RichProgress)


# --- real runs -------------------------------------------------------------------------------


@pytest.mark.integration
def test_metrics_parquet_grows_while_the_run_goes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    seen: list[int] = []

    def read_live(row: dict[str, Any]) -> None:
        if row["phase"] == "readout":
            assert not out.exists()  # still running: the folder is not in place yet
            live = pl.read_parquet(staging_path(out) / METRICS_FILE)
            seen.append(live.filter(pl.col("phase") == "readout").height)

    recipe = _validated(small_recipe(epochs=3))
    machine = Machine(data_root=mnist_data(), offline=True, track=[])
    run_recipe(recipe, out, get_registry(), machine, on_metrics=read_live)
    assert seen == [1, 2, 3]
    assert pl.read_parquet(out / METRICS_FILE).filter(pl.col("phase") == "readout").height == 3


def _validated(data: dict[str, Any]) -> Any:
    from hebbkit.config.recipe import validate_recipe

    return validate_recipe(data, get_registry())


@pytest.mark.integration
def test_piped_run_logs_each_phase_and_is_readable_mid_run(tmp_path: Path) -> None:
    """``hebbkit run > log 2>&1``: the run folder comes first, then one line per phase and
    epoch as they end; stopped after its first read-out epoch, the run's metrics.parquet
    already holds that epoch."""
    data = mnist_data()
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(tomli_w.dumps(small_recipe(epochs=3)))
    out, log = tmp_path / "run", tmp_path / "log.txt"
    env = {**os.environ, "HEBBKIT_OFFLINE": "1", "HEBBKIT_TRACK": ""}
    command = [str(HEBBKIT), "run", str(recipe), "--out", str(out), "--data-root", str(data)]
    with log.open("w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
        try:
            _wait_for(log, "Read-out, epoch 1/3: 600 in", process)  # the epoch's closing line
            process.send_signal(signal.SIGSTOP)  # hold the run still while we look
            try:
                live = pl.read_parquet(staging_path(out, process.pid) / METRICS_FILE)
                assert not out.exists()
                assert live.filter(pl.col("phase") == "readout")["epoch"].to_list()[:1] == [1]
                assert live.filter(pl.col("phase") == "hebbian").height == 1
            finally:
                process.send_signal(signal.SIGCONT)
            assert process.wait(timeout=300) == 0
        finally:
            if process.poll() is None:
                process.kill()
    lines = log.read_text().splitlines()
    assert lines[0].endswith(
        f"Run folder {out} (written in {staging_path(out, process.pid)} until the run ends)"
    )
    for phase in ("Hebbian layer 0, epoch 1/1", "Features (train)", "Features (test)"):
        assert any(f"] {phase}: " in line for line in lines), phase
    epochs = [line for line in lines if "] Read-out, epoch" in line]
    assert [line.split("] ")[1].split(":")[0] for line in epochs] == [
        "Read-out, epoch 1/3",
        "Read-out, epoch 2/3",
        "Read-out, epoch 3/3",
    ]
    assert all(" · loss " in line and " · test " in line for line in epochs)
    assert (out / "summary.json").is_file()


def _wait_for(log: Path, text: str, process: subprocess.Popen[bytes], limit: float = 300) -> None:
    deadline = time.monotonic() + limit
    while text not in log.read_text():
        assert process.poll() is None, f"the run ended before {text!r}:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"no {text!r} after {limit} s:\n{log.read_text()}"
        time.sleep(0.05)
