"""Real searches on a local Ray (2 CPUs, no dashboard) over a small MNIST subset.

The subset (500 training, 200 validation, 500 test images, 4 channels, 2 read-out epochs)
keeps a trial at a few seconds; the whole module takes about a minute and a half.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import tomli_w
import torch
from typer.testing import CliRunner

from hebbkit.cli.app import app
from tests.conftest import REPO, TINY_RECIPE

ray = pytest.importorskip("ray")

pytestmark = [pytest.mark.ray, pytest.mark.integration]

runner = CliRunner()
DATA = REPO / "data"


def small_recipe(space: dict[str, Any], readout_epochs: int = 2, **search: Any) -> dict[str, Any]:
    data = copy.deepcopy(TINY_RECIPE)
    data["data"].update(train_subset=500, test_subset=500, validation=200)
    data["hebbian"]["batch_size"] = 32
    data["readout"] = {"epochs": readout_epochs, "batch_size": 32}
    data["search"] = {**search, "space": space}
    return data


def write(folder: Path, data: dict[str, Any], name: str = "recipe.toml") -> Path:
    path = folder / name
    path.write_text(tomli_w.dumps(data))
    return path


def tune(recipe: Path, out: Path, *extra: str) -> Any:
    args = ["tune", str(recipe), "--out", str(out), "--data-root", str(DATA), "--offline"]
    return runner.invoke(app, [*args, *extra])


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One Ray for the module; ``hebbkit tune --address local`` joins it, as in a notebook."""
    temp = tempfile.mkdtemp(prefix="hkray", dir="/tmp")  # Ray's socket paths must stay short
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _temp_dir=temp,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    yield
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Run as a trial with --cpus-per-trial 1 ran (same threads, bit-identical numbers)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_search_records_trials_failures_and_a_reproducible_best(
    tmp_path: Path, local_ray: None, one_thread: None
) -> None:
    # 100 000 training images are more than MNIST has: those trials raise when they read the
    # data (shapes and memory are checked before the search starts), the search goes on
    space = {"data.train_subset": {"grid": [500, 100_000]}, "seed": {"grid": [0, 1]}}
    recipe = write(tmp_path, small_recipe(space, algorithm="grid"))
    out = tmp_path / "search"
    result = tune(recipe, out, "--cpus-per-trial", "1")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output

    frame = pl.read_parquet(out / "trials.parquet")
    assert frame.height == 4
    assert pl.read_csv(out / "trials.csv").height == 4
    assert frame["status"].to_list() == ["ok", "ok", "failed", "failed"]
    ok = frame.filter(pl.col("status") == "ok")
    assert ok["data.train_subset"].to_list() == [500, 500]
    assert sorted(ok["seed"].to_list()) == [0, 1]
    accuracies = ok["last_validation_accuracy"].to_list()
    assert accuracies == sorted(accuracies, reverse=True)  # best first
    assert ok["epochs"].to_list() == [2, 2]
    for folder in ok["run_folder"]:
        assert (Path(folder) / "summary.json").exists()
    failed = frame.filter(pl.col("status") == "failed")
    assert failed["data.train_subset"].to_list() == [100_000, 100_000]
    for error in failed["error"]:
        assert error.startswith("DataError:") and "data.train_subset = 100000" in error
    assert (out / "report.png").exists() and (out / "seeds.csv").exists()
    assert "mean ± std over seeds" in result.stdout

    # best.toml is a plain recipe; hebbkit run reproduces the best trial's numbers exactly
    best = frame.row(0, named=True)
    assert "[search" not in (out / "best.toml").read_text()
    rerun = tmp_path / "rerun"
    args = ["run", str(out / "best.toml"), "--out", str(rerun), "--data-root", str(DATA), "-q"]
    assert runner.invoke(app, args).exit_code == 0
    summary = json.loads((rerun / "summary.json").read_text())
    assert summary["seed"] == best["seed"]
    assert summary["validation_accuracy"] == best["validation_accuracy"]
    assert summary["test_accuracy"] == best["test_accuracy"]

    # tune-report rebuilds the same table from the files alone
    report = runner.invoke(app, ["tune-report", str(out)])
    assert report.exit_code == 0, report.output
    assert "4 trials: 2 failed, 2 ok." in report.stdout


