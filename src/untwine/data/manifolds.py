"""Isometric image manifolds with independent uniform latents, and a non-isometric control.

Images are one grey Gaussian blob. Each latent moves one blob parameter (x, y position, width)
along a numerically computed arc-length table, so ‖∂x/∂z_k‖ is the same for every k and every z
and the columns of the Jacobian are orthogonal (JᵀJ ≈ c·I): the image manifold is locally
isometric to the latent box (Horan et al. 2021, the setting of Hessian LLE + ICA). The control
``blob2dwarped`` is ``blob2d`` with x position = z₁³, which breaks the isometry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from untwine.data.base import GridDataset
from untwine.data.factors import FactorSpace
from untwine.data.registry import register_twin
from untwine.errors import UntwineError

ParamRender = Callable[[np.ndarray], np.ndarray]
"""Render parameters (n, K) -> float32 images (n, C, H, W)."""

_TABLE_STEPS = 1024


def render_blobs(
    centre_x: np.ndarray, centre_y: np.ndarray, width: np.ndarray, size: int
) -> np.ndarray:
    """Grey images (n, 1, size, size) of unit-height Gaussian blobs; separable, so O(n·size²)."""
    grid = np.arange(size, dtype=np.float64)
    w = np.asarray(width, dtype=np.float64)[:, None]
    gx = np.exp(-0.5 * ((grid[None] - np.asarray(centre_x, np.float64)[:, None]) / w) ** 2)
    gy = np.exp(-0.5 * ((grid[None] - np.asarray(centre_y, np.float64)[:, None]) / w) ** 2)
    return (gy[:, :, None] * gx[:, None, :])[:, None].astype(np.float32)


def _arc_length_table(
    render: ParamRender,
    base: np.ndarray,
    k: int,
    lo: float,
    hi: float,
    steps: int = _TABLE_STEPS,
    eps: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Parameter k on a grid of ``steps`` in [lo, hi] and the image-space arc length to each.

    Speed ‖∂x/∂p_k‖ is measured by central differences of half-width ``eps`` (default
    (hi − lo)·1e-3) at ``base`` (the other parameters fixed). Renderers with hard, supersampled
    edges need eps about half the grid spacing, so the difference spans many subpixel samples.
    """
    p = np.linspace(lo, hi, steps)
    eps = (hi - lo) * 1e-3 if eps is None else eps
    params = np.repeat(base[None], steps, axis=0)
    up, down = params.copy(), params.copy()
    up[:, k], down[:, k] = p + eps, p - eps
    diff = (render(up).astype(np.float64) - render(down).astype(np.float64)) / (2 * eps)
    speed = np.sqrt((diff.reshape(steps, -1) ** 2).sum(axis=1))
    arc = np.concatenate([[0.0], np.cumsum(0.5 * (speed[1:] + speed[:-1]) * np.diff(p))])
    return p, arc


