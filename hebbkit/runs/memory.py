"""How much memory a run may plan to use: ``--max-memory``, else what the machine has free.

Read from the operating system (``/proc/meminfo``, the cgroup's limit) and from torch for a
GPU, so that the engine's estimate (:mod:`hebbkit.engine.shapes`) stays pure arithmetic.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from hebbkit.environment import describe_setting
from hebbkit.errors import SettingError

_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


@dataclass(frozen=True)
class MemoryLimit:
    """Bytes a run may plan to hold at its peak, and where that figure comes from."""

    bytes: int
    what: str


def parse_size(text: str, name: str) -> int:
    """``8GiB``, ``8G``, ``512MB``, ``1.5 GiB`` or plain bytes (units are powers of 1024);
    ``name`` (the flag or variable) is named when ``text`` is none of these."""
    match = _SIZE.match(str(text))
    value = float(match.group(1)) * _UNITS[match.group(2).lower()] if match else math.nan
    if not math.isfinite(value) or value < 1:
        raise SettingError(
            f"{describe_setting(name, str(text))} is not a memory size: give a positive size "
            "such as 8GiB, 512MiB or 16G (units are powers of 1024)."
        )
    return int(value)


def _meminfo() -> dict[str, int]:
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return {}
    info = {}
    for line in lines:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            info[key] = int(parts[0]) * 1024
    return info


def _cgroup_room(total: bool = False) -> int | None:
    """What the process's cgroup (a container, a Slurm job) still lets it allocate (or,
    with ``total``, its whole limit)."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:
            return int(limit) if total else max(0, int(limit) - usage)
    return None


def _own_resident_bytes() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def host_memory_free() -> int | None:
    """RAM this process could still hold: the kernel's MemAvailable (or the cgroup's room,
    if smaller) plus what the process already holds (the estimate counts that too)."""
    candidates = [v for v in (_meminfo().get("MemAvailable"), _cgroup_room()) if v is not None]
    if not candidates:
        return None
    return min(candidates) + _own_resident_bytes()


def host_memory_total() -> int | None:
    """All the RAM this process could ever hold: the machine's, or its cgroup's limit."""
    candidates = [v for v in (_meminfo().get("MemTotal"), _cgroup_room(total=True)) if v]
    return min(candidates) if candidates else None


def device_memory(device: torch.device, total: bool = False) -> int | None:
    """Memory a run could hold on ``device``: free now (plus what this process already
    holds), or with ``total`` all of it."""
    if device.type != "cuda":
        return host_memory_total() if total else host_memory_free()
    try:
        if total:
            return int(torch.cuda.get_device_properties(device).total_memory)
        free, _ = torch.cuda.mem_get_info(device)
    except (RuntimeError, AssertionError):
        return None
    return int(free) + int(torch.cuda.memory_reserved(device))


def memory_limit(
    device: torch.device, max_memory: int | None, source: str, total: bool = False
) -> MemoryLimit | None:
    """``max_memory`` (from ``source``: the flag or variable) if given, else what
    ``device`` has free (with ``total``: what it has at all, for plans whose runs start
    later); None when neither is known."""
    if max_memory is not None:
        return MemoryLimit(max_memory, source)
    size = device_memory(device, total)
    if size is None:
        return None
    kind = "RAM" if device.type == "cpu" else f"memory of {device}"
    where = f"all the {kind} of this machine" if total else f"the {kind} free on this machine"
    return MemoryLimit(size, where)