def test_asha_stops_trials_early_and_keeps_their_folders(tmp_path: Path, local_ray: None) -> None:
    # One at a time, a good rate first: at the first rung the hopeless rate (1e-6) trails
    # the recorded result, and ASHA stops it after one of its three read-out epochs.
    space = {"readout.lr": {"grid": [1e-2, 1e-6]}}
    scheduler = {"name": "asha", "grace_period": 1, "max_t": 3, "reduction_factor": 2}
    data = small_recipe(space, readout_epochs=3, algorithm="grid", scheduler=scheduler)
    out = tmp_path / "search"
    result = tune(write(tmp_path, data), out, "--max-concurrent", "1")
    assert result.exit_code == 0, result.output
    frame = pl.read_parquet(out / "trials.parquet")
    assert frame["status"].to_list() == ["ok", "stopped"]
    assert frame["readout.lr"].to_list() == [1e-2, 1e-6]
    assert frame["epochs"].to_list() == [3, 1]
    ok, stopped = (Path(folder) for folder in frame["run_folder"])
    assert (ok / "summary.json").exists()
    # the stopped trial's partial run folder is kept, named for what happened to it
    assert stopped.name.endswith(".stopped") and (stopped / "stopped.txt").exists()
    assert (stopped / "metrics.parquet").exists()
    assert "best.toml" in result.stdout


def test_optuna_with_conditional_parameters(tmp_path: Path, local_ray: None) -> None:
    pytest.importorskip("optuna")
    name = "layers.0.activation.name"
    space = {
        name: {"choice": ["softmax", "triangle"]},
        "layers.0.activation.power": {"uniform": [0.5, 2.0], "when": {name: "triangle"}},
        "layers.0.activation.t_invert": {"loguniform": [0.1, 10], "when": {name: "softmax"}},
    }
    data = small_recipe(space, readout_epochs=1, algorithm="optuna", num_samples=2, seed=0)
    out = tmp_path / "search"
    result = tune(write(tmp_path, data), out)
    assert result.exit_code == 0, result.output
    frame = pl.read_parquet(out / "trials.parquet")
    assert frame["status"].to_list() == ["ok", "ok"]
    for row in frame.iter_rows(named=True):  # exactly the parameter of the chosen activation
        power, t_invert = row["layers.0.activation.power"], row["layers.0.activation.t_invert"]
        assert (power is None) == (row[name] == "softmax") and (t_invert is None) != (power is None)


def test_interrupted_search_resumes_without_repeating_finished_trials(
    tmp_path: Path, local_ray: None
) -> None:
    space = {"seed": {"grid": [0, 1, 2]}}
    recipe = write(tmp_path, small_recipe(space, algorithm="grid"))
    out = tmp_path / "search"
    ray_temp = tempfile.mkdtemp(prefix="hkrt", dir="/tmp")
    main = "from hebbkit.cli.app import main; main()"
    command = [sys.executable, "-c", main, "tune", str(recipe)]
    command += ["--out", str(out), "--data-root", str(DATA), "--offline", "--max-concurrent", "1"]
    command += ["--ray-temp", ray_temp]
    # Ctrl-C as soon as the first trial has written its run folder
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        while not list(out.glob("trials/*/summary.json")):
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "no trial finished in time"
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=120)[0]
    finally:
        if process.poll() is None:
            process.kill()
        shutil.rmtree(ray_temp, ignore_errors=True)
    assert process.returncode == 130, output
    assert "--resume" in output
    finished = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("trials/*/summary.json")}
    before = pl.read_parquet(out / "trials.parquet")
    assert before.filter(pl.col("status") == "ok").height >= 1
    assert before.filter(pl.col("status") == "ok").height < 3

    result = tune(recipe, out, "--resume")
    assert result.exit_code == 0, result.output
    frame = pl.read_parquet(out / "trials.parquet")
    assert frame["status"].to_list() == ["ok", "ok", "ok"]
    assert sorted(frame["seed"].to_list()) == [0, 1, 2]
    for trial_id, mtime in finished.items():  # finished trials were not trained again
        assert (out / "trials" / trial_id / "summary.json").stat().st_mtime_ns == mtime
    assert len(list((out / "trials").iterdir())) == 3  # no leftovers of interrupted attempts


