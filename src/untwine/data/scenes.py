"""Realistic image manifolds for the spectral method: the shapes3d room, ray-cast continuously.

The shapes3d twin's scene (floor, back wall, a cube, Lambert shading, a soft shadow from a disc
light), rendered by its ray-caster for *continuous* factors instead of a pre-rendered grid:

- ``camera_azimuth``: the camera orbits the cube (degrees), as the twin's orientation;
- ``light_azimuth``: the light circles the vertical axis at a fixed elevation (degrees), which
  turns the faces' shading and swings the shadow across the floor;
- ``object_hue``: the cube's colour on a cosine palette rgb(h) = a + b·cos(2π(h − (0, ⅓, ⅔))),
  whose norm ‖rgb‖ and speed ‖d rgb/dh‖ are constant, so a hue change is orthogonal, pixel by
  pixel, to any change of brightness.

Each factor is reparametrised by image-space arc length (``manifolds.isometric_manifold``), so
the latents, independent and uniform, map to images at nearly one speed in every direction:
``latent_metric`` gives JᵀJ/c within a few per cent of I (measured in the tests). The control
``scenewarped`` cubes the camera azimuth latent, as ``blob2dwarped`` does.

Images are 32×32 RGB (3,072 pixels), so Hessian LLE on a few thousand of them fits in memory.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from untwine.data.manifolds import ManifoldDataset, isometric_manifold
from untwine.data.registry import register_twin
from untwine.data.shapes3d import (
    _bounding_hit,
    _camera_rays,
    _hit_object,
    _lambert,
    _light_directions,
    _room_hit,
)
from untwine.errors import UntwineError

SIZE = 32
SUPERSAMPLE = 4  # rays per pixel side: edges move smoothly at the neighbour scale of HLLE
LIGHT_ELEVATION = 40.0  # degrees above the floor
CUBE_SCALE = 1.2
FLOOR_RGB = np.array([0.66, 0.66, 0.66])
WALL_RGB = np.array([0.5, 0.5, 0.5])
PALETTE_MEAN, PALETTE_AMPLITUDE = 0.55, 0.35

FACTORS = {
    # name: (render parameter index, bounds, centre)
    "camera_azimuth": (0, (-35.0, 35.0)),
    "light_azimuth": (1, (-70.0, 70.0)),
    "object_hue": (2, (0.0, 0.5)),
    "camera_elevation": (3, (10.0, 35.0)),
    "wall_hue": (4, (0.5, 1.0)),
}
_DEFAULTS = np.array([0.0, 0.0, 0.25, 20.0, 0.75])
WALL_AMPLITUDE = 0.12
_TABLE_STEPS = 33


def palette(hue: np.ndarray) -> np.ndarray:
    """Cosine palette (n, 3): a + b·cos(2π(h − (0, ⅓, ⅔))), constant norm and speed in h."""
    phase = 2 * np.pi * (np.asarray(hue, np.float64)[:, None] - np.array([0.0, 1 / 3, 2 / 3]))
    return PALETTE_MEAN + PALETTE_AMPLITUDE * np.cos(phase)


def light_direction(azimuth_deg: float) -> np.ndarray:
    """Unit vector towards the light: ``LIGHT_ELEVATION`` up, turned by azimuth about y."""
    az, el = np.radians(azimuth_deg), np.radians(LIGHT_ELEVATION)
    return np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])


def _shading(
    camera_azimuth: float,
    light_azimuth: float,
    camera_elevation: float,
    wall_rgb: np.ndarray,
    size: int,
    supersample: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(object shading (P,), room colour (P, 3)) at every subpixel ray of one view.

    Object rays carry Lambert shading (times the cube's colour later); room rays carry their
    colour times Lambert shading times the fraction of the disc light the cube does not block.
    The shadow is traced on a grid half as fine (the cost is there) and shared by 2×2 rays.
    """
    eye, d = _camera_rays(camera_azimuth, camera_elevation, size, supersample)
    light = light_direction(light_azimuth)
    origin = np.broadcast_to(eye / CUBE_SCALE, d.shape)
    near = np.flatnonzero(_bounding_hit(origin, d))
    t_obj, normal = _hit_object(0, origin[near], d[near])
    hit = near[np.isfinite(t_obj)]
    obj = np.zeros(len(d))
    obj[hit] = _lambert(normal[np.isfinite(t_obj)], light=light)
    point, on_floor = _room_hit(eye, d)
    coarse = max(1, supersample // 2)
    _, d_coarse = _camera_rays(camera_azimuth, camera_elevation, size, coarse)
    p_coarse, _ = _room_hit(eye, d_coarse)
    lights = _light_directions(light)
    lit = np.full(len(p_coarse), float(len(lights)))
    for ray in lights:
        ray = np.broadcast_to(ray, p_coarse.shape)
        cand = np.flatnonzero(_bounding_hit(p_coarse / CUBE_SCALE, ray))
        t_shadow, _ = _hit_object(0, p_coarse[cand] / CUBE_SCALE, ray[cand])
        lit[cand[np.isfinite(t_shadow)]] -= 1.0
    side = size * coarse
    lit = np.repeat(
        np.repeat(lit.reshape(side, side), supersample // coarse, 0), supersample // coarse, 1
    )
    normal_room = np.where(on_floor[:, None], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0])
    shade = _lambert(normal_room, lit.reshape(-1) / len(lights), light=light)
    colour = np.where(on_floor[:, None], FLOOR_RGB, wall_rgb) * shade[:, None]
    colour[hit] = 0.0
    return obj, colour


def render_scenes(
    params: np.ndarray, size: int = SIZE, supersample: int = SUPERSAMPLE
) -> np.ndarray:
    """(camera azimuth °, light azimuth °, object hue) rows (n, 3) -> float32 (n, 3, S, S).

    One ray-cast view per row, anti-aliased by averaging supersample² rays per pixel.
    """
    params = np.asarray(params, dtype=np.float64)
    out = np.empty((len(params), 3, size, size), dtype=np.float32)
    k = supersample
    for i, (cam, light, hue, elevation, wall) in enumerate(params):
        wall_rgb = WALL_RGB + WALL_AMPLITUDE / PALETTE_AMPLITUDE * (palette([wall])[0] - 0.55)
        obj, colour = _shading(cam, light, elevation, wall_rgb, size, supersample)
        pixels = obj[:, None] * palette(np.array([hue]))[0] + colour
        pixels = pixels.reshape(size, k, size, k, 3).mean(axis=(1, 3))
        out[i] = np.clip(pixels.transpose(2, 0, 1), 0.0, 1.0)
    return out


def _cube(z: np.ndarray) -> np.ndarray:
    return np.clip(z, 0.0, 1.0) ** 3


def scene_manifold(
    name: str,
    factors: Sequence[str],
    size: int = SIZE,
    steps: int = 32,
    warp: bool = False,
) -> ManifoldDataset:
    """A scene manifold over ``factors`` (names of ``FACTORS``), the others at their centre.

    ``warp`` cubes latent 0 (a non-isometric control). Building costs ~3 s (arc-length tables).
    """
    unknown = [f for f in factors if f not in FACTORS]
    if unknown or not factors:
        raise UntwineError(f"{name}: unknown scene factors {unknown}; choose from {list(FACTORS)}")
    if size < 8 or size % 2:
        raise UntwineError(f"{name}: size must be an even number ≥ 8; got {size}")
    index = [FACTORS[f][0] for f in factors]
    bounds = [FACTORS[f][1] for f in factors]

    def render(params: np.ndarray) -> np.ndarray:
        full = np.repeat(_DEFAULTS[None], len(params), axis=0)
        full[:, index] = params
        return render_scenes(full, size)

    eps = [0.5 * (hi - lo) / (_TABLE_STEPS - 1) for lo, hi in bounds]
    info = {"renderer": "shapes3d ray-caster, cube, soft shadow", "warp": warp}
    return isometric_manifold(
        name,
        factors,
        bounds,
        _DEFAULTS[index],
        render,
        (3, size, size),
        steps,
        warp=_cube if warp else None,
        info=info,
        table_steps=_TABLE_STEPS,
        table_eps=eps,
    )


@register_twin("scene2d", official="procedural: shapes3d room, camera azimuth × object hue")
def scene2d(size: int = SIZE, steps: int = 32) -> ManifoldDataset:
    """Camera orbiting a cube × the cube's hue: a 2-D nearly isometric realistic manifold."""
    return scene_manifold("scene2d", ("camera_azimuth", "object_hue"), size, steps)


@register_twin("scene3d", official="procedural: shapes3d room, camera × light azimuth × hue")
def scene3d(size: int = SIZE, steps: int = 32) -> ManifoldDataset:
    """Camera azimuth, light azimuth and cube hue: a 3-D nearly isometric realistic manifold."""
    return scene_manifold("scene3d", ("camera_azimuth", "light_azimuth", "object_hue"), size, steps)


@register_twin("scenewarped", official="procedural: scene2d with camera azimuth = z³ (control)")
def scene_warped(size: int = SIZE, steps: int = 32) -> ManifoldDataset:
    """Control: ``scene2d`` with camera azimuth = z₁³ (speed 3z₁²), so JᵀJ is not c·I."""
    return scene_manifold("scenewarped", ("camera_azimuth", "object_hue"), size, steps, warp=True)
