"""Search trials on a real local Ray log through the trackers and share one Hebbian phase when
they differ only in read-out keys."""

from __future__ import annotations

import copy
import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import tomli_w
from typer.testing import CliRunner

from hebbkit.cli.app import app
from tests.conftest import TINY_RECIPE
from tests.grid_helpers import mnist_data

ray = pytest.importorskip("ray")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

pytestmark = [pytest.mark.ray, pytest.mark.integration]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
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


def test_read_out_search_learns_one_phase_and_logs_every_trial(
    tmp_path: Path, local_ray: None
) -> None:
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
    args = ["tune", str(recipe), "--out", str(out), "--data-root", str(mnist_data())]
    args += ["--offline", "--max-concurrent", "1", "--track", f"tensorboard:{boards}"]
    result = CliRunner().invoke(app, args)
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
        reader = event_accumulator.EventAccumulator(str(boards / "lr_search" / Path(folder).name))
        reader.Reload()
        assert [e.step for e in reader.Scalars("readout/test_accuracy")] == [1]