def test_resume_refuses_a_different_recipe(tmp_path: Path, local_ray: None) -> None:
    data = small_recipe({"seed": {"grid": [0]}}, algorithm="grid")
    recipe = write(tmp_path, data)
    out = tmp_path / "search"
    out.mkdir()
    from hebbkit.plugins import get_registry
    from hebbkit.runs.search import load_plan

    (out / "search.toml").write_text(load_plan(recipe, [], get_registry()).search_toml())
    result = tune(recipe, out, "--resume", "-s", "readout.epochs=3")
    assert result.exit_code == 2
    assert "the recipe differs" in result.output and "readout.epochs" in result.output
    again = tune(recipe, out)
    assert again.exit_code == 2 and "already exists" in again.output
    nowhere = tune(recipe, tmp_path / "nowhere", "--resume")
    assert nowhere.exit_code == 2 and "holds no search.toml" in nowhere.output


def test_setup_errors_exit_2(tmp_path: Path, local_ray: None) -> None:
    recipe = write(tmp_path, small_recipe({"seed": {"grid": [0]}}, algorithm="grid"))
    bad = tune(recipe, tmp_path / "a", "--address", "somewhere")
    assert bad.exit_code == 2 and "use local, auto, ray://HOST:PORT" in bad.output
    many = tune(recipe, tmp_path / "b", "--cpus-per-trial", "64")
    assert many.exit_code == 2 and "the largest of the 1 nodes has 2 CPUs" in many.output
    if not torch.cuda.is_available():
        gpu = tune(recipe, tmp_path / "c", "--gpus-per-trial", "0.25")
        assert gpu.exit_code == 2 and "sees none" in gpu.output
    cuda = tune(recipe, tmp_path / "d", "--device", "cuda")
    assert cuda.exit_code == 2 and "--gpus-per-trial > 0" in cuda.output


def test_ray_temp_must_keep_socket_paths_short() -> None:
    from hebbkit.errors import TuneSetupError
    from hebbkit.runs.ray import check_ray_temp

    check_ray_temp(Path("/tmp/ray"))
    with pytest.raises(TuneSetupError, match="--ray-temp"):
        check_ray_temp(Path("/tmp") / ("x" * 60))


# --- trials share Hebbian phases and log through the trackers (issue 14) ----------------------


