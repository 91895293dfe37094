"""The data a run trains and tests on: the recipe's dataset, its subsets and validation split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from hebbkit.config.recipe import DataConfig
from hebbkit.data import ImageSet
from hebbkit.errors import DataError
from hebbkit.registry import Registry

#: The validation split does not depend on the run's seed, so every seed sees the same one.
SPLIT_SEED = 20240501


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


def load_splits(
    data_config: DataConfig,
    registry: Registry,
    root: Path,
    *,
    download: bool,
) -> DataSplits:
    """Load the recipe's dataset and carve subsets and the validation split."""
    spec = data_config.dataset
    component = registry.get("dataset", spec.name)
    source = component.build(spec)
    if not root.exists() and not download:
        raise DataError(
            f"Data root {root} does not exist. Pass --data-root DIR or set HEBBKIT_DATA=DIR to "
            "the folder that holds the datasets (e.g. DIR/MNIST/raw/*-ubyte.gz)."
        )
    with component.call(f"failed to read the dataset {spec.name!r} from {root}"):
        train = source.load(root, train=True, download=download)
        test = source.load(root, train=False, download=download)
        unlabeled = getattr(source, "unlabeled", None)
        extra = unlabeled(root, download=download) if callable(unlabeled) else None
    check_compatible(spec.name, train, test, extra)
    return split(train, test, data_config, extra)


def check_compatible(
    name: str, train: ImageSet, test: ImageSet, unlabeled: torch.Tensor | None
) -> None:
    """The sets of one dataset must share image shape and classes, or the read-out trained
    on one cannot be tested on the other."""
    for other, what in ((test, "test set"), (unlabeled, "unlabelled images")):
        if other is None:
            continue
        images = other.images if isinstance(other, ImageSet) else other
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
            raise DataError(f"Dataset {name!r}: its {what} are not a uint8 tensor.")
        if tuple(images.shape[1:]) != tuple(train.images.shape[1:]):
            raise DataError(
                f"Dataset {name!r}: the training images ({train.source or 'training set'}) are "
                f"{tuple(train.images.shape[1:])} but the {what} "
                f"({getattr(other, 'source', '') or what}) are {tuple(images.shape[1:])}."
            )
    if test.classes != train.classes:
        raise DataError(
            f"Dataset {name!r}: the training and test sets name different classes "
            f"({len(train.classes)} and {len(test.classes)})."
        )


def split(
    train: ImageSet, test: ImageSet, data_config: DataConfig, unlabeled: torch.Tensor | None = None
) -> DataSplits:
    held_out = validation_size(data_config.validation, len(train))
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(SPLIT_SEED))
    validation = train.select(order[:held_out].sort().values) if held_out else None
    rest = order[held_out:]
    subset = data_config.train_subset
    if subset is not None:
        if subset > len(rest):
            raise DataError(
                f"data.train_subset = {subset} but only {len(rest)} training images are left "
                "after the validation split."
            )
        rest = rest[:subset]
    train = train.select(rest.sort().values)
    test_subset = data_config.test_subset
    if test_subset is not None and test_subset < len(test):
        test_order = torch.randperm(len(test), generator=torch.Generator().manual_seed(SPLIT_SEED))
        test = test.select(test_order[:test_subset].sort().values)
    return DataSplits(train=train, validation=validation, test=test, unlabeled=unlabeled)


def validation_size(value: float, total: int) -> int:
    """Images in the validation split: a fraction of ``total``, or a whole count (the recipe
    model refuses other values)."""
    if value <= 0:
        return 0
    size = int(round(value * total)) if value < 1 else int(value)
    if size >= total:
        raise DataError(
            f"data.validation = {value} leaves no training images (the set has {total})."
        )
    return size
