"""Checks on the PNG files hebbkit writes: read back as pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

PNG = b"\x89PNG\r\n\x1a\n"


def pixels(path: Path) -> np.ndarray:
    """The picture as an (H, W, 3) array of floats in [0, 1]."""
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == PNG, path
    return imread(path)[..., :3]


def assert_tight(path: Path, margin: int = 12) -> None:
    """Saved with a tight bounding box: nothing is cut at any edge (the outermost pixels are
    all background), and something is drawn within ``margin`` pixels of every edge (no wide
    empty border)."""
    image = pixels(path)
    drawn = (image < 0.9).any(axis=2)  # not white
    height, width = drawn.shape
    edges = {"top": drawn[0], "bottom": drawn[-1], "left": drawn[:, 0], "right": drawn[:, -1]}
    for name, edge in edges.items():
        assert not edge.any(), f"{path.name}: something is cut at the {name} edge"
    rows, columns = np.nonzero(drawn)
    assert rows.size, f"{path.name} is blank"
    gaps = {
        "top": rows.min(),
        "bottom": height - 1 - rows.max(),
        "left": columns.min(),
        "right": width - 1 - columns.max(),
    }
    for name, gap in gaps.items():
        assert gap <= margin, f"{path.name}: {gap} empty pixels at the {name} (not tight)"
