"""Experiment trackers: ``--track`` / ``HEBBKIT_TRACK``, real MLflow stores read back with
``mlflow.search_runs``, real TensorBoard event files read back with TensorBoard's reader, and a
failing tracker that never loses the run."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from hebbkit.config.recipe import validate_recipe
from hebbkit.errors import TrackerError
from hebbkit.hookspecs import hookimpl
from hebbkit.plugins import build_registry, get_registry, make_plugin_manager
from hebbkit.runs.run import Machine, run_recipe, track_setting
from hebbkit.runs.tracking import TrackSpec, metric_points, parse_track
from hebbkit.tracking import TrackerParams
from tests.conftest import TINY_RECIPE
from tests.grid_helpers import invoke, mnist_data, user_error, write_grid

mlflow = pytest.importorskip("mlflow")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

READOUT_EPOCHS = 3


def small_recipe() -> dict[str, Any]:
    data = copy.deepcopy(TINY_RECIPE)
    data["data"].update(train_subset=400, test_subset=200)
    data["readout"]["epochs"] = READOUT_EPOCHS
    return data


def write_recipe(folder: Path) -> Path:
    path = folder / "recipe.toml"
    path.write_text(tomli_w.dumps(small_recipe()))
    return path


def search_runs(uri: str, experiment: str) -> list[Any]:
    """``mlflow.search_runs`` on the store at ``uri`` (MLflow's query API takes it globally)."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        return mlflow.search_runs(experiment_names=[experiment], output_format="list")
    finally:
        mlflow.set_tracking_uri(previous)


def scalars(log_dir: Path, tag: str) -> list[tuple[int, float]]:
    reader = event_accumulator.EventAccumulator(str(log_dir))
    reader.Reload()
    return [(event.step, event.value) for event in reader.Scalars(tag)]


# --- choosing trackers ------------------------------------------------------------------------


def test_track_specs() -> None:
    assert TrackSpec.parse("mlflow") == TrackSpec("mlflow", None)
    assert TrackSpec.parse("mlflow:http://host:5000") == TrackSpec("mlflow", "http://host:5000")
    assert TrackSpec.parse("tensorboard:runs/tb") == TrackSpec("tensorboard", "runs/tb")
    assert str(TrackSpec("mlflow", "sqlite:///x.db")) == "mlflow:sqlite:///x.db"
    with pytest.raises(TrackerError, match="give a tracker name"):
        TrackSpec.parse(":somewhere")
    with pytest.raises(TrackerError, match="mlflow is named more than once"):
        parse_track(["mlflow", "mlflow:x"])


def test_track_flag_else_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEBBKIT_TRACK", "mlflow:sqlite:///a.db, tensorboard")
    assert track_setting() == [TrackSpec("mlflow", "sqlite:///a.db"), TrackSpec("tensorboard")]
    assert Machine().track == track_setting()
    assert track_setting(["tensorboard:x"]) == [TrackSpec("tensorboard", "x")]
    monkeypatch.setenv("HEBBKIT_TRACK", "")
    assert track_setting() == []


def test_metric_names_and_steps() -> None:
    readout = {"phase": "readout", "epoch": 2, "train_loss": 0.5, "lr": 0.001, "test_accuracy": 1}
    assert metric_points(readout) == (
        {"readout/train_loss": 0.5, "readout/lr": 0.001, "readout/test_accuracy": 1.0},
        2,
    )
    trace = {"phase": "hebbian_trace", "layer": 1, "epoch": 1, "step": 9, "images_seen": 288}
    assert metric_points({**trace, "dead_neurons": 3}) == ({"trace/layer1/dead_neurons": 3.0}, 288)
    hebbian = {"phase": "hebbian", "layer": 0, "epoch": 1, "mean_norm": float("nan"), "x": True}
    assert metric_points(hebbian) is None  # nothing finite and numeric


def test_unknown_tracker_is_a_user_error(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path)
    output = user_error("run", recipe, "--out", tmp_path / "r", "--track", "mlfow")
    assert "--track mlfow: Unknown tracker 'mlfow'. Did you mean 'mlflow'?" in output
    assert not (tmp_path / "r").exists()


def test_refused_mlflow_store_stops_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    if int(mlflow.__version__.split(".")[0]) < 3:
        pytest.skip("MLflow 2 accepts file stores")
    recipe = write_recipe(tmp_path)
    uri = (tmp_path / "mlruns").as_uri()
    output = user_error("run", recipe, "--out", tmp_path / "r", "--track", f"mlflow:{uri}")
    assert "--track mlflow:file://" in output and "could not be set up" in output
    assert not (tmp_path / "r").exists()


# --- real trackers on real runs ---------------------------------------------------------------


@pytest.mark.integration
def test_mlflow_and_tensorboard_receive_a_run(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path)
    out, database = tmp_path / "run", tmp_path / "store" / "mlflow.db"
    database.parent.mkdir()
    uri = f"sqlite:///{database}"
    args = ["run", recipe, "--out", out, "--data-root", mnist_data(), "--offline", "-q"]
    result = invoke(*args, "--track", f"mlflow:{uri}", "--track", "tensorboard")
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.output
    summary = json.loads((out / "summary.json").read_text())

    # MLflow, read back with its own query API
    (found,) = search_runs(uri, "tiny")
    assert found.info.status == "FINISHED"
    assert found.info.run_name == "tiny/run"
    params = found.data.params
    assert params["layers.0.channels"] == "4"
    assert params["layers.0.init.name"] == "random"
    assert params["readout.epochs"] == str(READOUT_EPOCHS)
    assert found.data.tags["hebbkit.hebbian_hash"] == summary["hebbian_hash"]
    assert found.data.tags["hebbkit.folder"] == str(out)
    assert found.data.metrics["final/test_accuracy"] == summary["test_accuracy"]
    client = mlflow.MlflowClient(tracking_uri=uri)
    history = client.get_metric_history(found.info.run_id, "readout/test_accuracy")
    assert [m.step for m in history] == list(range(1, READOUT_EPOCHS + 1))
    assert history[-1].value == summary["test_accuracy"]
    trace = client.get_metric_history(found.info.run_id, "trace/layer0/distinct_filters")
    steps = sorted(m.step for m in trace)  # images the layer has seen: 0 to the whole subset
    assert steps[0] == 0 and steps[-1] == 400 and len(steps) == 11
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"summary.json", "metrics.parquet", "recipe.toml", "weights.pt"} <= artifacts
    assert (database.parent / "mlartifacts").is_dir()  # beside the database

    # TensorBoard's event files, in the run folder, read back with TensorBoard's reader
    events = out / "trackers" / "tensorboard"
    accuracy = scalars(events, "readout/test_accuracy")
    assert [step for step, _ in accuracy] == list(range(1, READOUT_EPOCHS + 1))
    assert accuracy[-1][1] == pytest.approx(summary["test_accuracy"])
    assert scalars(events, "final/test_accuracy")[0][1] == pytest.approx(summary["test_accuracy"])


