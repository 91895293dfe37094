"""``hebbkit tune`` on a real multi-node Ray cluster on this machine.

``ray.cluster_utils.Cluster`` starts a head and one-CPU worker nodes (real raylets) in a
network namespace that has only ``lo``, created and deleted here, so that Ray keeps every
address on 127.0.0.1 (elsewhere it swaps in the machine's network address). The cluster
and hebbkit run as separate processes in that namespace, with token authentication as new
Ray clusters have it. hebbkit itself runs in a private mount namespace where a tmpfs hides
its ``--out`` and ``--data-root`` from every node: nothing can travel through a shared
disk, so what arrives in ``--out`` came through Ray (its storage, its object store).

Needs root (namespaces, mounts); skipped with the reason otherwise. Only processes of this
module's namespace are ever stopped.
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import tomli_w

from tests.cluster_host import ClusterHost, Unavailable, network_namespace, ray_environment
from tests.conftest import REPO, TINY_RECIPE

pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.integration, pytest.mark.cluster]

HEBBKIT = [sys.executable, "-c", "from hebbkit.cli.app import main; main()"]
DATA = REPO / "data" / "MNIST"
#: Ray Client's port on the head (inside the namespace: no other process can hold it)
CLIENT_PORT = 10001


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    """A network namespace with only ``lo``; every process left in it is killed after."""
    try:
        with network_namespace(f"hkc{os.getpid()}") as name:
            yield name
    except Unavailable as reason:
        pytest.skip(str(reason))


@pytest.fixture(scope="module")
def ray_env() -> Iterator[dict[str, str]]:
    """What every process of the cluster and of hebbkit shares: a Ray temp folder of this
    module (short: Ray's socket paths are limited) and a token of its own."""
    temp = tempfile.mkdtemp(prefix="hkc", dir="/tmp")
    env = {**ray_environment(temp, str(REPO)), "HEBBKIT_OFFLINE": "1"}
    yield env
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(netns: str, ray_env: dict[str, str]) -> Iterator[ClusterHost]:
    """A head with one CPU and Ray Client, and two one-CPU worker nodes."""
    host = ClusterHost(
        netns, ray_env, "--workers", "2", "--head-cpus", "1", "--client-port", str(CLIENT_PORT)
    )
    yield host
    host.close()


class Running:
    """A process whose output lines are kept with the seconds since it started (printed
    when a test fails, to show where the time went)."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(f"[{time.monotonic() - self.started:6.1f}s] {line.rstrip()}")

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def poll(self) -> int | None:
        return self.process.poll()

    def wait(self, timeout: float = 400) -> tuple[int, str]:
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self.reader.join(timeout=10)
            print(self.output)  # shown when the test fails
        return code, self.output


class Driver:
    """``hebbkit`` in the namespace, seeing ``private`` as a tmpfs of its own.

    The data is copied into that tmpfs first; whatever hebbkit leaves in ``private/out``
    is copied to ``view`` (readable here) when it ends.
    """

    def __init__(self, netns: str, env: dict[str, str], root: Path) -> None:
        # hebbkit gives up on a dead head after 5 s, not Ray's 60 (the cluster keeps 60)
        self.netns, self.env = netns, {**env, "RAY_gcs_rpc_server_reconnect_timeout_s": "5"}
        self.private, self.view = root / "private", root / "view"
        self.private.mkdir(parents=True, exist_ok=True)
        self.view.mkdir(parents=True, exist_ok=True)
        self.data = self.private / "data"
        self.out = self.private / "out"

    def start(self, *args: str, keep: Path | None = None) -> Running:
        """``keep``: a view of an earlier run's ``out`` to put back first (to resume)."""
        setup = [
            f"mount -t tmpfs tmpfs {self.private}",
            f"mkdir -p {self.data} && cp -r {DATA} {self.data}/",
        ]
        if keep is not None:
            setup.append(f"cp -a {keep} {self.out}")
        command = shlex.join([*HEBBKIT, *args, "--data-root", str(self.data)])
        copy_back = f"rm -rf {self.view / 'out'}; cp -a {self.out} {self.view}/ 2>/dev/null"
        script = " && ".join(setup) + f"; {command}; rc=$?; {copy_back}; exit $rc"
        isolated = ["unshare", "-m", "--propagation", "private", "sh", "-c", script]
        return Running(["ip", "netns", "exec", self.netns, *isolated], self.env)

    def run(self, *args: str, keep: Path | None = None) -> tuple[int, str]:
        return self.start(*args, keep=keep).wait()

    @property
    def results(self) -> Path:
        return self.view / "out"


def search_recipe(folder: Path, seeds: int) -> Path:
    """A tiny one-layer search over ``seeds`` seeds (a trial takes a few seconds)."""
    data = copy.deepcopy(TINY_RECIPE)
    data["data"].update(train_subset=300, test_subset=300, validation=100)
    data["hebbian"]["batch_size"] = 32
    data["readout"] = {"epochs": 2, "batch_size": 32}
    data["search"] = {"algorithm": "grid", "space": {"seed": {"grid": list(range(seeds))}}}
    path = folder / "search.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def wait_for_checkpoints(storage: Path, count: int, running: Running) -> None:
    """Until ``count`` trials have persisted their run folders in ``storage``."""
    deadline = time.monotonic() + 300
    while len(list(storage.glob("*/*/checkpoint_*"))) < count:
        assert running.poll() is None, running.wait()[1]
        assert time.monotonic() < deadline, "no trial finished in time"
        time.sleep(0.3)


def trials(folder: Path) -> pl.DataFrame:
    return pl.read_parquet(folder / "trials.parquet")


def test_ray_client_search_spreads_over_nodes_and_survives_a_lost_node(
    cluster: ClusterHost, netns: str, ray_env: dict[str, str], tmp_path: Path
) -> None:
    """Through ray:// Tune runs on the head: its storage (by default inside --out) is on the
    head's disk, and the progress lines, the data and the run folders travel through Ray.
    A worker node removed mid-search: its trial runs again elsewhere and the search ends."""
    driver = Driver(netns, ray_env, tmp_path)
    recipe = search_recipe(tmp_path, 4)
    address = f"ray://127.0.0.1:{CLIENT_PORT}"
    running = driver.start(
        "tune", str(recipe), "--address", address, "--out", str(driver.out), "--max-retries", "2"
    )
    try:
        # as soon as a worker runs a trial (none has finished, so no worker holds an idle one)
        removed = cluster.command("kill-busy-worker", timeout=320)["removed"]
        assert not list(driver.out.glob("*/*/checkpoint_*"))
    finally:
        code, output = running.wait()
    assert code == 0, output
    assert "through Ray's object store" in output
    assert "[1/4] trial" in output and "[4/4] trial" in output  # progress, from the head
    assert "lost its node or worker process" in output and "starting it again" in output
    frame = trials(driver.results)
    assert frame["status"].to_list() == ["ok"] * 4
    assert frame["retries"].sum() >= 1
    assert len(set(frame["node"].to_list())) >= 2  # spread over several nodes
    assert removed not in frame.filter(pl.col("retries") > 0)["node"].to_list()
    for trial_id in frame["trial_id"]:
        assert (driver.results / "trials" / trial_id / "summary.json").is_file()
    assert (driver.results / "best.toml").is_file()
    # on the head's disk: Tune's state at the --out path, and no run folder
    assert (driver.out / "ray" / "tuner.pkl").is_file()
    assert not (driver.out / "trials").exists()


def test_a_lost_head_says_how_to_resume_and_resume_finishes_the_search(
    cluster: ClusterHost, netns: str, ray_env: dict[str, str], tmp_path: Path
) -> None:
    """Results in a --storage that is not --out; the head dies mid-search; --resume on a
    new cluster runs what was left and keeps what had finished."""
    driver = Driver(netns, ray_env, tmp_path)
    storage = tmp_path / "storage"  # shared by all nodes (the machine's own disk)
    recipe = search_recipe(tmp_path, 3)
    address = cluster.address
    # the cluster the search resumes on starts meanwhile (it has ports of its own)
    restarted = ClusterHost(netns, ray_env, "--workers", "0", "--head-cpus", "2", wait=False)
    running = driver.start(
        "tune", str(recipe), "--address", address, "--out", str(driver.out),
        "--storage", str(storage),
    )  # fmt: skip
    try:
        wait_for_checkpoints(storage, 1, running)
        cluster.command("kill-head")
    except BaseException:
        restarted.close()
        raise
    finally:
        code, output = running.wait(timeout=200)
    assert code == 1, output
    assert "was lost during the run: its head stopped answering" in output
    assert f"--out {driver.out} --resume" in output
    assert "Traceback" not in output
    kept = {
        p.parent.name: p.stat().st_mtime_ns for p in driver.results.glob("trials/*/summary.json")
    }
    assert kept, "the trial that finished before the loss was not gathered"
    # the nodes never saw --out: on the machine's disk the folder under the tmpfs is empty
    assert not driver.out.exists()
    assert json.loads((driver.results / "storage.json").read_text())["storage"] == str(storage)

    saved = tmp_path / "saved"
    shutil.copytree(driver.results, saved)
    try:
        code, output = driver.run(
            "tune", str(recipe), "--address", restarted.address, "--out", str(driver.out),
            "--resume", keep=saved,
        )  # fmt: skip
    finally:
        restarted.close()
    assert code == 0, output
    assert "Resuming 3 trials" in output
    frame = trials(driver.results)
    assert frame["status"].to_list() == ["ok"] * 3
    assert sorted(frame["seed"].to_list()) == [0, 1, 2]
    for trial_id, mtime in kept.items():  # finished trials were not run again
        summary = driver.results / "trials" / trial_id / "summary.json"
        assert summary.stat().st_mtime_ns == mtime
    assert list(storage.glob("tiny-*/*/checkpoint_*/summary.json"))
