"""Datasets as whole uint8 tensors: roots, offline rules, subsets and the validation split.

Dataset plugins return an :class:`ImageSet`; this module decides where data lives, whether
it may be downloaded, and carves the training subset and validation split a recipe asks for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from hebbkit.errors import DataError
from hebbkit.registry import Registry

#: The validation split does not depend on the run's seed, so every seed sees the same one.
SPLIT_SEED = 20240501


@dataclass
class ImageSet:
    """Images as ``uint8 (N, C, H, W)``, labels as ``int64 (N,)``."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DataError(
                f"A dataset returned images of dtype {self.images.dtype} and shape "
                f"{tuple(self.images.shape)}; expected uint8 (N, C, H, W)."
            )
        if self.labels.shape != (self.images.shape[0],):
            raise DataError(
                f"A dataset returned {self.labels.shape[0]} labels for "
                f"{self.images.shape[0]} images."
            )
        self.labels = self.labels.long()

    def __len__(self) -> int:
        return self.images.shape[0]

    def select(self, indices: torch.Tensor) -> ImageSet:
        return ImageSet(self.images[indices], self.labels[indices], self.classes)


class DatasetSource(Protocol):
    """What a ``dataset`` component builds."""

    def load(self, root: Path, *, train: bool, download: bool) -> ImageSet: ...


@dataclass
class DataSplits:
    train: ImageSet
    validation: ImageSet | None
    test: ImageSet
    #: extra unlabelled images for the Hebbian phase only (e.g. STL-10's 100 000)
    unlabeled: torch.Tensor | None = None

    @property
    def hebbian_images(self) -> torch.Tensor:
        if self.unlabeled is None:
            return self.train.images
        return torch.cat([self.train.images, self.unlabeled])


def data_root(flag: str | Path | None = None) -> Path:
    """``--data-root``, else ``HEBBKIT_DATA``, else ``./data`` (absolute)."""
    value = flag or os.environ.get("HEBBKIT_DATA") or "data"
    return Path(value).expanduser().resolve()


def offline(flag: bool = False) -> bool:
    """``--offline`` or ``HEBBKIT_OFFLINE=1``: never download."""
    env = os.environ.get("HEBBKIT_OFFLINE", "").strip().lower()
    return flag or env in {"1", "true", "yes", "on"}


def missing_data_message(
    dataset: str, folder: Path, expected: list[str], download_allowed: bool, how: str
) -> str:
    reason = (
        "the download failed"
        if download_allowed
        else "downloading is off (--offline / HEBBKIT_OFFLINE=1)"
    )
    return (
        f"Dataset {dataset!r} not found in {folder} and {reason}. Expected files: "
        f"{', '.join(expected)}. {how} Point hebbkit at another folder with --data-root DIR or "
        "HEBBKIT_DATA=DIR."
    )


def load_splits(
    data_config: object,
    registry: Registry,
    root: Path,
    *,
    download: bool,
) -> DataSplits:
    """Load the recipe's dataset and carve subsets and the validation split."""
    spec = data_config.dataset  # type: ignore[attr-defined]
    source = registry.get("dataset", spec.name).build(spec)
    if not root.exists() and not download:
        raise DataError(
            f"Data root {root} does not exist. Pass --data-root DIR or set HEBBKIT_DATA=DIR to "
            "the folder that holds the datasets (e.g. DIR/MNIST/raw/*-ubyte.gz)."
        )
    train = source.load(root, train=True, download=download)
    test = source.load(root, train=False, download=download)
    unlabeled = getattr(source, "unlabeled", None)
    extra = unlabeled(root, download=download) if callable(unlabeled) else None
    return split(train, test, data_config, extra)


def split(
    train: ImageSet, test: ImageSet, data_config: object, unlabeled: torch.Tensor | None = None
) -> DataSplits:
    validation_size = _validation_size(data_config.validation, len(train))  # type: ignore[attr-defined]
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(SPLIT_SEED))
    validation = train.select(order[:validation_size].sort().values) if validation_size else None
    rest = order[validation_size:]
    subset = data_config.train_subset  # type: ignore[attr-defined]
    if subset is not None:
        if subset > len(rest):
            raise DataError(
                f"data.train_subset = {subset} but only {len(rest)} training images are left "
                "after the validation split."
            )
        rest = rest[:subset]
    train = train.select(rest.sort().values)
    test_subset = data_config.test_subset  # type: ignore[attr-defined]
    if test_subset is not None and test_subset < len(test):
        test_order = torch.randperm(len(test), generator=torch.Generator().manual_seed(SPLIT_SEED))
        test = test.select(test_order[:test_subset].sort().values)
    return DataSplits(train=train, validation=validation, test=test, unlabeled=unlabeled)


def _validation_size(value: float, total: int) -> int:
    if value <= 0:
        return 0
    size = int(round(value * total)) if value < 1 else int(value)
    if value >= 1 and value != int(value):
        raise DataError(
            f"data.validation = {value}: give a fraction in [0, 1) or a whole number of images."
        )
    if size >= total:
        raise DataError(
            f"data.validation = {value} leaves no training images (the set has {total})."
        )
    return size


def to_float(images: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 images -> float32 in [0, 1] (the first block's BatchNorm normalises further)."""
    return images.to(device=device, non_blocking=True).float().div_(255.0)
