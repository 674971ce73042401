"""Pictures of diffusion models: a grid of samples, and DisDiff's factor-swap grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from untwine.viz.figures import save, subplots
from untwine.viz.traversal import mosaic


def _show(grid: np.ndarray, out: str | Path, title: str, rows=None, cols=None) -> Path:
    height, width = grid.shape[:2]
    scale = 1.6 / 66
    fig, ax = subplots(figsize=(width * scale + 1.6, height * scale + 0.8))
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    if rows:
        ax.set_yticks((np.arange(len(rows)) + 0.5) * height / len(rows), rows, fontsize=7)
    if cols:
        ax.set_xticks((np.arange(len(cols)) + 0.5) * width / len(cols), cols, fontsize=7)
    ax.tick_params(length=0)
    ax.set_title(title, fontsize=9)
    return save(fig, out)


def samples_grid(images: np.ndarray, out: str | Path, title: str, columns: int = 8) -> Path:
    """Write (n, C, H, W) images in [0, 1] as a grid ``columns`` wide."""
    images = np.clip(np.asarray(images, dtype=np.float32), 0, 1)
    n = len(images)
    rows = -(-n // columns)
    pad = np.full((rows * columns - n, *images.shape[1:]), 0.5, dtype=np.float32)
    grid = np.concatenate([images, pad]).reshape(rows, columns, *images.shape[1:])
    return _show(mosaic(grid), out, title)


def swap_grid(
    sources: np.ndarray,
    references: np.ndarray,
    reconstructions: np.ndarray,
    swaps: np.ndarray,
    out: str | Path,
    title: str,
) -> Path:
    """Rows = source images; columns: source, reference, source regenerated from its own codes,
    then one column per unit c: the source regenerated with z_c taken from the reference.

    sources/references/reconstructions: (R, C, H, W); swaps: (R, N, C, H, W), all in [0, 1].
    """
    cells = np.concatenate(
        [sources[:, None], references[:, None], reconstructions[:, None], swaps], axis=1
    )
    cols = ["source", "reference", "own z"] + [f"z{c} ← ref" for c in range(swaps.shape[1])]
    return _show(mosaic(np.clip(cells, 0, 1).astype(np.float32)), out, title, cols=cols)
