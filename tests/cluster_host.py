"""A multi-node Ray cluster on this machine, for the cluster tests and benchmarks.

Run as a script inside a network namespace that has only ``lo`` (there Ray keeps every
address on 127.0.0.1; elsewhere it swaps in the machine's network address), it starts
``ray.cluster_utils.Cluster`` with a head and ``--workers`` one-CPU worker nodes, prints
one JSON line once they are up, then obeys one command per line on stdin, answering each
with a JSON line:

    kill-busy-worker   remove, without warning, a worker node that runs a Tune trial
    kill-head          remove the head and the workers (the cluster is gone)
    quit               shut everything down

It never connects to the cluster as a driver, so losing the head does not end it.
Imported, it gives the other side: :func:`network_namespace` and :class:`ClusterHost`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import IO, Any

OBJECT_STORE_BYTES = 100 * 2**20  # Ray's floor is 75 MiB; the tests ship a few MiB


# --- the other side: namespaces and a remote control ----------------------------------------------


def ray_environment(temp: str, repo: str) -> dict[str, str]:
    """What every process of a test cluster and of hebbkit shares: Ray's temp folder
    ``temp`` (short: Ray's socket paths are limited), a token of its own, hebbkit from
    ``repo``, and no address inherited from the caller."""
    env = {
        **os.environ,
        "RAY_TMPDIR": temp,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(16),
        "RAY_USAGE_STATS_ENABLED": "0",
        "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("RAY_ADDRESS", None)
    return env


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


class Unavailable(Exception):
    """This machine cannot give a cluster a namespace of its own (not root, no tools)."""


@contextlib.contextmanager
def network_namespace(name: str) -> Iterator[str]:
    """A network namespace with only ``lo``, in which a private mount namespace can mount a
    tmpfs; every process left in it is killed, and the namespace deleted, at the end."""
    if os.geteuid() != 0:
        raise Unavailable("needs root: the cluster runs in a network namespace of its own")
    if not (shutil.which("ip") and shutil.which("unshare")):
        raise Unavailable("needs ip (iproute2) and unshare (util-linux) for namespaces")
    created = _run("ip", "netns", "add", name)
    if created.returncode != 0:
        raise Unavailable(f"cannot create a network namespace: {created.stderr.strip()}")
    try:
        _run("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        probe = tempfile.mkdtemp(prefix="hkc-probe")
        mount = _run(
            "ip", "netns", "exec", name, "unshare", "-m", "--propagation", "private",
            "sh", "-c", f"mount -t tmpfs tmpfs {probe}",
        )  # fmt: skip
        os.rmdir(probe)
        if mount.returncode != 0:
            raise Unavailable(f"cannot mount a tmpfs in a mount namespace: {mount.stderr.strip()}")
        yield name
    finally:
        left = kill_namespace(name)
        _run("ip", "netns", "delete", name)
    if left:
        raise RuntimeError(f"processes left in the namespace {name}: {left}")


def kill_namespace(name: str) -> list[str]:
    """Kill every process in the namespace (and only those); what could not be killed."""
    for _ in range(5):
        pids = _run("ip", "netns", "pids", name).stdout.split()
        if not pids:
            return []
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), 9)
        time.sleep(0.5)
    return _run("ip", "netns", "pids", name).stdout.split()


class ClusterHost:
    """This script in the namespace: a cluster, driven line by line."""

    def __init__(self, netns: str, env: dict[str, str], *args: str, wait: bool = True) -> None:
        """Start the cluster; with ``wait=False`` :meth:`ready` waits for it later (so that
        it can start while something else runs)."""
        command = ["ip", "netns", "exec", netns, sys.executable, __file__, *args]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.info: dict[str, Any] = {}
        if wait:
            self.ready()

    def ready(self) -> ClusterHost:
        if not self.info:
            self.info = self._answer(timeout=240)
        return self

    @property
    def address(self) -> str:
        return str(self.ready().info["address"])

    def _answer(self, timeout: float) -> dict[str, Any]:
        stdout: IO[str] = self.process.stdout  # type: ignore[assignment]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = stdout.readline()
            if line.startswith("{"):
                return json.loads(line)
            if not line and self.process.poll() is not None:
                break
        raise RuntimeError(f"the cluster host did not answer (exit {self.process.poll()})")

    def command(self, text: str, timeout: float = 150) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()
        return self._answer(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.command("quit", timeout=60)
                self.process.wait(timeout=30)
            except (RuntimeError, OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


# --- this side: the cluster ----------------------------------------------------------------------


def say(**message: Any) -> None:
    print(json.dumps(message), flush=True)


def trial_nodes(cluster: Any) -> dict[str, int]:
    """Node id -> number of alive Tune trial actors on it."""
    counts: dict[str, int] = {}
    for actor in cluster.global_state.actor_table(None).values():
        if actor.get("State") != "ALIVE":
            continue
        if "ImplicitFunc" in str(actor.get("ActorClassName", "")):  # Tune's function trials
            node = actor["Address"]["NodeID"]
            counts[node] = counts.get(node, 0) + 1
    return counts


def main() -> None:
    from ray.cluster_utils import Cluster

    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--head-cpus", type=int, default=0)
    parser.add_argument("--client-port", type=int, default=0, help="also start Ray Client")
    args = parser.parse_args()
    started = time.perf_counter()
    head: dict[str, Any] = {"num_cpus": args.head_cpus, "object_store_memory": OBJECT_STORE_BYTES}
    if args.client_port:
        head["ray_client_server_port"] = args.client_port
    cluster = Cluster(initialize_head=True, head_node_args=head)
    workers = [
        cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE_BYTES)
        for _ in range(args.workers)
    ]
    cluster.wait_for_nodes()
    say(
        address=cluster.address,
        head=cluster.head_node.node_id,
        workers=[w.node_id for w in workers],
        seconds=round(time.perf_counter() - started, 1),
    )
    for line in sys.stdin:
        command = line.strip()
        if command == "kill-busy-worker":
            deadline = time.monotonic() + 300
            busy: list[Any] = []
            while not busy and time.monotonic() < deadline:
                counts = trial_nodes(cluster)
                busy = [w for w in workers if counts.get(w.node_id)]
                if not busy:
                    time.sleep(0.2)
            if not busy:
                say(error="no worker node runs a trial")
                continue
            victim = busy[0]
            cluster.remove_node(victim, allow_graceful=False)
            workers.remove(victim)
            say(removed=victim.node_id)
        elif command == "kill-head":
            cluster.remove_node(cluster.head_node, allow_graceful=False)
            for worker in workers:
                cluster.remove_node(worker, allow_graceful=False)
            workers.clear()
            say(removed="head")
        elif command == "quit":
            break
        else:
            say(error=f"unknown command {command!r}")
    cluster.shutdown()
    say(stopped=True)


if __name__ == "__main__":
    main()
