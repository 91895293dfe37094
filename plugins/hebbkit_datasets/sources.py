"""The dataset components: where each set lies, how to read it, how to download it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from hebbkit.data import ImageSet, missing_data_message
from hebbkit.errors import DataError

from .params import NoParams, STL10Params
from .readers import find_file, read_cifar_batch, read_idx, read_stl_images, read_stl_labels

MNIST_CLASSES = [str(digit) for digit in range(10)]
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
STL10_CLASSES = [
    "airplane",
    "bird",
    "car",
    "cat",
    "deer",
    "dog",
    "horse",
    "monkey",
    "ship",
    "truck",
]


def _download(
    dataset: str,
    folder: Path,
    expected: list[str],
    how: str,
    fetch: Callable[[], object],
    download: bool,
) -> None:
    """Fetch through torchvision, or raise the message that says what is missing."""
    if download:
        try:
            fetch()
            return
        except Exception as error:  # network errors come in many types
            raise DataError(
                missing_data_message(dataset, folder, expected, True, how)
                + f" ({type(error).__name__}: {error})"
            ) from None
    raise DataError(missing_data_message(dataset, folder, expected, False, how))


class IDXSource:
    """MNIST and Fashion-MNIST in torchvision's ``<Name>/raw`` layout."""

    channels = 1
    image_shape = (1, 28, 28)
    sizes: ClassVar[dict[str, int]] = {"train": 60_000, "test": 10_000}

    def __init__(self, folder_name: str, torchvision_class: str, classes: list[str]) -> None:
        self.folder_name = folder_name
        self.torchvision_class = torchvision_class
        self.classes = classes

    def files(self, train: bool) -> tuple[str, str]:
        prefix = "train" if train else "t10k"
        return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"

    def load(self, root: Path, *, train: bool, download: bool) -> ImageSet:
        folder = root / self.folder_name / "raw"
        names = self.files(train)
        if any(find_file(folder, name) is None for name in names):
            import torchvision.datasets as tvd

            how = (
                f"torchvision.datasets.{self.torchvision_class}(root, download=True) fetches "
                "them, or copy the four *-ubyte.gz files there."
            )
            _download(
                self.folder_name,
                folder,
                [f"{n}[.gz]" for n in names],
                how,
                lambda: getattr(tvd, self.torchvision_class)(str(root), train=train, download=True),
                download,
            )
        images_file, labels_file = find_file(folder, names[0]), find_file(folder, names[1])
        images, labels = read_idx(images_file), read_idx(labels_file)
        if images.dim() != 3 or images.dtype != torch.uint8:
            raise DataError(
                f"{images_file} holds {images.dtype} of shape {tuple(images.shape)}; expected "
                "unsigned bytes (N, H, W)."
            )
        if labels.dim() != 1 or labels.dtype.is_floating_point:
            raise DataError(
                f"{labels_file} holds {labels.dtype} of shape {tuple(labels.shape)}; expected "
                "integers (N,)."
            )
        if labels.shape[0] != images.shape[0]:
            raise DataError(
                f"{images_file} holds {images.shape[0]} images but {labels_file} holds "
                f"{labels.shape[0]} labels."
            )
        source = f"{images_file} (labels {labels_file.name})"
        return ImageSet(images.unsqueeze(1).contiguous(), labels.long(), self.classes, source)


class CIFAR10Source:
    folder_name = "cifar-10-batches-py"
    channels = 3
    image_shape = (3, 32, 32)
    sizes: ClassVar[dict[str, int]] = {"train": 50_000, "test": 10_000}

    def load(self, root: Path, *, train: bool, download: bool) -> ImageSet:
        folder = root / self.folder_name
        names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        if any(not (folder / name).is_file() for name in names):
            import torchvision.datasets as tvd

            how = (
                "torchvision.datasets.CIFAR10(root, download=True) fetches them, or unpack "
                "cifar-10-python.tar.gz into the data root."
            )
            _download(
                "cifar10",
                folder,
                names,
                how,
                lambda: tvd.CIFAR10(str(root), train=train, download=True),
                download,
            )
        parts = [read_cifar_batch(folder / name) for name in names]
        data = np.concatenate([images for images, _ in parts])
        labels = torch.tensor([label for _, batch in parts for label in batch], dtype=torch.long)
        images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
        return ImageSet(images, labels, CIFAR10_CLASSES, f"{folder}/{{{','.join(names)}}}")


class STL10Source:
    folder_name = "stl10_binary"
    channels = 3
    image_shape = (3, 96, 96)

    def __init__(self, params: STL10Params) -> None:
        self.params = params
        self.sizes = {"train": 5_000, "test": 8_000}
        if params.unlabeled:
            self.sizes["unlabeled"] = 100_000

    def _ensure(self, root: Path, names: list[str], split: str, download: bool) -> Path:
        folder = root / self.folder_name
        if any(find_file(folder, name) is None for name in names):
            import torchvision.datasets as tvd

            how = (
                "torchvision.datasets.STL10(root, download=True) fetches them, or unpack "
                "stl10_binary.tar.gz into the data root."
            )
            _download(
                "stl10",
                folder,
                names,
                how,
                lambda: tvd.STL10(str(root), split=split, download=True),
                download,
            )
        return folder

    def load(self, root: Path, *, train: bool, download: bool) -> ImageSet:
        split = "train" if train else "test"
        names = [f"{split}_X.bin", f"{split}_y.bin"]
        folder = self._ensure(root, names, split, download)
        images_file, labels_file = find_file(folder, names[0]), find_file(folder, names[1])
        images, labels = read_stl_images(images_file), read_stl_labels(labels_file)
        if labels.shape[0] != images.shape[0]:
            raise DataError(
                f"{images_file} holds {images.shape[0]} images but {labels_file} holds "
                f"{labels.shape[0]} labels."
            )
        source = f"{images_file} (labels {labels_file.name})"
        return ImageSet(images, labels, STL10_CLASSES, source)

    def unlabeled(self, root: Path, *, download: bool) -> torch.Tensor | None:
        if not self.params.unlabeled:
            return None
        folder = self._ensure(root, ["unlabeled_X.bin"], "unlabeled", download)
        return read_stl_images(find_file(folder, "unlabeled_X.bin"))


def mnist(params: NoParams) -> IDXSource:
    return IDXSource("MNIST", "MNIST", MNIST_CLASSES)


def fashion_mnist(params: NoParams) -> IDXSource:
    return IDXSource("FashionMNIST", "FashionMNIST", FASHION_CLASSES)


def cifar10(params: NoParams) -> CIFAR10Source:
    return CIFAR10Source()


def stl10(params: STL10Params) -> STL10Source:
    return STL10Source(params)
