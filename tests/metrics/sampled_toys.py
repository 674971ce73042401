"""Small twin-like datasets and deterministic representations for the sampled-metric tests."""

from __future__ import annotations

import numpy as np

from untwine.data.base import GridDataset
from untwine.data.factors import FactorSpace


def pixel_dataset(sizes=(3, 4, 5, 6)) -> GridDataset:
    """A grid whose 1 × 1 × K image holds each factor as one pixel, (class + 0.5) / size."""
    space = FactorSpace.from_sizes([f"f{k}" for k in range(len(sizes))], sizes)
    scale = np.asarray(sizes, dtype=np.float32)

    def render(factors: np.ndarray) -> np.ndarray:
        return ((factors.astype(np.float32) + 0.5) / scale)[:, None, None, :]

    return GridDataset("pixels", space, (1, 1, len(sizes)), render)


def linear_represent(num_factors: int, dim: int, seed: int = 0, noise: float = 0.1):
    """A fixed random linear map plus a deterministic per-image wiggle, float32 (n, dim).

    Only element-wise operations, so a row's code never depends on the rest of its batch.
    """
    rs = np.random.RandomState(seed)
    weights = rs.randn(num_factors, dim).astype(np.float32)
    phases = rs.randn(num_factors, dim).astype(np.float32)

    def represent(images) -> np.ndarray:
        x = np.asarray(images).reshape(len(images), -1)
        z = np.zeros((len(x), dim), dtype=np.float32)
        wiggle = np.zeros((len(x), dim), dtype=np.float32)
        for k in range(num_factors):
            z += x[:, k : k + 1] * weights[k]
            wiggle += x[:, k : k + 1] * phases[k]
        return z + np.float32(noise) * np.sin(np.float32(50.0) * wiggle)

    return represent


def identity_represent(images) -> np.ndarray:
    """Codes = the factor pixels themselves."""
    return np.asarray(images).reshape(len(images), -1).astype(np.float64)


def random_table_represent(dataset: GridDataset, dim: int, seed: int = 0):
    """Codes drawn at random per grid point: they carry no factor structure."""
    table = np.random.RandomState(seed).randn(len(dataset), dim)
    sizes = np.asarray(dataset.factor_sizes)

    def represent(images) -> np.ndarray:
        x = np.asarray(images).reshape(len(images), -1)
        factors = np.rint(x * sizes - 0.5).astype(np.int64)
        return table[np.ravel_multi_index(tuple(factors.T), tuple(sizes))]

    return represent
