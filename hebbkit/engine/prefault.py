"""Fault in the pages of large fresh CPU tensors in the background, while other work computes.

A run's feature caches are its largest allocations (``mnist_zero``: 3.5 GB of float16 rows for
the training images, 1.2 GB of float32 for the test images), and every page of them is
faulted in the first time the features pass writes it. Where that is slow, in a virtual
machine whose host backs guest memory only on first touch, it is slow indeed: 0.97 GB/s on
the 2-core VM of the README's figures (``python benchmarks/fresh_memory.py``, which also
times what this module saves). Allocating the caches before the Hebbian phase and asking the
kernel to fault them in (``madvise(MADV_POPULATE_WRITE)``, Linux 5.14+) from a thread, a
small range at a time, lets the guest run the Hebbian steps while the host backs the pages;
the features pass then writes into memory that is already there.

``MADV_POPULATE_WRITE`` never changes a byte: it maps pages as a write would, and leaves
pages already mapped alone, so the thread needs no synchronisation with code writing the
same tensor. Small ranges keep each call short, so the thread never holds the process's
memory map for long while the training loop allocates. Where the call is missing or refused
(not Linux, an older kernel), nothing is faulted in and nothing else changes.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import platform
import threading
from collections.abc import Iterator, Sequence
from functools import cache

import torch

#: ``madvise`` advice that faults a range in as if written (linux/mman.h).
MADV_POPULATE_WRITE = 23
#: Bytes faulted in per call: one huge page's worth.
RANGE_BYTES = 2 * 1024**2
#: Smaller tensors are left to fault in as they are written.
MIN_BYTES = 64 * 1024**2


@cache
def _madvise():
    """libc's ``madvise``, or None where it cannot be called (not Linux, no C library)."""
    if platform.system() != "Linux":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        madvise = libc.madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    madvise.restype = ctypes.c_int
    return madvise


def page_ranges(address: int, size: int, page: int, step: int) -> Iterator[tuple[int, int]]:
    """``(start, length)`` ranges of at most ``step`` bytes covering the whole pages inside
    ``[address, address + size)``; a partial page at either end is left out."""
    start = -(-address // page) * page
    end = (address + size) // page * page
    for position in range(start, end, step):
        yield position, min(step, end - position)


def populate(tensor: torch.Tensor, stop: threading.Event) -> bool:
    """Fault in ``tensor``'s pages, a :data:`RANGE_BYTES` range at a time, until done or
    ``stop`` is set; False if the kernel refused the first range (nothing to be gained)."""
    madvise = _madvise()
    if madvise is None:
        return False
    size = tensor.untyped_storage().nbytes()
    page = os.sysconf("SC_PAGE_SIZE")
    for count, (start, length) in enumerate(
        page_ranges(tensor.untyped_storage().data_ptr(), size, page, RANGE_BYTES)
    ):
        if stop.is_set():
            return True
        # ctypes releases the GIL for the call: the training loop keeps running
        if madvise(start, length, MADV_POPULATE_WRITE) != 0:
            return count > 0
    return True


def worth_faulting(tensor: torch.Tensor) -> bool:
    """A CPU tensor large enough (:data:`MIN_BYTES`) for the thread to pay off."""
    return tensor.device.type == "cpu" and tensor.untyped_storage().nbytes() >= MIN_BYTES


@contextlib.contextmanager
def faulting_in(tensors: Sequence[torch.Tensor]) -> Iterator[None]:
    """Fault in the pages of ``tensors`` (those :func:`worth_faulting`) from a background
    thread while the block runs; on leaving, the thread stops after its current range."""
    todo = [t for t in tensors if worth_faulting(t)]
    if not todo or _madvise() is None:
        yield
        return
    stop = threading.Event()

    def work() -> None:
        for tensor in todo:
            if not populate(tensor, stop):
                return

    thread = threading.Thread(target=work, name="hebbkit-prefault", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
