"""An exclusive, non-blocking lock on an open file that the OS releases when its process ends:
``flock`` on POSIX, ``msvcrt.locking`` on Windows."""

from __future__ import annotations

import os
import warnings

from hebbkit.errors import HebbkitNotice

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
try:
    import msvcrt
except ImportError:  # POSIX
    msvcrt = None  # type: ignore[assignment]


def try_lock(fd: int) -> bool:
    """Lock ``fd`` exclusively without waiting: False when another process holds it.

    Other OS errors propagate. On a platform with neither lock, every claim succeeds
    (with a notice): two runs on one folder are then not detected."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    if msvcrt is not None:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except PermissionError:  # EACCES: locked by another process
            return False
        return True
    warnings.warn(
        "This platform offers no file locks: a second hebbkit process on the same output "
        "folder would not be detected.",
        HebbkitNotice,
        stacklevel=3,
    )
    return True
