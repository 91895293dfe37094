"""What a dataset plugin returns: an :class:`ImageSet` of whole uint8 tensors.

:mod:`hebbkit.engine.splits` carves the training subset and the validation split a recipe
asks for; :class:`hebbkit.runs.run.Machine` decides where data lives and whether it may be
downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from hebbkit.errors import DataError


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
