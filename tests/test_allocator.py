"""glibc's malloc thresholds that a run raises (hebbkit.engine.allocator)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from hebbkit.engine import allocator

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Large blocks of mixed sizes allocated and freed per round, as a Hebbian step does. Under
# glibc's defaults the free space at the top of the heap often passes the trim threshold and
# is given back, so later rounds fault the pages in again (how often depends on the heap's
# history: 0 to 19 thousand faults per round in repeated runs here); with the raised
# thresholds a round faults none (the median round: the heap may still grow once, by a few
# MB, after the warm-up). One thread: OpenMP workers first-touch pages of their own.
FAULTS_PER_ROUND = """
import json, resource, sys, torch
from hebbkit.engine.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "kept" else False
torch.set_num_threads(1)
def round_():
    a, b, c = (torch.ones(n) for n in (5_000_000, 2_500_000, 5_000_000))
    del a
    d = torch.ones(7_500_000)
    del b, c, d
for _ in range(5):
    round_()
faults = []
for _ in range(10):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    round_()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"applied": applied, "faults": sorted(faults)[len(faults) // 2]}))
"""


def _faults_per_round(variant: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", FAULTS_PER_ROUND, variant],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="mallopt thresholds exist only in glibc")
def test_kept_memory_reuses_the_pages_of_repeated_large_temporaries() -> None:
    for _ in range(3):  # every process, whatever its heap's history
        kept = _faults_per_round("kept")
        assert kept["applied"] is True
        pages = 20_000_000 * 4 / 4096  # what one round allocates
        assert kept["faults"] < 0.01 * pages
    assert _faults_per_round("default")["applied"] is False


def test_other_c_libraries_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    keep = allocator.keep_freed_memory.__wrapped__  # the uncached function
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("", ""))
    assert keep() is False
    monkeypatch.setattr(allocator.platform, "system", lambda: "Darwin")
    assert keep() is False


def test_a_missing_c_library_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(name: str) -> None:
        raise OSError(f"cannot load {name}")

    monkeypatch.setattr(allocator.platform, "system", lambda: "Linux")
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("glibc", "2.36"))
    monkeypatch.setattr(allocator.ctypes, "CDLL", refuse)
    assert allocator.keep_freed_memory.__wrapped__() is False
