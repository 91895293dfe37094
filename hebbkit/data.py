"""What a dataset plugin returns: an :class:`ImageSet` of whole uint8 tensors.

:mod:`hebbkit.engine.splits` carves the training subset and the validation split a recipe
asks for; :class:`hebbkit.runs.run.Machine` decides where data lives and whether it may be
downloaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from hebbkit.errors import DataError


@dataclass
class ImageSet:
    """One split of a labelled image dataset, whole, in memory::

        ImageSet(images, labels, classes, source="")

    - ``images``: ``torch.uint8`` of shape ``(N, C, H, W)``, N ≥ 1 (channels first, pixel
      values 0-255; hebbkit scales them to [0, 1] itself). A grey-scale set has ``C = 1``.
    - ``labels``: shape ``(N,)``, any integer dtype (stored as ``int64``), each in
      ``0 .. len(classes) - 1``.
    - ``classes``: the class names, a list of strings; ``classes[k]`` names label ``k``
      (a tuple is accepted and stored as a list).
    - ``source`` (optional): the files read, named in every message about the set.

    Checked when made, that is when a dataset is read, so that a broken file is named before
    any training; anything else raises :class:`~hebbkit.errors.DataError` naming what is wrong.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    source: str = ""

    def __post_init__(self) -> None:
        where = self.source or "A dataset"
        said = "holds" if self.source else "returned"
        images, labels = self.images, self.labels
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
            got = (
                f"dtype {images.dtype} and shape {tuple(images.shape)}"
                if isinstance(images, torch.Tensor)
                else type(images).__name__
            )
            raise DataError(
                f"{where} {said} images of {got}; expected a uint8 tensor (N, C, H, W)."
            )
        if images.shape[0] == 0:
            raise DataError(f"{where} {said} no images: a set to train or test on needs some.")
        if min(images.shape[1:]) == 0:
            raise DataError(f"{where} {said} images of shape {tuple(images.shape[1:])}.")
        if not isinstance(labels, torch.Tensor) or labels.shape != (images.shape[0],):
            count = labels.shape[0] if isinstance(labels, torch.Tensor) and labels.dim() else "no"
            raise DataError(
                f"{where} {said} {count} labels for {images.shape[0]} images; expected a tensor "
                "(N,)."
            )
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise DataError(
                f"{where} {said} labels of dtype {labels.dtype}; expected integers (class indices)."
            )
        if isinstance(self.classes, str) or not isinstance(self.classes, Sequence):
            raise DataError(
                f"{where} {said} classes = {self.classes!r}; expected a list of class names."
            )
        self.classes = [str(name) for name in self.classes]
        if not self.classes:
            raise DataError(f"{where} {said} no class names; give one per label value.")
        self.labels = labels.long()
        low, high = int(self.labels.min()), int(self.labels.max())
        if low < 0 or high >= len(self.classes):
            outside = (self.labels < 0) | (self.labels >= len(self.classes))
            raise DataError(
                f"{where} {said} labels from {low} to {high} but {len(self.classes)} class "
                f"names: {int(outside.sum())} labels are outside 0 .. {len(self.classes) - 1} "
                f"(e.g. {int(self.labels[outside][0])})."
                + (" The file is corrupt or belongs to another dataset." if self.source else "")
            )

    def __len__(self) -> int:
        return self.images.shape[0]

    def select(self, indices: torch.Tensor) -> ImageSet:
        return ImageSet(self.images[indices], self.labels[indices], self.classes, self.source)


class DatasetSource(Protocol):
    """What a ``dataset`` component builds.

    ``load(root, train=True)`` returns the training split, ``train=False`` the test split.
    Look for files under ``root`` (the ``--data-root``) and fetch them only when ``download``
    is true; otherwise raise :class:`~hebbkit.errors.DataError` naming the missing files
    (:func:`missing_data_message`). A dataset that ships inside its package ignores both.

    Optional attributes: ``channels`` (int), ``image_shape`` (``(C, H, W)``) and ``sizes``
    (``{"train": N, "test": M}``, plus ``"unlabeled"``), so hebbkit can check a recipe's
    shapes and memory and build its network without reading a file (``hebbkit inspect``,
    the checks before a grid or search starts; without them the checks run once the data is
    read); ``unlabeled(root, *, download) -> uint8 (M, C, H, W) | None``, extra images for
    the Hebbian phase only (STL-10's unlabelled split).
    """

    def load(self, root: Path, *, train: bool, download: bool) -> ImageSet: ...


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


def to_float(images: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 images -> float32 in [0, 1] (the first block's BatchNorm normalises further)."""
    return images.to(device=device, non_blocking=True).float().div_(255.0)
