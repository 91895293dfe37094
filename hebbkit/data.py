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

        ImageSet(images, labels, classes)

    - ``images``: ``torch.uint8`` of shape ``(N, C, H, W)`` (channels first, pixel values
      0-255; hebbkit scales them to [0, 1] itself). A grey-scale set has ``C = 1``.
    - ``labels``: shape ``(N,)``, any integer dtype (stored as ``int64``), each in
      ``0 .. len(classes) - 1``.
    - ``classes``: the class names, a list of strings; ``classes[k]`` names label ``k``
      (a tuple is accepted and stored as a list).

    Anything else raises :class:`~hebbkit.errors.DataError` naming what is wrong.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]

    def __post_init__(self) -> None:
        if (
            not isinstance(self.images, torch.Tensor)
            or self.images.dtype != torch.uint8
            or self.images.dim() != 4
        ):
            got = (
                f"dtype {self.images.dtype} and shape {tuple(self.images.shape)}"
                if isinstance(self.images, torch.Tensor)
                else type(self.images).__name__
            )
            raise DataError(
                f"A dataset returned images of {got}; expected a uint8 tensor (N, C, H, W)."
            )
        if not isinstance(self.labels, torch.Tensor) or self.labels.shape != (
            self.images.shape[0],
        ):
            count = self.labels.shape[0] if isinstance(self.labels, torch.Tensor) else "no"
            raise DataError(
                f"A dataset returned {count} labels for {self.images.shape[0]} images; "
                "expected a tensor (N,)."
            )
        if (
            self.labels.is_floating_point()
            or self.labels.is_complex()
            or self.labels.dtype == torch.bool
        ):
            raise DataError(
                f"A dataset returned labels of dtype {self.labels.dtype}; expected integers "
                "(class indices)."
            )
        if isinstance(self.classes, str) or not isinstance(self.classes, Sequence):
            raise DataError(
                f"A dataset returned classes = {self.classes!r}; expected a list of class names."
            )
        self.classes = [str(name) for name in self.classes]
        if not self.classes:
            raise DataError("A dataset returned no class names; give one per label value.")
        self.labels = self.labels.long()
        if len(self.labels) and (
            int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.classes)
        ):
            raise DataError(
                f"A dataset returned labels from {int(self.labels.min())} to "
                f"{int(self.labels.max())} but {len(self.classes)} class names; labels must be "
                f"0 .. {len(self.classes) - 1}."
            )

    def __len__(self) -> int:
        return self.images.shape[0]

    def select(self, indices: torch.Tensor) -> ImageSet:
        return ImageSet(self.images[indices], self.labels[indices], self.classes)


class DatasetSource(Protocol):
    """What a ``dataset`` component builds.

    ``load(root, train=True)`` returns the training split, ``train=False`` the test split.
    Look for files under ``root`` (the ``--data-root``) and fetch them only when ``download``
    is true; otherwise raise :class:`~hebbkit.errors.DataError` naming the missing files
    (:func:`missing_data_message`). A dataset that ships inside its package ignores both.

    Optional attributes: ``channels`` (int), so hebbkit can build a network without loading
    the data (``hebbkit inspect``); ``unlabeled(root, *, download) -> uint8 (M, C, H, W) |
    None``, extra images for the Hebbian phase only (STL-10's unlabelled split).
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