def test_read_out_search_learns_one_phase_and_logs_every_trial(
    tmp_path: Path, local_ray: None
) -> None:
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    )
    data = copy.deepcopy(TINY_RECIPE)
    data["name"] = "lr_search"
    data["data"].update(train_subset=300, test_subset=200)
    data["search"] = {
        "metric": "test_accuracy",
        "algorithm": "grid",
        "space": {"readout.lr": {"grid": [0.001, 0.01]}},
    }
    recipe = tmp_path / "search.toml"
    recipe.write_text(tomli_w.dumps(data))
    out, boards = tmp_path / "search", tmp_path / "boards"
    args = ["tune", str(recipe), "--out", str(out), "--data-root", str(DATA)]
    args += ["--offline", "--max-concurrent", "1", "--track", f"tensorboard:{boards}"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output

    trials = pl.read_parquet(out / "trials.parquet")
    assert trials["status"].to_list() == ["ok", "ok"]
    summaries = [json.loads((Path(f) / "summary.json").read_text()) for f in trials["run_folder"]]
    assert summaries[0]["hebbian_hash"] == summaries[1]["hebbian_hash"]
    # one trial learnt the phase, the other took it (through the cache) from that trial
    learnt = [
        f for f, s in zip(trials["run_folder"], summaries, strict=True) if "hebbian_from" not in s
    ]
    taken = [s["hebbian_from"] for s in summaries if "hebbian_from" in s]
    assert len(learnt) == 1 and taken == learnt
    assert not (out / ".hebbian-cache").exists()  # removed when the search ended
    for folder in trials["run_folder"]:
        events = boards / "lr_search" / Path(folder).name
        reader = event_accumulator.EventAccumulator(str(events))
        reader.Reload()
        assert [e.step for e in reader.Scalars("readout/test_accuracy")] == [1]


def test_dry_run_shows_exactly_the_trials_the_search_runs(tmp_path: Path, local_ray: None) -> None:
    """No search.seed: the default one is recorded, and the real search runs the very
    configurations --dry-run draws; tune-report copes with values a log axis cannot show."""
    space = {"readout.lr": {"loguniform": [1e-3, 1e-1]}}
    data = small_recipe(space, readout_epochs=1, algorithm="random", num_samples=2)
    recipe = write(tmp_path, data)
    dry = runner.invoke(app, ["tune", str(recipe), "--dry-run"])
    assert dry.exit_code == 0 and "seed 0" in dry.output
    from hebbkit.plugins import get_registry
    from hebbkit.runs.search import load_plan, sample_configs

    drawn = [c["readout.lr"] for c in sample_configs(load_plan(recipe, [], get_registry()).search)]
    out = tmp_path / "search"
    result = tune(recipe, out)
    assert result.exit_code == 0, result.output
    frame = pl.read_parquet(out / "trials.parquet").sort("trial_id")
    assert frame["readout.lr"].to_list() == drawn
    assert "seed = 0" in (out / "search.toml").read_text()

    # a table whose searched values cannot go on a log axis (none, zero, negative)
    frame.with_columns(pl.Series("readout.lr", [None, -1.0])).write_parquet(out / "trials.parquet")
    (out / "report.png").unlink()
    report = runner.invoke(app, ["tune-report", str(out)])
    assert report.exit_code == 0, report.output
    assert (out / "report.png").exists()


def test_a_search_in_which_no_trial_succeeds_fails_with_a_summary(
    tmp_path: Path, local_ray: None
) -> None:
    # a Hebbian rate that diverges is found only by training: a user error of the trial,
    # recorded once and never retried
    data = small_recipe({"layers.0.plasticity.lr": {"grid": [1e38]}}, algorithm="grid")
    data["layers"][0]["plasticity"]["normalize"] = "none"
    recipe = write(tmp_path, data)
    out = tmp_path / "search"
    result = tune(recipe, out)
    assert result.exit_code == 1, result.output
    assert (
        "No trial of the search" in result.output
        and "succeeded (1 trials: 1 failed)" in result.output
    )
    assert "diverged" in result.output and "Traceback" not in result.output
    frame = pl.read_parquet(out / "trials.parquet")
    assert frame["status"].to_list() == ["failed"] and frame["retries"].to_list() == [0]
    assert Path(frame["run_folder"][0]).name.startswith(f"{frame['trial_id'][0]}.failed-")


def test_nodes_that_cannot_read_the_data_are_named(tmp_path: Path, local_ray: None) -> None:
    """Without --ship-data every node reads --data-root itself: checked on each node first."""
    recipe = write(tmp_path, small_recipe({"seed": {"grid": [0]}}, algorithm="grid"))
    args = [
        "tune",
        str(recipe),
        "--out",
        str(tmp_path / "s"),
        "--data-root",
        str(tmp_path / "none"),
    ]
    result = runner.invoke(app, [*args, "--address", "auto", "--no-ship-data", "--offline"])
    assert result.exit_code == 2, result.output
    node = ray.get_runtime_context().get_node_id()
    assert "The data cannot be read on 1 of the 1 Ray nodes" in result.output
    assert f"node {node[:8]}" in result.output and "--ship-data" in result.output
    assert f"Data root {tmp_path / 'none'} does not exist" in result.output
    assert not (tmp_path / "s").exists()


def test_a_trial_whose_worker_dies_is_lost_and_resume_runs_it_again(
    tmp_path: Path, local_ray: None
) -> None:
    """A trial's worker process killed outright (as by the OOM killer, or with its node):
    with --max-retries 0 the trial is lost, the search says so, and --resume runs it."""
    recipe = write(tmp_path, small_recipe({"seed": {"grid": [0]}}, algorithm="grid"))
    out = tmp_path / "search"
    killed: list[int] = []

    def kill_the_trial() -> None:
        deadline = time.monotonic() + 300
        while not killed and time.monotonic() < deadline:
            for actor in ray._private.state.actors().values():
                alive = actor["State"] == "ALIVE" and actor.get("Pid")
                if alive and "ImplicitFunc" in actor["ActorClassName"]:
                    os.kill(actor["Pid"], signal.SIGKILL)
                    killed.append(actor["Pid"])
                    return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_the_trial, daemon=True)
    killer.start()
    result = tune(recipe, out, "--max-retries", "0")
    killer.join(timeout=10)
    assert killed, result.output
    assert result.exit_code == 1, result.output
    assert "1 of 1 trials were lost to the cluster" in result.output
    assert f"--out {out} --resume" in result.output
    frame = pl.read_parquet(out / "trials.parquet")
    assert frame["status"].to_list() == ["lost"] and "died" in frame["error"][0]

    again = tune(recipe, out, "--resume")
    assert again.exit_code == 0, again.output
    frame = pl.read_parquet(out / "trials.parquet")
    assert frame["status"].to_list() == ["ok"]
    assert (Path(frame["run_folder"][0]) / "summary.json").is_file()


