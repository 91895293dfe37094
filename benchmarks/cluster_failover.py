"""A search that loses a node: 16 trials on a 3-node Ray cluster, one worker node killed
midway, against the same search on one node.

Both clusters are ``ray.cluster_utils.Cluster`` on this machine, in a network namespace
that has only ``lo`` (see tests/cluster_host.py; needs root). The 3-node cluster is a head
and two workers with one CPU each; once half of the trials have finished, a worker that is
running a trial is removed without warning. The baseline is one node with three CPUs. The
search is a seed grid of a small one-layer SoftHebb model on an MNIST subset, with the data
shipped through Ray's object store and results kept in a Ray storage apart from ``--out``.

Prints trials finished, retried and lost for each (goal with the lost node: 16 / >= 1 / 0),
the wall times of ``hebbkit tune`` and the command that reruns it.

    sudo python benchmarks/cluster_failover.py [--trials 16] [--train-subset 1000]
        [--readout-epochs 2] [--out runs/benchmarks/cluster_failover]
"""

from __future__ import annotations

import argparse
import copy
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import tomli_w

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.cluster_host import ClusterHost, network_namespace, ray_environment  # noqa: E402
from tests.conftest import TINY_RECIPE  # noqa: E402

HEBBKIT = [sys.executable, "-c", "from hebbkit.cli.app import main; main()"]


def recipe(args: argparse.Namespace, folder: Path) -> Path:
    data = copy.deepcopy(TINY_RECIPE)
    data["name"] = "failover"
    data["data"].update(train_subset=args.train_subset, test_subset=500, validation=200)
    data["hebbian"]["batch_size"] = 32
    data["readout"] = {"epochs": args.readout_epochs, "batch_size": 32}
    data["search"] = {"algorithm": "grid", "space": {"seed": {"grid": list(range(args.trials))}}}
    path = folder / "failover_search.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def search(
    netns: str,
    env: dict[str, str],
    cluster: ClusterHost,
    search_recipe: Path,
    out: Path,
    kill_after: int | None,
) -> tuple[float, dict[str, int], str | None]:
    """``hebbkit tune`` on ``cluster``; with ``kill_after``, a worker node is removed once
    that many trials have persisted their results."""
    storage = out.parent / f"{out.name}-storage"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(storage, ignore_errors=True)
    command = [
        *HEBBKIT, "tune", str(search_recipe), "--address", cluster.address, "--out", str(out),
        "--storage", str(storage), "--data-root", str(REPO / "data"), "--offline",
    ]  # fmt: skip
    print("+", shlex.join(command), flush=True)
    started = time.perf_counter()
    process = subprocess.Popen(["ip", "netns", "exec", netns, *command], env=env)
    removed = None
    if kill_after is not None:
        while len(list(storage.glob("*/*/checkpoint_*"))) < kill_after:
            if process.poll() is not None:
                break
            time.sleep(0.2)
        if process.poll() is None:
            removed = cluster.command("kill-busy-worker").get("removed")
            print(f"removed worker node {removed}", flush=True)
    process.wait()
    seconds = time.perf_counter() - started
    frame = pl.read_parquet(out / "trials.parquet")
    counts = {
        "finished": frame.filter(pl.col("status") == "ok").height,
        "retried": frame.filter(pl.col("retries") > 0).height,
        "lost": frame.filter(pl.col("status") == "lost").height,
        "trials": frame.height,
        "exit": process.returncode,
    }
    return seconds, counts, removed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--train-subset", type=int, default=1000)
    parser.add_argument("--readout-epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "runs/benchmarks/cluster_failover")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    temp = tempfile.mkdtemp(prefix="hkb", dir="/tmp")  # Ray's socket paths must stay short
    env = ray_environment(temp, str(REPO))
    search_recipe = recipe(args, out)
    rows = []
    try:
        with network_namespace(f"hkb{os.getpid()}") as netns:
            three = ["--workers", "2", "--head-cpus", "1"]
            setups = [
                ("3 nodes of 1 CPU, a worker killed midway", three, args.trials // 2),
                ("1 node of 3 CPUs", ["--workers", "0", "--head-cpus", "3"], None),
            ]
            for name, cluster_args, kill_after in setups:
                cluster = ClusterHost(netns, env, *cluster_args)
                try:
                    folder = out / ("three_nodes" if kill_after else "one_node")
                    seconds, counts, removed = search(
                        netns, env, cluster, search_recipe, folder, kill_after
                    )
                finally:
                    cluster.close()
                rows.append((name, seconds, counts, removed))
    finally:
        shutil.rmtree(temp, ignore_errors=True)

    print(
        f"\n{args.trials}-trial search ({args.train_subset} training images, "
        f"{args.readout_epochs} read-out epochs); this machine: {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| cluster | trials finished | retried | lost | wall time | exit |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, seconds, counts, _ in rows:
        print(
            f"| {name} | {counts['finished']} / {counts['trials']} | {counts['retried']} "
            f"| {counts['lost']} | {seconds:.0f} s | {counts['exit']} |"
        )
    killed = rows[0][2]
    goal = killed["finished"] == args.trials and killed["retried"] >= 1 and killed["lost"] == 0
    print(f"\nGoal with the lost node ({args.trials} / >= 1 / 0): {'met' if goal else 'NOT met'}.")
    print(f"Wall time, 3 nodes with a loss / 1 node: {rows[0][1] / rows[1][1]:.2f}")
    print(
        "Rerun (as root): "
        + shlex.join(["python", "benchmarks/cluster_failover.py", *sys.argv[1:]])
    )


if __name__ == "__main__":
    main()
