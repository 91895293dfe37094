"""Keep freed memory in the process, so each step's large temporaries reuse warm pages.

A Hebbian step allocates and frees tensors of 10-50 MB (patch matrices, ``u``, correlations,
the update). glibc's malloc gives such blocks back to the kernel once the free space at the top
of its heap passes a trim threshold that, by default, only grows to twice the largest block
freed so far; every later allocation then faults its pages in again, zero-filled by the kernel
(about 12 000 page faults per step in SoftHebb's 1 536-neuron layer under ``bf16-auto`` on a
2-core CPU: 114 against 72 ms per step with the pages kept; ``benchmarks/page_faults.py``).
Raising both thresholds keeps the pages: the numbers computed are the same, only where the
memory comes from changes. After its peak the process keeps up to :data:`TRIM_THRESHOLD` of
freed memory instead of returning it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
from functools import cache

#: glibc's ``mallopt`` parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: blocks up to this size come from the heap (glibc's largest allowed value on 64-bit)
MMAP_THRESHOLD = 32 * 1024**2
#: free memory at the top of the heap kept before any is given back to the kernel
TRIM_THRESHOLD = 1024**3


@cache
def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; False where the C library is
    not glibc (macOS, Windows, musl) or refuses, which changes nothing but speed."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; setting the mmap threshold also stops glibc adjusting it
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
