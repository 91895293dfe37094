"""A Ray cluster as hebbkit sees it: can the head be reached, do the trials fit on a node,
which nodes lack the data, and how to say what went wrong.

No Ray here: :mod:`hebbkit.runs.ray` asks Ray and hands the answers to these functions.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hebbkit.errors import TuneSetupError
from hebbkit.runs.options import RayOptions

#: seconds to wait for the head's port to accept a connection before calling it dead
REACH_TIMEOUT = 3.0

AUTH_HINT = (
    "If the cluster uses token authentication (the default of new Ray clusters since Ray "
    "2.52), set RAY_AUTH_MODE=token here and give the head's token (`ray get-auth-token` on "
    "the head, or its ~/.ray/auth_token) in RAY_AUTH_TOKEN or a file named by "
    "RAY_AUTH_TOKEN_PATH."
)


@dataclass(frozen=True)
class Node:
    """One alive node of a cluster."""

    node_id: str
    address: str
    hostname: str
    resources: dict[str, float] = field(default_factory=dict, compare=False, hash=False)

    def describe(self) -> str:
        where = (
            self.hostname if self.hostname == self.address else f"{self.hostname}, {self.address}"
        )
        return f"node {self.node_id[:8]} ({where})"


def nodes_from_ray(entries: Sequence[dict[str, Any]]) -> list[Node]:
    """The alive nodes of ``ray.nodes()`` (dead nodes stay listed there, with no resources)."""
    return [
        Node(
            node_id=entry["NodeID"],
            address=entry.get("NodeManagerAddress", "?"),
            hostname=entry.get("NodeManagerHostname", "?"),
            resources=dict(entry.get("Resources") or {}),
        )
        for entry in entries
        if entry.get("Alive")
    ]


# --- reaching the head -------------------------------------------------------------------


def host_and_port(address: str) -> tuple[str, int] | None:
    """``HOST:PORT`` or ``ray://HOST:PORT`` split; None for local or auto."""
    text = address.removeprefix("ray://")
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def check_reachable(address: str, given: str, timeout: float = REACH_TIMEOUT) -> None:
    """Refuse an address nothing listens on, at once: Ray itself retries for minutes."""
    target = host_and_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout):
            pass
    except OSError as error:
        reason = "timed out" if isinstance(error, TimeoutError) else error.strerror or str(error)
        head = (
            "ray start --head --ray-client-server-port=10001"
            if given.startswith("ray://")
            else "ray start --head --port=6379"
        )
        raise TuneSetupError(
            f"--address {given}: nothing answers at {target[0]}:{target[1]} ({reason}). "
            f"Check the host and port, start the cluster (`{head}` on the head node), or run "
            "on this machine alone with --address local."
        ) from None


def connect_error(given: str, error: BaseException) -> TuneSetupError:
    """One paragraph for any failure of ``ray.init``, with the likely fix."""
    text = " ".join(str(error).split()) or type(error).__name__
    if len(text) > 400:
        text = text[:400] + " ..."
    lowered = text.lower()
    if "ray[client]" in lowered or "ray client requires" in lowered:
        hint = (
            "Ray Client (ray://) needs the grpcio package: install hebbkit's tune extra again "
            "(pip install 'hebbkit[tune]'), which includes it."
        )
    elif "version mismatch" in lowered or "python version" in lowered:
        hint = (
            "The driver must run the same Ray and Python versions as the cluster: install "
            "them here (pip install 'ray[tune,client]==<the cluster's version>'), or submit "
            "the search to the cluster with `ray job submit` so that it runs there."
        )
    elif "auth" in lowered or "token" in lowered or "timeout" in lowered or "timed out" in lowered:
        hint = (
            f"{AUTH_HINT} Otherwise check that the address is the cluster's (ray://HOST:10001 "
            "for Ray Client, HOST:6379 for the head's GCS port)."
        )
    else:
        hint = (
            "Check the address (ray://HOST:10001 for Ray Client, HOST:6379 or auto for a "
            "cluster this machine is part of) and that the cluster runs the same Ray version. "
            + AUTH_HINT
        )
    return TuneSetupError(
        f"--address {given}: could not connect to Ray ({type(error).__name__}: {text}). {hint}"
    )