class ManifoldDataset(GridDataset):
    """A ``GridDataset`` over a continuous latent box, with exact rendering of continuous latents.

    ``factor_values`` are latent values on a grid of ``steps`` per factor (for the class-based
    metrics); ``sample_latents`` / ``render_latents`` give continuous uniform samples (for HLLE).
    ``latent_ranges[k]`` is the side of the box: latent k is uniform on [0, latent_ranges[k]].
    """

    def __init__(
        self,
        name: str,
        names: Sequence[str],
        latent_ranges: Sequence[float],
        to_params: Callable[[np.ndarray], np.ndarray],
        render_params: ParamRender,
        size: int,
        steps: int,
        info: dict[str, Any] | None = None,
        channels: int = 1,
    ) -> None:
        if steps < 2:
            raise UntwineError(f"{name}: steps must be >= 2 (grid points per factor); got {steps}")
        self.latent_ranges = np.asarray(latent_ranges, dtype=np.float64)
        self._to_params = to_params
        self._render_params = render_params
        values = [np.linspace(0.0, r, steps) for r in self.latent_ranges]
        space = FactorSpace.from_sizes(names, [steps] * len(names), values)
        super().__init__(name, space, (channels, size, size), self._render_classes, "twin", info)

    def _render_classes(self, factors: np.ndarray) -> np.ndarray:
        return self.render_latents(self.space.factor_values(factors))

    @property
    def latent_dim(self) -> int:
        return len(self.latent_ranges)

    def sample_latents(
        self, n: int, rng: np.random.RandomState | np.random.Generator
    ) -> np.ndarray:
        """n continuous latents (n, K), independent and uniform on [0, latent_ranges[k]]."""
        return rng.uniform(size=(n, self.latent_dim)) * self.latent_ranges[None]

    def render_latents(self, latents: np.ndarray) -> np.ndarray:
        """Continuous latents (n, K) -> float32 images (n, C, H, W) in [0, 1], exactly."""
        z = np.asarray(latents, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise UntwineError(f"{self.name}: latents must have shape (n, {self.latent_dim})")
        return self._render_params(self._to_params(z))


def latent_metric(dataset: ManifoldDataset, latents: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """The pulled-back metric JᵀJ (n, K, K) of the image map at ``latents``, by central differences.

    For an isometric manifold it is c·I with one c everywhere.
    """
    z = np.asarray(latents, dtype=np.float64)
    cols = []
    for k in range(z.shape[1]):
        step = np.zeros_like(z)
        step[:, k] = eps
        up = dataset.render_latents(z + step).astype(np.float64)
        down = dataset.render_latents(z - step).astype(np.float64)
        cols.append(((up - down) / (2 * eps)).reshape(len(z), -1))
    jac = np.stack(cols, axis=2)
    return np.einsum("npk,npl->nkl", jac, jac)


def isometric_manifold(
    name: str,
    names: Sequence[str],
    bounds: Sequence[tuple[float, float]],
    base: Sequence[float],
    render: ParamRender,
    image_shape: tuple[int, int, int],
    steps: int,
    warp: Callable[[np.ndarray], np.ndarray] | None = None,
    info: dict[str, Any] | None = None,
    table_steps: int = _TABLE_STEPS,
    table_eps: Sequence[float] | None = None,
) -> ManifoldDataset:
    """Manifold whose latent k moves render parameter k at constant image-space speed.

    ``render`` takes the first len(names) parameters (n, K). Each parameter gets an arc-length
    table at ``base`` (the others fixed); latent units make the first factor's arc length 1,
    so every latent's box side is its arc length relative to the first. ``warp`` (on [0, 1])
    is applied to latent 0 first (the non-isometric controls); ``table_eps`` are the per-factor
    difference half-widths of the tables (see ``_arc_length_table``). The map is exactly isometric
    only where each factor's speed does not depend on the others and their image-space
    directions are orthogonal; ``latent_metric`` measures how close a manifold comes.
    """
    start = np.asarray(base, dtype=np.float64)
    eps = [None] * len(bounds) if table_eps is None else list(table_eps)
    tables = [
        _arc_length_table(render, start, k, lo, hi, table_steps, eps[k])
        for k, (lo, hi) in enumerate(bounds)
    ]
    unit = tables[0][1][-1]
    ranges = [arc[-1] / unit for _, arc in tables]

    def to_params(z: np.ndarray) -> np.ndarray:
        z = z.copy()
        if warp is not None:
            z[:, 0] = warp(z[:, 0])
        return np.stack(
            [np.interp(z[:, k] * unit, arc, p) for k, (p, arc) in enumerate(tables)], axis=1
        )

    meta = {"bounds": [list(b) for b in bounds], "arc_length_unit": float(unit), **(info or {})}
    channels, size = image_shape[0], image_shape[1]
    return ManifoldDataset(name, names, ranges, to_params, render, size, steps, meta, channels)


def _isometric_blob(
    name: str,
    names: Sequence[str],
    bounds: Sequence[tuple[float, float]],
    base: Sequence[float],
    size: int,
    steps: int,
    warp: Callable[[np.ndarray], np.ndarray] | None = None,
    info: dict[str, Any] | None = None,
) -> ManifoldDataset:
    """Blob manifold (x, y, width) with the parameters after len(names) fixed at ``base``."""
    fixed = np.asarray(base, dtype=np.float64)

    def render(params: np.ndarray) -> np.ndarray:
        full = np.repeat(fixed[None], len(params), axis=0)
        full[:, : params.shape[1]] = params
        return render_blobs(full[:, 0], full[:, 1], full[:, 2], size)

    return isometric_manifold(
        name, names, bounds, fixed[: len(names)], render, (1, size, size), steps, warp, info
    )


def _position_bounds(size: int, width: float) -> tuple[float, float]:
    """Centre range that keeps a blob of this width 3σ inside the image."""
    margin = 3.0 * width
    if size - 1 - 2 * margin < 2:
        raise UntwineError(f"image size {size} too small for a blob of width {width}")
    return margin, size - 1 - margin


@register_twin("blob2d", official="procedural: Gaussian blob translated in x and y (isometric)")
def blob2d(size: int = 32, steps: int = 32, width: float = 2.5) -> ManifoldDataset:
    """A blob translated in x and y: a 2-D manifold locally isometric to the unit square."""
    lo, hi = _position_bounds(size, width)
    return _isometric_blob(
        "blob2d", ("x", "y"), [(lo, hi), (lo, hi)], [0.5 * (lo + hi)] * 2 + [width], size, steps
    )


@register_twin("blob3d", official="procedural: blob translated in x, y and widened (isometric)")
def blob3d(
    size: int = 32, steps: int = 32, widths: tuple[float, float] = (1.5, 3.5)
) -> ManifoldDataset:
    """Blob translated in x, y and changing width, all at one image-space speed (3-D isometric)."""
    lo, hi = _position_bounds(size, widths[1])
    mid = 0.5 * (lo + hi)
    return _isometric_blob(
        "blob3d",
        ("x", "y", "width"),
        [(lo, hi), (lo, hi), widths],
        [mid, mid, 0.5 * sum(widths)],
        size,
        steps,
    )


def _cube(z: np.ndarray) -> np.ndarray:
    return np.clip(z, 0.0, 1.0) ** 3


@register_twin("blob2dwarped", official="procedural: blob2d with x position = z³ (non-isometric)")
def blob2d_warped(size: int = 32, steps: int = 32, width: float = 2.5) -> ManifoldDataset:
    """Control: ``blob2d`` with x position = z₁³ (speed 3z₁²), so JᵀJ is not c·I."""
    lo, hi = _position_bounds(size, width)
    return _isometric_blob(
        "blob2dwarped",
        ("x", "y"),
        [(lo, hi), (lo, hi)],
        [0.5 * (lo + hi)] * 2 + [width],
        size,
        steps,
        warp=_cube,
        info={"warp": "x position = z1**3"},
    )
