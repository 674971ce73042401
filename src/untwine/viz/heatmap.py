"""Latent × factor mutual-information heat map: which code dimension carries which factor.

MI is disentanglement_lib's: codes discretised into 20 equal-width bins per dimension, then the
discrete MI (nats) with each factor's classes, shown normalised by the factor's entropy (as MIG
normalises), so a cell of 1 means the latent determines that factor.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from untwine.metrics.utils import discrete_entropy, discrete_mutual_info, histogram_discretize
from untwine.viz.figures import save, subplots


def normalised_mi(codes: np.ndarray, factors: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """I(z_d; v_k) / H(v_k) for discretised codes (N, D) and factor classes (N, K): (D, K)."""
    mi = discrete_mutual_info(histogram_discretize(np.asarray(codes), num_bins), factors)
    entropy = discrete_entropy(np.asarray(factors))
    return np.divide(mi, entropy, out=np.zeros_like(mi), where=entropy > 0)


def mi_heatmap(
    codes: np.ndarray,
    factors: np.ndarray,
    out: str | Path,
    factor_names: tuple[str, ...] | None = None,
    title: str = "",
) -> Path:
    """Write the heat map of ``normalised_mi(codes, factors)`` to ``out`` (PNG)."""
    matrix = normalised_mi(codes, factors)
    d, k = matrix.shape
    names = factor_names or tuple(f"factor {j}" for j in range(k))
    fig, ax = subplots(figsize=(1.0 * k + 2.5, 0.42 * d + 1.6))
    image = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for i in range(d):
        for j in range(k):
            colour = "black" if matrix[i, j] > 0.6 else "white"
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7, color=colour)
    ax.set_xticks(range(k), names, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(d), [f"z{i}" for i in range(d)], fontsize=8)
    fig.colorbar(image, ax=ax, label="I(z; v) / H(v)")
    ax.set_title(title or "mutual information of each latent with each factor", fontsize=9)
    return save(fig, out)


def codes_for_random_factors(
    represent: Callable[[Any], Any], dataset: Any, num: int, seed: int = 0, batch: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """Codes (num, D) of ``num`` images with factors drawn uniformly, and those factors."""
    factors = dataset.sample_factors(num, np.random.RandomState(seed))
    codes = [
        np.asarray(represent(dataset.images(factors[i : i + batch]))) for i in range(0, num, batch)
    ]
    return np.concatenate(codes), factors


def mi_heatmap_for(
    represent: Callable[[Any], Any], dataset: Any, out: str | Path, num: int = 10_000, seed: int = 0
) -> Path:
    """The heat map of a representation on ``num`` random images of ``dataset``."""
    codes, factors = codes_for_random_factors(represent, dataset, num, seed)
    title = f"{dataset.name}: I(z_d; v_k) / H(v_k), {num} images"
    return mi_heatmap(codes, factors, out, tuple(dataset.factor_names), title)
