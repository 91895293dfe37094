"""Fake MNIST files (gzipped IDX, random pixels) for tests that must read data, fast."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np


def idx(array: np.ndarray, code: int = 0x08, dims: tuple[int, ...] | None = None) -> bytes:
    """An IDX file: magic, dimensions (``dims`` may lie), then the data."""
    dims = tuple(array.shape) if dims is None else dims
    header = bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}i", *dims)
    return header + array.tobytes()


def write_mnist(root: Path, train: int = 64, test: int = 16, **files: bytes) -> Path:
    """Fake MNIST (gzipped IDX, random pixels, labels 0-9) under ``root/MNIST/raw``;
    ``files`` replaces a file's bytes by name (e.g. ``train_labels=...``)."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", train), ("t10k", test)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = (np.arange(count) % 10).astype(np.uint8)
        key = "train" if prefix == "train" else "test"
        contents = {
            "images": files.get(f"{key}_images", idx(images)),
            "labels": files.get(f"{key}_labels", idx(labels)),
        }
        for kind, data in contents.items():
            name = f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz"
            (raw / name).write_bytes(gzip.compress(data))
    return root


def labels(values: list[int]) -> bytes:
    return idx(np.array(values, dtype=np.uint8))


def images(count: int, height: int = 28, width: int = 28) -> bytes:
    return idx(np.zeros((count, height, width), dtype=np.uint8))