# --- what fits on the nodes ----------------------------------------------------------------


def check_fits(
    options: RayOptions, nodes: Sequence[Node], autoscaling: bool, unit: str = "trial"
) -> list[str]:
    """Refuse a trial no node can hold (it would wait forever); warn instead when the
    cluster can grow. Returns the warnings."""
    warnings = []
    asked = {"CPU": options.cpus_per_trial, "GPU": options.gpus_per_trial}
    flags = {"CPU": f"--cpus-per-{unit}", "GPU": f"--gpus-per-{unit}"}
    for resource, amount in asked.items():
        if amount <= 0:
            continue
        largest = max((n.resources.get(resource, 0.0) for n in nodes), default=0.0)
        if amount <= largest:
            continue
        total = sum(n.resources.get(resource, 0.0) for n in nodes)
        have = f"the largest of the {len(nodes)} nodes has {largest:g} {resource}s" + (
            f" ({total:g} in all, but a {unit} runs on one node)" if total > largest else ""
        )
        if autoscaling:
            warnings.append(
                f"{flags[resource]} {amount:g}: {have}. The cluster autoscales, so the {unit}s "
                f"wait until it adds a node with {amount:g} {resource}s."
            )
            continue
        fix = f"Ask for at most {largest:g}" if largest > 0 else f"Use {flags[resource]} 0"
        extra = " (and --device cpu)" if resource == "GPU" else ""
        raise TuneSetupError(
            f"{flags[resource]} {amount:g}: {have}, so no {unit} could ever start. {fix}{extra}, "
            "or join a cluster with larger nodes (--address)."
        )
    return warnings


def can_host(node: Node, options: RayOptions) -> bool:
    """Whether a trial fits on this node (others never run one, so need no data)."""
    cpus, gpus = node.resources.get("CPU", 0.0), node.resources.get("GPU", 0.0)
    return cpus >= options.cpus_per_trial and gpus >= options.gpus_per_trial


def autoscales(node_types: Sequence[str], pending: int) -> bool:
    """Whether an autoscaler manages the cluster.

    Every head runs Ray's monitor; on a fixed cluster it names each node type after the node
    (``node_<id>``), while an autoscaler uses the types of its cluster configuration and can
    have launches pending.
    """
    return pending > 0 or any(name and not name.startswith("node_") for name in node_types)


# --- data on the nodes -------------------------------------------------------------------


def missing_data_error(problems: dict[Node, str], count: int, data_root: str) -> TuneSetupError:
    """Which nodes cannot read the data, and what to do about it."""
    shown = "\n".join(
        f"  {node.describe()}: {' '.join(text.split())}"
        for node, text in sorted(problems.items(), key=lambda item: item[0].node_id)
    )
    return TuneSetupError(
        f"The data cannot be read on {len(problems)} of the {count} Ray nodes that can run "
        "trials (without "
        f"--ship-data every trial reads it from --data-root {data_root} on its own node):\n"
        f"{shown}\nCopy the datasets to {data_root} on every node (or point --data-root at "
        "a folder all nodes share), or send them from this machine with --ship-data."
    )


# --- failures ----------------------------------------------------------------------------


def lost_cluster_message(
    given: str, exit_code: int | None, reachable: bool, resume: str, kept: str
) -> str:
    """What to say when the process driving Ray ended without an answer."""
    if not reachable:
        what = (
            f"The Ray cluster at {given} was lost during the run: its head stopped answering "
            "(a crash, a restart or a network failure)"
        )
    else:
        what = (
            f"The process driving Ray ended unexpectedly (exit code {exit_code}) while the "
            f"cluster at {given} still answers"
        )
    return f"{what}. {kept} Once the cluster is up again, continue with: {resume}"


def first_line(text: str, limit: int = 300) -> str:
    line = next((part.strip() for part in text.strip().splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[:limit] + " ..."


def reachable_now(address: str | None) -> bool:
    """Whether the head's port still accepts connections (unknown addresses count as yes)."""
    target = host_and_port(address) if address else None
    if target is None:
        return True
    try:
        with socket.create_connection(target, timeout=REACH_TIMEOUT):
            return True
    except OSError:
        return False
