"""Latent traversals and reconstructions of a trained model, as PNG grids.

Traversal: one row per latent, most informative first (sorted by mean KL to the prior, high to
low); each row decodes a base code with that one latent set to each of ``values``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from untwine.viz.figures import save, subplots

VALUES = tuple(np.linspace(-2.5, 2.5, 9).round(3))


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def traversal_images(
    model: Any, dataset: Any, values: tuple[float, ...] = VALUES, seed: int = 0, num_kl: int = 512
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images (D, V, C, H, W) in [0, 1], latent order (D,), mean KL per latent (D,)).

    The KL is averaged over ``num_kl`` random images; the base code is the encoder mean of the
    first of them; row i traverses latent ``order[i]`` over ``values`` (absolute code values).
    """
    rng = np.random.RandomState(seed)
    x = dataset.images(dataset.sample_factors(num_kl, rng)).to(_device(model))
    kl = model.kl_per_latent(x).cpu().numpy()
    order = np.argsort(-kl, kind="stable")
    base = model.represent(x[:1])
    d, v = base.shape[1], len(values)
    z = base.repeat(d * v, 1)
    grid = torch.as_tensor(values, dtype=z.dtype, device=z.device)
    for row, latent in enumerate(order):
        z[row * v : (row + 1) * v, latent] = grid
    images = model.decode_images(z).cpu().numpy()
    return images.reshape(d, v, *images.shape[1:]), order, kl


def mosaic(images: np.ndarray, pad: int = 1) -> np.ndarray:
    """(R, V, C, H, W) -> one (R·(H+pad)+pad, V·(W+pad)+pad, C) image with grey grid lines."""
    r, v, c, h, w = images.shape
    out = np.full((r * (h + pad) + pad, v * (w + pad) + pad, c), 0.5, dtype=np.float32)
    for i in range(r):
        for j in range(v):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            out[y : y + h, x : x + w] = images[i, j].transpose(1, 2, 0)
    return out


def _save(grid: np.ndarray, out: str | Path, rows: list[str], cols: list[str], title: str) -> Path:
    height, width = grid.shape[:2]
    scale = 1.6 / 66
    fig, ax = subplots(figsize=(width * scale + 1.6, height * scale + 0.8))
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1)
    ax.set_yticks((np.arange(len(rows)) + 0.5) * height / len(rows), rows, fontsize=7)
    ax.set_xticks((np.arange(len(cols)) + 0.5) * width / len(cols), cols, fontsize=7)
    ax.tick_params(length=0)
    ax.set_title(title, fontsize=9)
    return save(fig, out)


def row_labels(order: np.ndarray, kl: np.ndarray, active: np.ndarray | None) -> list[str]:
    """One label per traversal row: latent, its KL, and "inactive" where the model's
    ``active_latents()`` mask (None: all active) says it carries no factor."""
    return [
        f"z{d}  KL {kl[d]:.2f}" + ("  inactive" if active is not None and not active[d] else "")
        for d in order
    ]


def traversal_grid(
    model: Any, dataset: Any, out: str | Path, values: tuple[float, ...] = VALUES, seed: int = 0
) -> Path:
    """Write the traversal PNG: rows = latents by KL (descending), columns = ``values``."""
    images, order, kl = traversal_images(model, dataset, values, seed)
    active = model.active_latents() if hasattr(model, "active_latents") else None
    rows = row_labels(order, kl, None if active is None else active.cpu().numpy())
    cols = [f"{v:+.2g}" for v in values]
    return _save(mosaic(images), out, rows, cols, f"{dataset.name}: latent traversals")


@torch.no_grad()
def reconstruction_grid(
    model: Any, dataset: Any, out: str | Path, num: int = 10, seed: int = 0
) -> Path:
    """Write a two-row PNG: random inputs above, the model's reconstructions below."""
    x = dataset.images(dataset.sample_factors(num, np.random.RandomState(seed)))
    recon = model.reconstruct(x.to(_device(model))).cpu()
    images = torch.stack([x, recon]).numpy()
    return _save(
        mosaic(images),
        out,
        ["input", "reconstruction"],
        [""] * num,
        f"{dataset.name}: reconstructions",
    )
