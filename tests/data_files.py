"""Tiny dataset files in their real on-disk formats (torchvision's layouts): MNIST-style IDX,
CIFAR-10 pickled batches, STL-10 binaries. Each image's pixels encode its index, so a test can
tell which image it got and whether it was read the right way round."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

#: (train, test) images each writer puts in a root with its defaults.
SIZES = {"mnist": (6, 3), "fashion_mnist": (6, 3), "cifar10": (10, 2), "stl10": (3, 2)}


def idx_bytes(array: np.ndarray, code: int = 0x08, dims: tuple[int, ...] | None = None) -> bytes:
    """An IDX file's bytes: magic (``code`` is the element type), dimensions (``dims`` may
    lie about the data, for tests of broken files), then the data as it is."""
    dims = tuple(array.shape) if dims is None else dims
    header = struct.pack(">BBBB", 0, 0, code, len(dims)) + struct.pack(f">{len(dims)}i", *dims)
    return header + array.tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    raw = idx_bytes(array.astype(np.uint8))
    if compress:
        with gzip.open(f"{path}.gz", "wb") as stream:
            stream.write(raw)
    else:
        path.write_bytes(raw)


def write_mnist(root: Path, folder: str = "MNIST", compress: bool = True, n: int = 6) -> None:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, count in (("train", n), ("t10k", n // 2)):
        images = np.zeros((count, 28, 28), dtype=np.uint8)
        for i in range(count):
            images[i, i, 27 - i] = 200 + i  # a known pixel per image
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(count) % 10, compress)


def write_random_mnist(root: Path, train: int = 64, test: int = 16, **files: bytes) -> Path:
    """MNIST in gzipped IDX under ``root/MNIST/raw``, random pixels and labels 0-9, for runs
    that must learn something; ``files`` replaces a file's bytes (``train_images``,
    ``train_labels``, ``test_images``, ``test_labels``) to make it broken."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, key, count in (("train", "train", train), ("t10k", "test", test)):
        contents = {
            "images-idx3": files.get(
                f"{key}_images", idx_bytes(rng.integers(0, 256, (count, 28, 28), dtype=np.uint8))
            ),
            "labels-idx1": files.get(
                f"{key}_labels", idx_bytes((np.arange(count) % 10).astype(np.uint8))
            ),
        }
        for kind, data in contents.items():
            (raw / f"{prefix}-{kind}-ubyte.gz").write_bytes(gzip.compress(data, compresslevel=1))
    return root


def cifar_image(index: int) -> np.ndarray:
    """A (3, 32, 32) image whose pixels encode (index, channel, row, col)."""
    c, r, col = np.meshgrid(np.arange(3), np.arange(32), np.arange(32), indexing="ij")
    return ((index * 37 + c * 80 + r * 3 + col) % 256).astype(np.uint8)


def write_cifar(root: Path, per_batch: int = 2) -> dict[str, np.ndarray]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    index = 0
    for name in names:
        images = np.stack([cifar_image(index + i) for i in range(per_batch)])
        labels = [(index + i) % 10 for i in range(per_batch)]
        index += per_batch
        # the real format: row = 1024 red, 1024 green, 1024 blue, each row-major 32×32
        batch = {
            b"batch_label": name.encode(),
            b"labels": labels,
            b"data": images.reshape(per_batch, 3072),
            b"filenames": [f"img{i}.png".encode() for i in range(per_batch)],
        }
        with (folder / name).open("wb") as stream:
            pickle.dump(batch, stream, protocol=2)
        written[name] = images
    return written


def stl_image(index: int) -> np.ndarray:
    c, r, col = np.meshgrid(np.arange(3), np.arange(96), np.arange(96), indexing="ij")
    return ((index * 11 + c * 50 + r * 7 + col) % 256).astype(np.uint8)


def write_stl_images(path: Path, indices: range) -> None:
    # the real format: each channel stored column-major (Fortran order)
    with path.open("wb") as stream:
        for i in indices:
            stream.write(np.ascontiguousarray(stl_image(i).transpose(0, 2, 1)).tobytes())


def write_stl(root: Path) -> Path:
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    write_stl_images(folder / "train_X.bin", range(3))
    (folder / "train_y.bin").write_bytes(bytes([1, 10, 4]))  # labels 1..10 on disk
    write_stl_images(folder / "test_X.bin", range(10, 12))
    (folder / "test_y.bin").write_bytes(bytes([2, 3]))
    write_stl_images(folder / "unlabeled_X.bin", range(20, 24))
    return folder


def write_all(root: Path) -> Path:
    """Every built-in dataset's files under ``root`` (sizes: :data:`SIZES`)."""
    write_mnist(root, "MNIST")
    write_mnist(root, "FashionMNIST")
    write_cifar(root)
    write_stl(root)
    return root