@pytest.mark.integration
def test_file_store_and_a_tensorboard_folder_through_the_python_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hebbkit

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for this
    store, boards = (tmp_path / "mlruns").as_uri(), tmp_path / "boards"
    result = hebbkit.run(
        small_recipe(),
        overrides=["name=api_run"],
        out=tmp_path / "run",
        data_root=mnist_data(),
        offline=True,
        track=[f"mlflow:{store}", f"tensorboard:{boards}"],
        progress=False,
    )
    (found,) = search_runs(store, "api_run")
    assert found.data.metrics["final/test_accuracy"] == result.test_accuracy
    events = boards / "api_run" / "api_run" / "run"
    assert scalars(events, "final/test_accuracy")[0][1] == pytest.approx(result.test_accuracy)


class BrokenTracker:
    """Starts fine, then fails on its second metrics call."""

    calls = 0

    def __init__(self, params: TrackerParams) -> None:
        pass

    def start(self, run: Any) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        BrokenTracker.calls += 1
        if BrokenTracker.calls == 2:
            raise ConnectionError("tracking server went away")

    def finish(self, status: str, summary: Any) -> None:
        raise AssertionError("a dropped tracker is not called again")


class BrokenPlugin:
    @hookimpl
    def register_trackers(self, register):
        register("broken", BrokenTracker, params=TrackerParams, description="fails")


@pytest.mark.integration
def test_a_failing_tracker_warns_and_never_loses_the_run(tmp_path: Path) -> None:
    manager = make_plugin_manager(plugins=[BrokenPlugin()])
    registry = build_registry(manager)
    recipe = validate_recipe(small_recipe(), registry)
    lines: list[str] = []

    class Lines:
        def phase(self, description: str, total: int) -> Any:
            from contextlib import nullcontext

            return nullcontext(lambda n: None)

        def metrics(self, row: Any) -> None:
            pass

        def log(self, text: str) -> None:
            lines.append(text)

        def close(self) -> None:
            pass

    machine = Machine(
        data_root=mnist_data(),
        offline=True,
        track=[TrackSpec("broken"), TrackSpec("tensorboard")],
    )
    out = tmp_path / "run"
    summary = run_recipe(recipe, out, registry, machine, progress=Lines())
    assert (out / "summary.json").is_file() and summary["test_accuracy"] > 0.1
    (warning,) = [line for line in lines if line.startswith("Warning")]
    assert "tracker 'broken' failed in log_metrics" in warning
    assert "ConnectionError: tracking server went away" in warning
    assert "the run goes on without it" in warning
    # the other tracker got everything
    events = out / "trackers" / "tensorboard"
    assert len(scalars(events, "readout/test_accuracy")) == READOUT_EPOCHS


@pytest.mark.integration
def test_grid_runs_log_through_the_trackers(tmp_path: Path) -> None:
    grid = write_grid(
        tmp_path,
        'name = "lrs"\nbase = "base.toml"\nseeds = [0]\n\n[grid]\n"readout.lr" = [0.001, 0.01]\n',
    )
    boards = tmp_path / "boards"
    args = ["grid", grid, "--out", tmp_path / "out", "--data-root", mnist_data(), "--offline"]
    result = invoke(*args, "-q", "--track", f"tensorboard:{boards}")
    assert result.exit_code == 0, result.output
    for label in ("0.001", "0.01"):
        assert len(scalars(boards / "lrs" / label / "seed0", "readout/test_accuracy")) == 1
    assert user_error(*args, "--track", "nope").count("Unknown tracker 'nope'") == 1


def test_registry_lists_the_built_in_trackers() -> None:
    assert {"mlflow", "tensorboard"} <= set(get_registry().names("tracker"))
