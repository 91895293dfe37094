"""The run folder's picture: first-layer filters as one image grid."""

from __future__ import annotations

from pathlib import Path

import torch


def filter_montage(weight: torch.Tensor, max_filters: int = 256, columns: int = 16) -> torch.Tensor:
    """Filters tiled into one ``(H, W, C)`` image in [0, 1], each scaled to its own range."""
    filters = weight.detach().float().cpu()[:max_filters]
    count, channels, height, width = filters.shape
    if channels not in (1, 3):
        filters = filters.mean(dim=1, keepdim=True)
        channels = 1
    low = filters.flatten(1).min(1).values.view(-1, 1, 1, 1)
    high = filters.flatten(1).max(1).values.view(-1, 1, 1, 1)
    filters = (filters - low) / (high - low).clamp_min(1e-12)
    columns = min(columns, count)
    rows = (count + columns - 1) // columns
    pad = 1  # a white line between filters
    canvas = torch.ones(channels, rows * (height + pad) + pad, columns * (width + pad) + pad)
    for index in range(count):  # at most max_filters small copies
        row, column = divmod(index, columns)
        top, left = pad + row * (height + pad), pad + column * (width + pad)
        canvas[:, top : top + height, left : left + width] = filters[index]
    return canvas.permute(1, 2, 0)


def save_filter_grid(weight: torch.Tensor, path: Path, max_filters: int = 256) -> None:
    """First-layer receptive fields as an image grid (one image, not one axis per filter)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    montage = filter_montage(weight, max_filters).numpy()
    count = min(max_filters, weight.shape[0])
    height, width = montage.shape[:2]
    scale = max(0.02, min(0.08, 12 / max(height, width)))
    figure, axis = plt.subplots(figsize=(max(3.0, width * scale), max(2.0, height * scale + 0.4)))
    axis.imshow(
        montage.squeeze(-1) if montage.shape[-1] == 1 else montage,
        cmap="gray",
        vmin=0,
        vmax=1,
        interpolation="nearest",
    )
    axis.axis("off")
    axis.set_title(
        f"first-layer filters ({count} of {weight.shape[0]}, {tuple(weight.shape[1:])})", fontsize=9
    )
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)
