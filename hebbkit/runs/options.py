"""How to run through Ray: the options of ``hebbkit tune`` and ``hebbkit grid --address``,
validated once for both (no Ray import here)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from hebbkit.engine.precision import precision_problem, resolve_precision
from hebbkit.environment import describe_setting
from hebbkit.errors import HebbkitError
from hebbkit.runs.run import device_source
from hebbkit.runs.storage import storage_uri
from hebbkit.runs.tracking import TrackSpec


@dataclass
class RayOptions:
    """Where to run, with which resources per trial, on which machine settings."""

    address: str = "local"
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    ray_temp: Path | None = None
    data_root: Path = Path("data")
    #: cpu or cuda, as the trial resolves it (Ray picks the GPU: cuda is its cuda:0)
    device: str = "cpu"
    offline: bool = False
    #: numerics of every trial (hebbkit.engine.precision)
    precision: str = "fp32"
    resume: bool = False
    verbose: bool = False
    #: the experiment trackers every trial logs to
    track: list[TrackSpec] = field(default_factory=list)
    #: where Ray keeps results (path or URI); None: beside the output (``<out>/ray``)
    storage: str | None = None
    #: read the data here and send it to the trials through Ray's object store
    ship_data: bool = False
    #: times a trial lost to a dead node or worker process is started again
    max_retries: int = 3

    @property
    def remote(self) -> bool:
        """Whether the trials may run on other machines than this one."""
        return self.address != "local"


def ray_address(flag: str | None) -> str:
    """``--address``, else ``RAY_ADDRESS``, else ``local``; checked for its form."""
    address = (flag or os.environ.get("RAY_ADDRESS") or "local").strip()
    if not (
        address in ("local", "auto")
        or address.startswith("ray://")
        or (":" in address and address.rsplit(":", 1)[1].isdigit())
    ):
        raise HebbkitError(f"--address {address!r}: use local, auto, ray://HOST:PORT or HOST:PORT.")
    return address


def ray_options(
    *,
    address: str | None,
    cpus: float,
    gpus: float,
    max_concurrent: int | None,
    device: str | None,
    data_root: Path,
    offline: bool,
    precision: str = "auto",
    ray_temp: Path | None = None,
    resume: bool = False,
    verbose: bool = False,
    storage: str | None = None,
    ship_data: bool | None = None,
    max_retries: int = 3,
    unit: str = "trial",
    track: list[TrackSpec] | None = None,
) -> RayOptions:
    """Check the Ray flags of a search (``unit="trial"``) or a grid (``unit="run"``).

    Flags are named as the command spells them (``--cpus-per-trial``, ``--cpus-per-run``).
    ``ship_data`` left at None ships the data whenever the trials may run on other machines.
    """
    where = ray_address(address)
    cpus_flag, gpus_flag = f"--cpus-per-{unit}", f"--gpus-per-{unit}"
    if not math.isfinite(cpus) or cpus <= 0:
        raise HebbkitError(f"{cpus_flag} {cpus:g}: give a positive number (e.g. 1 or 0.5).")
    if not math.isfinite(gpus) or gpus < 0:
        raise HebbkitError(f"{gpus_flag} {gpus:g}: give 0 or more (0.25: four per GPU).")
    if max_concurrent is not None and max_concurrent < 1:
        raise HebbkitError(f"--max-concurrent {max_concurrent}: give 1 or more.")
    if max_retries < 0:
        raise HebbkitError(f"--max-retries {max_retries}: give 0 or more.")
    if storage is not None and not storage.strip():
        raise HebbkitError("--storage '': give a folder or a URI such as s3://bucket/path.")
    requested, source = device_source(device)
    if requested is not None and requested not in ("cpu", "cuda"):
        raise HebbkitError(
            f"{describe_setting(source, requested)}: through Ray a {unit} takes cpu or cuda (Ray "
            f"assigns each {unit} its GPU, which it sees as cuda)."
        )
    if gpus > 0:
        chosen = requested or "cuda"
    elif requested == "cuda":
        raise HebbkitError(
            f"{describe_setting(source, requested)} needs {gpus_flag} > 0: Ray hides the GPUs "
            f"from {unit}s that did not ask for one (try {gpus_flag} 1, or 0.25 to share a GPU "
            "by four)."
        )
    else:
        chosen = "cpu"
    if chosen == "cuda" and where == "local" and not torch.cuda.is_available():
        raise HebbkitError(
            f"{gpus_flag} {gpus:g} asks for GPUs, but torch {torch.__version__} sees none "
            f"on this machine. Use {gpus_flag} 0, or --address to join a cluster with GPUs."
        )
    # auto as this machine resolves it: trials on other machines compute in the same precision
    precision = resolve_precision(precision, torch.device(chosen))
    problem = precision_problem(precision, torch.device(chosen))
    if problem:
        raise HebbkitError(f"--precision {precision}: {problem} (each {unit} runs on {chosen}).")
    return RayOptions(
        address=where,
        cpus_per_trial=cpus,
        gpus_per_trial=gpus,
        max_concurrent=max_concurrent,
        ray_temp=ray_temp.expanduser().resolve() if ray_temp is not None else None,
        data_root=data_root,
        device=chosen,
        offline=offline,
        precision=precision,
        resume=resume,
        verbose=verbose,
        track=list(track or []),
        storage=storage_uri(storage) if storage is not None else None,
        ship_data=where != "local" if ship_data is None else ship_data,
        max_retries=max_retries,
    )
