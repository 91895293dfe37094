"""Feature caches faulted in ahead, in the background (hebbkit.engine.prefault), and the
features pass writing into them (extract_features(out=...))."""

from __future__ import annotations

import mmap
import os
import resource
import threading

import pytest
import torch

from hebbkit.config.recipe import load_recipe
from hebbkit.engine import prefault
from hebbkit.engine.network import HebbianNetwork
from hebbkit.engine.progress import QuietProgress
from hebbkit.engine.training import extract_features
from tests.conftest import RECIPES

PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1024**2


def populate_works() -> bool:
    if prefault._madvise() is None:
        return False
    probe = torch.empty(4 * MB, dtype=torch.uint8)
    return prefault.populate(probe, threading.Event())


def fresh_bytes(size: int) -> torch.Tensor:
    """``size`` bytes of fresh anonymous memory: whatever malloc keeps from earlier tests (a
    run raises its thresholds, :mod:`hebbkit.engine.allocator`), these pages were never
    touched."""
    region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return torch.frombuffer(region, dtype=torch.uint8)


def faults_while_writing(tensor: torch.Tensor) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    tensor.fill_(1)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.parametrize(
    ("address", "size", "step"),
    [
        (0, 10 * PAGE, 4 * PAGE),
        (100, 10 * PAGE, 3 * PAGE),
        (PAGE - 1, 2 * PAGE + 2, PAGE),
        (5, PAGE, PAGE),
        (3 * PAGE, 7 * PAGE + 17, 64 * PAGE),
    ],
)
def test_page_ranges_cover_the_whole_pages_inside_in_short_steps(address, size, step) -> None:
    ranges = list(prefault.page_ranges(address, size, PAGE, step))
    covered = [page for start, length in ranges for page in range(start, start + length, PAGE)]
    inside = [
        page for page in range(0, address + size, PAGE) if address <= page <= address + size - PAGE
    ]
    assert covered == inside
    assert all(0 < length <= step and start % PAGE == 0 for start, length in ranges)


@pytest.mark.skipif(not populate_works(), reason="no madvise(MADV_POPULATE_WRITE) here")
def test_populated_pages_are_written_without_faults_and_keep_their_bytes() -> None:
    size = 64 * MB
    fresh = fresh_bytes(size)
    assert prefault.populate(fresh, threading.Event())
    pages = size // PAGE
    assert faults_while_writing(fresh) < 0.05 * pages
    lazy = fresh_bytes(size)
    assert faults_while_writing(lazy) > 0.5 * pages  # the comparison means something here

    data = torch.arange(size // 4, dtype=torch.int32)
    expected = data.clone()
    assert prefault.populate(data, threading.Event())
    assert torch.equal(data, expected)


@pytest.mark.skipif(not populate_works(), reason="no madvise(MADV_POPULATE_WRITE) here")
def test_a_stop_before_the_first_range_faults_nothing_in() -> None:
    stop = threading.Event()
    stop.set()
    fresh = fresh_bytes(16 * MB)
    assert prefault.populate(fresh, stop)
    assert faults_while_writing(fresh) > 0.5 * (16 * MB // PAGE)


def test_faulting_in_leaves_data_alone_while_the_block_writes_it() -> None:
    big = torch.zeros(prefault.MIN_BYTES // 4 + 1024, dtype=torch.int32)
    expected = torch.arange(big.numel(), dtype=torch.int32)
    with prefault.faulting_in([big]):
        for part, values in zip(big.split(MB), expected.split(MB), strict=True):
            part.copy_(values)  # written while the thread faults the same pages in
    assert torch.equal(big, expected)


def test_a_refusing_kernel_ends_the_thread_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def refuse(start: int, length: int, advice: int) -> int:
        calls.append((start, length, advice))
        return -1

    monkeypatch.setattr(prefault, "_madvise", lambda: refuse)
    big = torch.ones(prefault.MIN_BYTES // 4, dtype=torch.float32)
    assert prefault.populate(big, threading.Event()) is False
    with prefault.faulting_in([big, big]):
        pass
    # the first range refused, once per populate call: the thread gave up at once
    assert len(calls) == 2
    assert {advice for _, _, advice in calls} == {prefault.MADV_POPULATE_WRITE}
    assert torch.all(big == 1)


def test_small_and_unsupported_cases_start_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> int:
        raise AssertionError("madvise was called")

    monkeypatch.setattr(prefault, "_madvise", lambda: fail)
    small = torch.empty(prefault.MIN_BYTES // 8, dtype=torch.float32)
    assert not prefault.worth_faulting(small)
    with prefault.faulting_in([small]):
        pass
    big = torch.empty(prefault.MIN_BYTES, dtype=torch.uint8)
    assert prefault.worth_faulting(big)
    monkeypatch.setattr(prefault, "_madvise", lambda: None)
    with prefault.faulting_in([big]):
        pass
    assert prefault.populate(big, threading.Event()) is False


def test_madvise_is_none_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prefault.platform, "system", lambda: "Darwin")
    assert prefault._madvise.__wrapped__() is None


def _network(registry) -> HebbianNetwork:
    recipe = load_recipe(RECIPES / "mnist_zero.toml", ["layers.0.channels=8"], registry)
    return HebbianNetwork.from_recipe(recipe, 1, registry)


def test_features_written_into_out_equal_those_in_a_fresh_cache(registry) -> None:
    network = _network(registry)
    images = torch.randint(0, 256, (70, 1, 28, 28), dtype=torch.uint8)
    cpu = torch.device("cpu")
    fresh = extract_features(network, images, torch.float16, cpu, QuietProgress(), "f", 16)
    out = torch.full_like(fresh, float("nan"))
    given = extract_features(network, images, torch.float16, cpu, QuietProgress(), "f", 16, out)
    assert given is out
    assert torch.equal(given, fresh)


@pytest.mark.parametrize(
    ("rows", "width", "dtype", "words"),
    [
        (69, None, torch.float16, "70 rows"),
        (70, None, torch.float32, "float16"),
        (70, 7, torch.float16, "features"),
    ],
)
def test_an_out_of_the_wrong_shape_or_dtype_is_refused(registry, rows, width, dtype, words):
    network = _network(registry)
    images = torch.randint(0, 256, (70, 1, 28, 28), dtype=torch.uint8)
    size = network.feature_shape((1, 28, 28))
    width = width or size[0] * size[1] * size[2]
    out = torch.empty(rows, width, dtype=dtype)
    with pytest.raises(ValueError, match=words):
        extract_features(
            network, images, torch.float16, torch.device("cpu"), QuietProgress(), "f", 16, out
        )
