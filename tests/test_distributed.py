"""The parts of cluster runs that need no cluster: fitting trials on nodes, reaching the head,
wording failures, Ray storage, shipped data, the driver's child process, search verdicts."""

from __future__ import annotations

import copy
import os
import socket
from pathlib import Path

import pyarrow.fs as pafs
import pytest
import torch

from hebbkit.config.recipe import validate_recipe
from hebbkit.engine.splits import load_splits
from hebbkit.errors import RecipeError, TuneSetupError
from hebbkit.registry import Registry
from hebbkit.runs.cluster import (
    Node,
    autoscales,
    can_host,
    check_fits,
    check_reachable,
    connect_error,
    missing_data_error,
    nodes_from_ray,
)
from hebbkit.runs.options import RayOptions, ray_options
from hebbkit.runs.preloaded import preload
from hebbkit.runs.run import Machine
from hebbkit.runs.storage import download, pack, resolve, storage_uri, unpack, upload
from hebbkit.runs.supervise import ChildLost, run_in_child
from tests import child_targets
from tests.conftest import REPO, TINY_RECIPE

DATA = REPO / "data"


def node(name: str, cpus: float, gpus: float = 0.0) -> Node:
    resources = {"CPU": cpus, **({"GPU": gpus} if gpus else {})}
    return Node(name * 8, "10.0.0.1", f"host-{name}", resources)


# --- what fits on the nodes ----------------------------------------------------------------


def test_trials_are_checked_against_the_largest_node_not_the_total() -> None:
    nodes = [node("a", 4), node("b", 4)]
    assert check_fits(RayOptions(cpus_per_trial=4), nodes, autoscaling=False) == []
    with pytest.raises(TuneSetupError) as refused:
        check_fits(RayOptions(cpus_per_trial=6), nodes, autoscaling=False)
    message = str(refused.value)
    assert "--cpus-per-trial 6" in message and "the largest of the 2 nodes has 4 CPUs" in message
    assert "(8 in all, but a trial runs on one node)" in message and "at most 4" in message
    with pytest.raises(TuneSetupError, match="--gpus-per-run 1: the largest of the 2 nodes"):
        check_fits(RayOptions(gpus_per_trial=1), nodes, autoscaling=False, unit="run")


def test_an_autoscaling_cluster_is_warned_about_not_refused() -> None:
    warnings = check_fits(RayOptions(gpus_per_trial=1), [node("a", 8)], autoscaling=True)
    assert (
        len(warnings) == 1 and "autoscales" in warnings[0] and "--gpus-per-trial 1" in warnings[0]
    )
    # Ray's monitor names the nodes of a fixed cluster after themselves
    assert not autoscales(["node_0123abcd", "node_4567ef01"], pending=0)
    assert autoscales(["head", "gpu-worker"], pending=0)
    assert autoscales(["node_0123abcd"], pending=1)


def test_nodes_from_ray_skip_dead_ones_and_hosts_are_those_a_trial_fits() -> None:
    entries = [
        {"NodeID": "a" * 8, "Alive": True, "NodeManagerAddress": "10.0.0.1",
         "NodeManagerHostname": "h1", "Resources": {"CPU": 2.0}},
        {"NodeID": "b" * 8, "Alive": False, "NodeManagerAddress": "10.0.0.2",
         "NodeManagerHostname": "h2", "Resources": {}},
        {"NodeID": "c" * 8, "Alive": True, "NodeManagerAddress": "10.0.0.3",
         "NodeManagerHostname": "h3", "Resources": {}},
    ]  # fmt: skip
    alive = nodes_from_ray(entries)
    assert [n.node_id[0] for n in alive] == ["a", "c"]
    assert [can_host(n, RayOptions(cpus_per_trial=1)) for n in alive] == [True, False]


def test_missing_data_names_each_node_and_the_ways_out() -> None:
    problems = {node("a", 1): "Data root /d does not exist.", node("b", 1): "MNIST files\nmissing"}
    message = str(missing_data_error(problems, 3, "/d"))
    assert message.startswith("The data cannot be read on 2 of the 3 Ray nodes")
    assert "node aaaaaaaa (host-a, 10.0.0.1): Data root /d does not exist." in message
    assert "node bbbbbbbb (host-b, 10.0.0.1): MNIST files missing" in message
    assert "--ship-data" in message and "--data-root" in message


# --- reaching the head ---------------------------------------------------------------------


def test_an_address_nothing_listens_on_is_refused_at_once() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TuneSetupError) as refused:
        check_reachable(f"ray://127.0.0.1:{port}", f"ray://127.0.0.1:{port}")
    assert f"nothing answers at 127.0.0.1:{port}" in str(refused.value)
    assert "ray-client-server-port" in str(refused.value)
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        check_reachable(f"127.0.0.1:{listening.getsockname()[1]}", "x")


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        (ValueError("Ray Client requires pip package `ray[client]`."), "grpcio"),
        (ConnectionError("ray client connection timeout"), "RAY_AUTH_MODE=token"),
        (RuntimeError("Version mismatch: The cluster was started with Ray 2.9"), "ray job submit"),
        (ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379"), "RAY_AUTH_TOKEN"),
    ],
)
def test_every_connection_failure_is_one_paragraph_with_its_fix(
    error: Exception, hint: str
) -> None:
    message = str(connect_error("ray://10.0.0.1:10001", error))
    assert message.startswith("--address ray://10.0.0.1:10001: could not connect to Ray (")
    assert type(error).__name__ in message and hint in message and "\n" not in message


