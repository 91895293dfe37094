"""Readers for the on-disk formats torchvision downloads, gzipped or not.

torchvision itself insists on unpacked files with known checksums; these readers take the
files as they lie (e.g. ``MNIST/raw/*-ubyte.gz``) and return whole uint8 tensors.
"""

from __future__ import annotations

import gzip
import math
import pickle
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from hebbkit.errors import DataError

IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_IDX_DIMS = 4
#: what reading a (possibly gzipped) file can raise besides our own DataError
READ_ERRORS = (OSError, EOFError, zlib.error)


def find_file(folder: Path, name: str) -> Path | None:
    """``name`` or ``name.gz`` in ``folder``."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _open(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _unreadable(path: Path, error: BaseException) -> DataError:
    reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return DataError(f"Cannot read {path}: {reason}. Delete it and fetch it again.")


def read_bytes(path: Path) -> bytes:
    try:
        with _open(path) as stream:
            return stream.read()
    except READ_ERRORS as error:
        raise _unreadable(path, error) from None


def idx_limit(path: Path) -> int:
    """The most bytes an IDX file's header may declare: what the file holds, or for a gzipped
    file what it can plausibly unpack to (1000:1, at least 1 GiB), so that a corrupt or
    hostile header never makes hebbkit allocate or unpack without end."""
    size = path.stat().st_size
    return max(2**30, 1000 * size) if path.suffix == ".gz" else size


def read_idx(path: Path) -> torch.Tensor:
    """An IDX file (MNIST's format) as a tensor; the header is checked before the body is
    read (negative or absurd dimensions, truncated or oversized files)."""
    try:
        limit = idx_limit(path)
        with _open(path) as stream:
            magic = stream.read(4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_DTYPES:
                raise DataError(f"{path} is not an IDX file (bad magic number).")
            ndim = magic[3]
            if not 1 <= ndim <= MAX_IDX_DIMS:
                raise DataError(
                    f"{path}: the IDX header declares {ndim} dimensions; image and label files "
                    f"have 1 to {MAX_IDX_DIMS}. The file is corrupt."
                )
            header = stream.read(4 * ndim)
            if len(header) < 4 * ndim:
                raise DataError(f"{path} is truncated: its IDX header ends early.")
            dims = struct.unpack(f">{ndim}i", header)
            dtype = np.dtype(IDX_DTYPES[magic[2]])
            if any(d < 0 for d in dims):
                raise DataError(
                    f"{path}: the IDX header declares the dimensions {dims}; a dimension cannot "
                    "be negative. The file is corrupt."
                )
            count = math.prod(dims)
            size = count * dtype.itemsize
            if size > limit:
                raise DataError(
                    f"{path}: the IDX header declares {dims}, {size} bytes of data, but the file "
                    f"cannot hold that many ({path.stat().st_size} bytes). The header is corrupt."
                )
            body = stream.read(size + 1)  # one byte more: a longer body means a wrong header
    except READ_ERRORS as error:
        raise _unreadable(path, error) from None
    if len(body) != size:
        raise DataError(
            f"{path} is truncated or corrupt: the header says {dims} ({size} bytes) but it holds "
            f"{len(body) if len(body) <= size else 'more than that'} bytes of data."
        )
    array = np.frombuffer(body, dtype=dtype, count=count).reshape(dims)
    return torch.from_numpy(array.astype(array.dtype.newbyteorder("="), copy=True))


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles plain data and numpy arrays only: a pickle can name any function to call,
    and a data file must not run code."""

    ALLOWED = frozenset(
        {
            (module, name)
            for module in ("numpy.core.multiarray", "numpy._core.multiarray")
            for name in ("_reconstruct", "scalar")
        }
        | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}
    )

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it refers to {module}.{name}, which no CIFAR batch holds")


def read_cifar_batch(path: Path) -> tuple[np.ndarray, list[int]]:
    try:
        with path.open("rb") as stream:
            batch = _BatchUnpickler(stream, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = [int(label) for label in batch.get(b"labels", batch.get(b"fine_labels", []))]
    except (
        OSError,
        pickle.UnpicklingError,
        KeyError,
        EOFError,
        TypeError,
        ValueError,
        AttributeError,
        IndexError,
        OverflowError,
    ) as error:
        raise DataError(
            f"{path} is not a CIFAR batch file: {type(error).__name__}: {error}."
        ) from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != data.shape[0]:
        raise DataError(
            f"{path} holds {data.shape} images and {len(labels)} labels; expected (N, 3072)."
        )
    return data, labels


def read_stl_images(path: Path) -> torch.Tensor:
    raw = np.frombuffer(read_bytes(path), dtype=np.uint8)
    if raw.size % (3 * 96 * 96):
        raise DataError(f"{path} does not hold whole 3×96×96 images ({raw.size} bytes).")
    # STL-10 stores each channel column-major
    images = raw.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2)
    return torch.from_numpy(np.ascontiguousarray(images))


def read_stl_labels(path: Path) -> torch.Tensor:
    labels = np.frombuffer(read_bytes(path), dtype=np.uint8).astype(np.int64) - 1
    return torch.from_numpy(labels)
