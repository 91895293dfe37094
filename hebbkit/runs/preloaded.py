"""Datasets read once and handed to runs that cannot read them themselves.

A Ray driver reads the data a search or a grid needs and ships it through Ray's object store,
so that the nodes running the trials need no copy on their disks. A run then takes its
splits from :class:`PreloadedData` (``Machine.preloaded``) instead of the data root; the
splits are carved exactly as :func:`hebbkit.engine.splits.load_splits` carves them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hebbkit.config.recipe import DataConfig
from hebbkit.engine.splits import DataSplits, load_splits, split
from hebbkit.registry import Registry


def data_key(data: DataConfig) -> str:
    """The data section as canonical JSON: equal keys give identical splits."""
    return json.dumps(data.model_dump(mode="json"), sort_keys=True)


def dataset_key(data: DataConfig) -> str:
    """The dataset alone (name and parameters), whatever the subsets and validation split."""
    return json.dumps(data.model_dump(mode="json")["dataset"], sort_keys=True)


def whole(data: DataConfig) -> DataConfig:
    """The same dataset with no subset and no validation split: every image, in file order."""
    return data.model_copy(update={"train_subset": None, "test_subset": None, "validation": 0.0})


@dataclass(frozen=True)
class PreloadedData:
    """The splits of one data section, or (``complete``) a whole dataset to carve from."""

    key: str
    splits: DataSplits
    #: the whole dataset: any subset or validation split of it can be carved here
    complete: bool = False

    def splits_for(self, data: DataConfig) -> DataSplits | None:
        """The splits of ``data`` if they can be had from here, else None."""
        if not self.complete:
            return self.splits if data_key(data) == self.key else None
        if dataset_key(data) != self.key:
            return None
        whole_sets = self.splits
        return split(whole_sets.train, whole_sets.test, data, whole_sets.unlabeled)

    @property
    def nbytes(self) -> int:
        sets = [self.splits.train, self.splits.test, self.splits.validation]
        tensors = [t for s in sets if s is not None for t in (s.images, s.labels)]
        if self.splits.unlabeled is not None:
            tensors.append(self.splits.unlabeled)
        return sum(t.numel() * t.element_size() for t in tensors)


def preload(
    sections: Iterable[DataConfig],
    registry: Registry,
    root: Path,
    *,
    download: bool,
    complete: bool = False,
) -> tuple[PreloadedData, ...]:
    """Read what runs of these data sections need, once.

    One data section (the common case: a search that does not search the data) is loaded
    as its runs will use it, subsets applied; several, or any with ``complete`` (runs may
    ask for sections not listed), are served from whole datasets, one per dataset.
    """
    distinct = {data_key(data): data for data in sections}
    if len(distinct) == 1 and not complete:
        key, data = next(iter(distinct.items()))
        return (PreloadedData(key, load_splits(data, registry, root, download=download)),)
    datasets = {dataset_key(data): whole(data) for data in distinct.values()}
    return tuple(
        PreloadedData(key, load_splits(data, registry, root, download=download), complete=True)
        for key, data in datasets.items()
    )