def test_on_a_cluster_runs_share_hebbian_phases_through_ray_storage(
    tmp_path: Path, local_ray: None
) -> None:
    """Off this machine the trials cannot see --out: the phases they share (and those of a
    grid's finished runs) go through Ray's storage, which is emptied of them at the end."""
    from tests.grid_helpers import write_grid

    grid = write_grid(
        tmp_path / "g",
        'name = "lr"\nbase = "base.toml"\nseeds = [0]\n\n[grid]\n"readout.lr" = [0.001, 0.01]\n',
    )
    out, store = tmp_path / "grid", tmp_path / "store"
    args = ["grid", str(grid), "--out", str(out), "--data-root", str(DATA), "--offline", "-q"]
    assert runner.invoke(app, [*args, "--only", "0.001"]).exit_code == 0  # here, no Ray
    cluster = ["--address", "auto", "--storage", str(store)]
    result = runner.invoke(app, [*args, *cluster, "--cpus-per-run", "1"])
    assert result.exit_code == 0, result.output
    later = json.loads((out / "0.01" / "seed0" / "summary.json").read_text())
    assert later["hebbian_from"] == str((out / "0.001" / "seed0").resolve())

    space = {"readout.lr": {"grid": [0.001, 0.01]}}
    recipe = write(tmp_path, small_recipe(space, readout_epochs=1, algorithm="grid"))
    search = tmp_path / "search"
    result = tune(recipe, search, *cluster, "--cpus-per-trial", "1", "--max-concurrent", "1")
    assert result.exit_code == 0, result.output
    trials = pl.read_parquet(search / "trials.parquet")
    summaries = [json.loads((Path(f) / "summary.json").read_text()) for f in trials["run_folder"]]
    learnt = [
        f for f, s in zip(trials["run_folder"], summaries, strict=True) if "hebbian_from" not in s
    ]
    assert (
        len(learnt) == 1
        and [s.get("hebbian_from") for s in summaries if "hebbian_from" in s] == learnt
    )
    assert not list(store.rglob(".hebbian-cache")) and not (search / ".hebbian-cache").exists()
    assert not (out / ".hebbian-cache").exists()
