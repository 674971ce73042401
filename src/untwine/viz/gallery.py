"""Dataset gallery: one row per factor, that factor swept over its values, the others fixed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from untwine.data.base import GridDataset
from untwine.viz.figures import save, subplots


def factor_sweeps(
    dataset: GridDataset, max_columns: int = 10, seed: int = 0
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """For each factor: (name, classes shown, images (m, C, H, W)) with the other factors fixed."""
    rng = np.random.RandomState(seed)
    base = dataset.sample_factors(1, rng)[0]
    rows = []
    for k, (name, size) in enumerate(zip(dataset.factor_names, dataset.factor_sizes, strict=False)):
        classes = np.unique(np.linspace(0, size - 1, min(size, max_columns)).round().astype(int))
        factors = np.repeat(base[None], len(classes), axis=0)
        factors[:, k] = classes
        rows.append((name, classes, dataset.images_numpy(factors)))
    return rows


def factor_gallery(
    dataset: GridDataset, out: str | Path, max_columns: int = 10, seed: int = 0
) -> Path:
    """Write the gallery PNG to ``out`` and return its path."""
    rows = factor_sweeps(dataset, max_columns, seed)
    ncols = max(len(r[1]) for r in rows)
    fig, axes = subplots(
        len(rows), ncols, figsize=(1.1 * ncols + 1.2, 1.1 * len(rows)), squeeze=False
    )
    for i, (name, classes, images) in enumerate(rows):
        values = dataset.factor_values[i]
        for j in range(ncols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(classes):
                ax.axis("off")
                continue
            img = images[j].transpose(1, 2, 0)
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{values[classes[j]]:.3g}", fontsize=6)
            if j == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.suptitle(f"{dataset.name} ({dataset.source}): one factor per row", fontsize=9)
    return save(fig, out)