def test_ray_flags_are_checked_once() -> None:
    options = ray_options(
        address="127.0.0.1:6379", cpus=1, gpus=0, max_concurrent=None, device=None,
        data_root=DATA, offline=True, storage="relative/store",
    )  # fmt: skip
    assert options.ship_data and options.remote and options.max_retries == 3
    assert options.storage == str(Path("relative/store").resolve())
    local = ray_options(
        address="local", cpus=1, gpus=0, max_concurrent=None, device=None, data_root=DATA,
        offline=True, storage="s3://bucket/runs/",
    )  # fmt: skip
    assert not local.ship_data and local.storage == "s3://bucket/runs"
    with pytest.raises(Exception, match="--max-retries -1"):
        ray_options(
            address=None, cpus=1, gpus=0, max_concurrent=None, device=None, data_root=DATA,
            offline=True, max_retries=-1,
        )  # fmt: skip


# --- Ray storage ---------------------------------------------------------------------------


def run_folder(root: Path) -> Path:
    folder = root / "run"
    (folder / "sub").mkdir(parents=True)
    (folder / "summary.json").write_text('{"test_accuracy": 0.5}')
    (folder / "sub" / "weights.pt").write_bytes(os.urandom(1000))
    return folder


def test_storage_round_trips_and_links_local_copies(tmp_path: Path) -> None:
    folder = run_folder(tmp_path)
    fs, base = resolve(storage_uri(f"file://{tmp_path}/store"))
    assert isinstance(fs, pafs.LocalFileSystem) and base == f"{tmp_path}/store"
    upload(folder, fs, f"{base}/trial/checkpoint_000000")
    gathered = tmp_path / "out" / "trial"
    download(fs, f"{base}/trial/checkpoint_000000", gathered)
    stored = tmp_path / "store" / "trial" / "checkpoint_000000" / "sub" / "weights.pt"
    copy_ = gathered / "sub" / "weights.pt"
    assert copy_.read_bytes() == (folder / "sub" / "weights.pt").read_bytes()
    assert os.path.samefile(copy_, stored)  # a hard link: no second copy on the same disk
    # what a task on the head sends to a Ray Client: the folder as bytes
    unpacked = tmp_path / "client" / "trial"
    unpack(pack(fs, f"{base}/trial/checkpoint_000000"), unpacked)
    assert sorted(p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*")) == [
        "sub", "sub/weights.pt", "summary.json"
    ]  # fmt: skip
    assert not list((tmp_path / "client").glob(".*"))  # no staging left behind


def test_a_storage_pyarrow_cannot_open_is_named(tmp_path: Path) -> None:
    with pytest.raises(TuneSetupError, match="--storage nosuchscheme://x: pyarrow cannot open"):
        resolve("nosuchscheme://x")


# --- data shipped through the object store -----------------------------------------------------


def data_recipe(registry: Registry, **data: object) -> object:
    recipe = copy.deepcopy(TINY_RECIPE)
    recipe["data"].update(data)
    return validate_recipe(recipe, registry)


def same_splits(a: object, b: object) -> bool:
    pairs = [(a.train, b.train), (a.test, b.test), (a.validation, b.validation)]  # type: ignore[attr-defined]
    return all(
        (x is None and y is None)
        or (torch.equal(x.images, y.images) and torch.equal(x.labels, y.labels))
        for x, y in pairs
    )


def test_shipped_data_gives_the_splits_the_disk_gives(registry: Registry, tmp_path: Path) -> None:
    one = data_recipe(registry, train_subset=300, test_subset=200, validation=100)
    other = data_recipe(registry, train_subset=500, validation=0.1)
    disk = Machine(data_root=DATA, device=torch.device("cpu"), offline=True)
    # one data section: shipped as its runs use it, subsets applied (small)
    exact = preload([one.data], registry, DATA, download=False)  # type: ignore[attr-defined]
    assert len(exact) == 1 and not exact[0].complete and exact[0].nbytes < 2**20  # 600 images
    nowhere = Machine(data_root=tmp_path / "none", device=torch.device("cpu"), offline=True)
    shipped = Machine(nowhere.data_root, nowhere.device, True, preloaded=exact)
    assert same_splits(
        shipped.load_splits(one.data, registry), disk.load_splits(one.data, registry)
    )  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="does not exist"):  # not shipped: read from disk
        shipped.load_splits(other.data, registry)  # type: ignore[attr-defined]
    # several sections: the whole dataset, carved in each run exactly as from the disk
    whole = preload([one.data, other.data], registry, DATA, download=False)  # type: ignore[attr-defined]
    assert len(whole) == 1 and whole[0].complete
    shipped = Machine(nowhere.data_root, nowhere.device, True, preloaded=whole)
    for recipe in (one, other):
        expected = load_splits(recipe.data, registry, DATA, download=False)  # type: ignore[attr-defined]
        assert same_splits(shipped.load_splits(recipe.data, registry), expected)  # type: ignore[attr-defined]


# --- the process that drives Ray -----------------------------------------------------------------


def test_the_driver_child_answers_raises_or_is_reported_lost() -> None:
    assert run_in_child(child_targets.add, 2, 3) == 5
    with pytest.raises(RecipeError, match="bad value"):
        run_in_child(child_targets.refuse, "bad value")
    with pytest.raises(ChildLost) as lost:
        run_in_child(child_targets.die_like_ray, 1)
    assert lost.value.exit_code == 1 and lost.value.notes == {"gcs": "127.0.0.1:1"}
