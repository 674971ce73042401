"""Swap grid of a content/style model beside the true renderings of the swapped factors.

Each panel is an (n+1) × (n+1) mosaic: the first column holds the content sources (one per row),
the first row the style sources (one per column), and cell (i, j) the image with the content of
row i and the style of column j: the model's swap in the first panel, the true rendering (content
factors from the row's image, the others from the column's) in the next ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from untwine.metrics.swap import swap_target_factors
from untwine.viz.figures import save, subplots
from untwine.viz.traversal import mosaic


def _panel(corner: np.ndarray, rows: np.ndarray, cols: np.ndarray, body: np.ndarray) -> np.ndarray:
    """(n+1, n+1, C, H, W): sources along the first row and column, ``body`` (n, n, ...) inside."""
    n = len(rows)
    grid = np.empty((n + 1, n + 1, *rows.shape[1:]), dtype=np.float32)
    grid[0, 0] = corner
    grid[0, 1:], grid[1:, 0], grid[1:, 1:] = cols, rows, body
    return grid


@torch.no_grad()
def swap_grid(
    dataset: Any,
    content: Any,
    style: Any,
    combine: Any,
    out: str | Path,
    truths: dict[str, list[int]],
    n: int = 6,
    seed: int = 0,
    title: str = "",
) -> Path:
    """Write the PNG; ``truths`` maps a panel label to the factor columns taken from the row."""
    rng = np.random.RandomState(seed)
    fa, fb = dataset.sample_factors(n, rng), dataset.sample_factors(n, rng)
    xa, xb = dataset.images(fa), dataset.images(fb)
    ca, sb = content(xa), style(xb)
    rows_c = ca.repeat_interleave(n, 0)
    cols_s = sb.repeat(n, *[1] * (sb.dim() - 1))
    swapped = combine(rows_c, cols_s).cpu().numpy().reshape(n, n, *xa.shape[1:])
    corner = np.full(xa.shape[1:], 0.5, dtype=np.float32)
    a, b = xa.numpy(), xb.numpy()
    panels = {"model swap": _panel(corner, a, b, swapped)}
    pair_a, pair_b = np.repeat(fa, n, axis=0), np.tile(fb, (n, 1))
    for label, cols in truths.items():
        truth = dataset.images_numpy(swap_target_factors(pair_a, pair_b, cols))
        panels[f"true rendering ({label})"] = _panel(corner, a, b, truth.reshape(swapped.shape))
    fig, axes = subplots(1, len(panels), figsize=(3.4 * len(panels), 3.8), squeeze=False)
    for ax, (label, grid) in zip(axes[0], panels.items(), strict=True):
        image = mosaic(grid)
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
        ax.set_title(label, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("content source (rows)", fontsize=7)
    axes[0, 0].set_xlabel("style source (columns)", fontsize=7)
    fig.suptitle(title or f"{dataset.name}: content of the row, style of the column", fontsize=9)
    return save(fig, out)
