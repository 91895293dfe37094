"""The inputs of the layer learning, kept for every image while a greedy Hebbian phase moves
from layer to layer, instead of running the frozen blocks in front of it again.

A layer's first epoch reads each image's row as the input of the layer before it (kept by
that layer's epochs), runs only that frozen block and writes the result back into the same
row, now the input of this layer; its later epochs read it as it is, and after the last layer
the features pass of the training images runs only the last block
(:func:`hebbkit.engine.training.extract_features`). For SoftHebb's 3-layer preset this skips
layer 1 in layer 3's epoch and layers 1-2 for the 60 000 training images in the features pass
(``python benchmarks/front_cache.py``), for one float32 row of the widest input per image
(4.5 GB for MNIST's 60 000 images).

The numbers are the same: the frozen blocks run in eval mode in both places, and a block's
output for an image does not depend on the other images of its batch (per-image products,
element-wise maps), which ``tests/test_front_cache.py`` checks bit for bit. Rows are read back
channels-last, as the maps between blocks are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from hebbkit.engine.network import HebbianNetwork


def input_shapes(
    network: HebbianNetwork, image_shape: Sequence[int]
) -> dict[int, tuple[int, int, int]]:
    """The ``(C, H, W)`` input of every layer but the first, for images of ``image_shape``."""
    shapes = {}
    for layer in range(1, len(network.layers)):
        c, h, w = network.feature_shape(image_shape, upto=layer)
        shapes[layer] = (c, h, w)
    return shapes


def row_width(shapes: dict[int, tuple[int, int, int]]) -> int:
    """Floats per image of a cache holding any of these inputs."""
    return max((math.prod(shape) for shape in shapes.values()), default=0)


@dataclass
class FrontCache:
    """One row per image, viewed as the input of layer ``k`` (``k ≥ 1``) by :meth:`rows`."""

    #: ``(images, widest input)`` float32
    storage: torch.Tensor
    #: layer -> the ``(C, H, W)`` of its input
    shapes: dict[int, tuple[int, int, int]]
    #: the layer whose inputs every row holds; None until a layer's epoch has written them
    layer: int | None = None

    @classmethod
    def allocate(
        cls, network: HebbianNetwork, image_shape: Sequence[int], count: int, device: torch.device
    ) -> FrontCache:
        """Rows for ``count`` images of ``image_shape``, wide enough for any layer's input."""
        return cls.for_shapes(input_shapes(network, image_shape), count, device)

    @classmethod
    def for_shapes(
        cls, shapes: dict[int, tuple[int, int, int]], count: int, device: torch.device
    ) -> FrontCache:
        """Rows for ``count`` images whose layers' inputs have these :func:`input_shapes`."""
        return cls(torch.empty(count, row_width(shapes), device=device), shapes)

    @property
    def filled(self) -> bool:
        return self.layer is not None

    @property
    def bytes(self) -> int:
        return self.storage.untyped_storage().nbytes()

    def rows(self, layer: int) -> torch.Tensor:
        """Every row as the input of ``layer``: an ``(images, C, H, W)`` view, its pixels'
        channels contiguous as in a channels-last map."""
        c, h, w = self.shapes[layer]
        return self.storage[:, : c * h * w].unflatten(1, (h, w, c)).permute(0, 3, 1, 2)

    def read(self, layer: int, index: torch.Tensor | slice) -> torch.Tensor:
        """The rows ``index`` as a channels-last batch of ``layer``'s inputs."""
        batch = self.rows(layer)[index]
        return batch.contiguous(memory_format=torch.channels_last)

    def write(self, layer: int, index: torch.Tensor, inputs: torch.Tensor) -> None:
        self.rows(layer)[index] = inputs

    def inputs(
        self,
        network: HebbianNetwork,
        layer: int,
        index: torch.Tensor,
        images: Callable[[], torch.Tensor],
    ) -> torch.Tensor:
        """The inputs of ``layer`` for the images ``index`` in its epoch: read where the rows
        hold them; else computed from the rows of an earlier layer, or from ``images()`` (the
        batch as the first block takes it), and written back."""
        index = index.to(self.storage.device)
        if self.layer == layer:
            return self.read(layer, index)
        if self.layer is not None and self.layer < layer:
            inputs = network(self.read(self.layer, index), upto=layer, start=self.layer)
        else:
            inputs = network(images(), upto=layer)
        self.write(layer, index, inputs)
        return inputs
