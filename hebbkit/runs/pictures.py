"""Filters as pictures, drawn one way for the run folder's ``filters.png`` and the report.

One convention everywhere (:data:`FILTER_CONVENTION`): each filter is scaled by its own
largest |w|, so 0 is mid-grey, +max white and −max black. Signs stay visible (ZerO's one-hot
and Hadamard filters read as they are built) and an all-zero filter stays grey. Filters with
three input channels are drawn in colour on the same scale; any other number of channels is
shown as the channel mean. :func:`save_figure` saves every hebbkit picture with a tight
bounding box, so no title or label is cut.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from hebbkit.engine.diagnostics import distinct_rows

FILTER_CONVENTION = "each filter scaled to its own max |w|: grey = 0, white = +max, black = −max"


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (files only, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure: Any, path: Path, dpi: int = 120) -> Path:
    """Save with a tight bounding box (nothing cut, little margin) and close the figure."""
    figure.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.05)
    pyplot().close(figure)
    return path


def filter_image(weight: torch.Tensor, max_filters: int = 64, columns: int = 8) -> Any:
    """The first ``max_filters`` filters of a conv weight ``(c_out, c_in, k, k)`` tiled into
    one ``(H, W, 3)`` numpy image in [0, 1] by :func:`torchvision.utils.make_grid`, in the
    :data:`FILTER_CONVENTION`; a white pixel between filters."""
    from torchvision.utils import make_grid

    filters = weight.detach().float().cpu()[:max_filters]
    if filters.dim() == 2:  # a linear layer's (out, in): each row as one line of pixels
        filters = filters[:, None, None, :]
    if filters.shape[1] != 3:
        filters = filters.mean(dim=1, keepdim=True)
    scale = filters.flatten(1).abs().amax(dim=1).clamp_min(1e-30).view(-1, 1, 1, 1)
    shown = 0.5 + 0.5 * filters / scale
    grid = make_grid(shown, nrow=min(columns, len(shown)), padding=1, pad_value=1.0)
    return grid.permute(1, 2, 0).clamp(0, 1).numpy()


def draw_filters(axis: Any, weight: torch.Tensor, max_filters: int = 64, columns: int = 8) -> None:
    """``weight``'s filters on ``axis``, with how many are distinct (of all) below them."""
    axis.imshow(filter_image(weight, max_filters, columns), interpolation="nearest")
    axis.set_xticks([])
    axis.set_yticks([])
    count = weight.shape[0]
    shown = f", first {max_filters} shown" if count > max_filters else ""
    distinct = distinct_rows(weight.detach().flatten(1))
    axis.set_xlabel(f"{distinct}/{count} distinct{shown}", fontsize=8)


def save_filter_pictures(
    initial: torch.Tensor, learned: torch.Tensor, path: Path, max_filters: int = 64
) -> Path:
    """``filters.png``: a layer's filters at initialisation and after learning, side by side."""
    plt = pyplot()
    columns = min(8, initial.shape[0])
    rows = math.ceil(min(max_filters, initial.shape[0]) / columns)
    figure, axes = plt.subplots(
        1, 2, figsize=(2 * (0.3 * columns + 0.6), 0.3 * rows + 1.2), squeeze=False
    )
    for axis, (title, weight) in zip(
        axes[0], (("initial", initial), ("learned", learned)), strict=True
    ):
        draw_filters(axis, weight, max_filters, columns)
        axis.set_title(title, fontsize=9)
    figure.suptitle(f"first-layer filters {tuple(initial.shape)}\n{FILTER_CONVENTION}", fontsize=8)
    return save_figure(figure, path)
