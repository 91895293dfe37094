"""Readers for the on-disk formats torchvision downloads, gzipped or not.

torchvision itself insists on unpacked files with known checksums; these readers take the
files as they lie (e.g. ``MNIST/raw/*-ubyte.gz``) and return whole uint8 tensors.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import torch

from hebbkit.errors import DataError

IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def find_file(folder: Path, name: str) -> Path | None:
    """``name`` or ``name.gz`` in ``folder``."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as stream:
                return stream.read()
        return path.read_bytes()
    except (OSError, EOFError) as error:
        raise DataError(f"Cannot read {path}: {error}. Delete it and fetch it again.") from None


def read_idx(path: Path) -> torch.Tensor:
    """An IDX file (MNIST's format) as a tensor."""
    data = read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number).")
    ndim = data[3]
    dims = np.frombuffer(data, dtype=">i4", count=ndim, offset=4).astype(int)
    dtype = np.dtype(IDX_DTYPES[data[2]])
    count = int(np.prod(dims))
    offset = 4 + 4 * ndim
    if len(data) - offset != count * dtype.itemsize:
        raise DataError(
            f"{path} is truncated or corrupt: header says {tuple(dims)} but holds "
            f"{len(data) - offset} bytes."
        )
    array = np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(dims)
    return torch.from_numpy(array.astype(array.dtype.newbyteorder("="), copy=True))


def read_cifar_batch(path: Path) -> tuple[np.ndarray, list[int]]:
    try:
        with path.open("rb") as stream:
            batch = pickle.load(stream, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = list(batch.get(b"labels", batch.get(b"fine_labels", [])))
    except (OSError, pickle.UnpicklingError, KeyError, EOFError, TypeError, ValueError) as error:
        raise DataError(f"{path} is not a CIFAR batch file: {error}.") from None
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
