"""Shapes3D: a ray-cast procedural twin of DeepMind's 3dshapes, and a loader for 3dshapes.h5.

The twin keeps the official factor names, sizes, values and C order. Geometry and shading of
the 480 (scale, shape, orientation) scenes are ray-cast once; hues are applied per batch.
"""

from __future__ import annotations

import colorsys
from functools import lru_cache
from pathlib import Path

import h5py
import numpy as np

from untwine.data.base import ArrayDataset, GridDataset
from untwine.data.factors import FactorSpace
from untwine.data.registry import register_loader, register_twin
from untwine.errors import UntwineError

OFFICIAL = (
    "3dshapes.h5 from the DeepMind 3dshapes-dataset bucket "
    "(https://storage.googleapis.com/3d-shapes/3dshapes.h5; 480,000 images, "
    "keys 'images' (N, 64, 64, 3) uint8 and 'labels' (N, 6) float64 factor values)"
)
FACTOR_NAMES = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
FACTOR_VALUES = (
    np.linspace(0.0, 0.9, 10),
    np.linspace(0.0, 0.9, 10),
    np.linspace(0.0, 0.9, 10),
    np.linspace(0.75, 1.25, 8),
    np.arange(4, dtype=np.float64),
    np.linspace(-30.0, 30.0, 15),
)
SHAPE_NAMES = ("cube", "cylinder", "sphere", "capsule")
REGIONS = ("floor", "wall", "object")
IMAGE_SIZE = 64

_SUPERSAMPLE = 3  # rays per pixel side, for anti-aliased edges
_TARGET = np.array([0.0, 0.62, 0.0])  # the camera orbits this point
_DISTANCE, _ELEVATION, _FOV = 5.0, 20.0, 32.0  # camera distance, elevation and field of view (°)
_WALL_Z = -2.2  # the back wall is the plane z = _WALL_Z, the floor y = 0
_LIGHT = np.array([-0.55, 1.0, 0.75]) / np.linalg.norm([-0.55, 1.0, 0.75])
_LIGHT_SPREAD = 0.07  # angular radius (rad) of the disc light that softens shadows
_LIGHT_SAMPLES = 8
_AMBIENT, _DIFFUSE = 0.38, 0.57
_EPS = 1e-4


def hue_to_rgb(hues: np.ndarray) -> np.ndarray:
    """Hues in [0, 1) -> fully saturated RGB (n, 3) float32, via HSV with S = V = 1."""
    return np.array([colorsys.hsv_to_rgb(float(h), 1.0, 1.0) for h in hues], dtype=np.float32)


def _camera_rays(
    azimuth_deg: float,
    elevation_deg: float = _ELEVATION,
    size: int = IMAGE_SIZE,
    supersample: int = _SUPERSAMPLE,
) -> tuple[np.ndarray, np.ndarray]:
    """Camera origin (3,) and unit ray directions (H * W * s * s, 3) for one azimuth.

    Azimuths ±a and the pixel grid are exactly symmetric, so views ±a are exact mirror images.
    Elevation, image size and supersampling default to the twin's (the scene manifolds vary them).
    """
    az, el = np.radians(np.round(azimuth_deg, 9)), np.radians(elevation_deg)
    eye = _TARGET + _DISTANCE * np.array(
        [np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)]
    )
    forward = (_TARGET - eye) / np.linalg.norm(_TARGET - eye)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    half = (np.arange(size * supersample // 2) + 0.5) / (size * supersample)
    grid = np.concatenate([-half[::-1], half]) * 2 * np.tan(np.radians(_FOV) / 2)
    v, u = np.meshgrid(-grid, grid, indexing="ij")
    d = forward + u[..., None] * right + v[..., None] * up
    return eye, (d / np.linalg.norm(d, axis=-1, keepdims=True)).reshape(-1, 3)


def _nearest(*hits: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The nearest of several (t, normal) candidates per ray; t = inf where none hit."""
    ts = np.stack([t for t, _ in hits])
    k = np.argmin(ts, axis=0)
    rows = np.arange(ts.shape[1])
    normals = np.stack([nrm for _, nrm in hits])[k, rows]
    return ts[k, rows], normals


def _valid(t: np.ndarray, ok: np.ndarray) -> np.ndarray:
    return np.where(ok & (t > _EPS), t, np.inf)


def _sphere(o: np.ndarray, d: np.ndarray, centre_y: float, r: float):
    oc = o - np.array([0.0, centre_y, 0.0])
    b = np.einsum("ij,ij->i", oc, d)
    disc = b * b - (np.einsum("ij,ij->i", oc, oc) - r * r)
    t = _valid(-b - np.sqrt(np.maximum(disc, 0.0)), disc >= 0)
    p = oc + np.where(np.isfinite(t), t, 0.0)[:, None] * d
    return t, p / r


def _tube(o: np.ndarray, d: np.ndarray, r: float, y0: float, y1: float):
    """The side of a vertical cylinder of radius r between heights y0 and y1."""
    a = d[:, 0] ** 2 + d[:, 2] ** 2
    b = o[:, 0] * d[:, 0] + o[:, 2] * d[:, 2]
    disc = b * b - a * (o[:, 0] ** 2 + o[:, 2] ** 2 - r * r)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
    y = o[:, 1] + t * d[:, 1]
    t = _valid(t, (disc >= 0) & (a > 1e-12) & (y >= y0) & (y <= y1))
    p = o + np.where(np.isfinite(t), t, 0.0)[:, None] * d
    return t, p * np.array([1.0, 0.0, 1.0]) / r


def _disc(o: np.ndarray, d: np.ndarray, r: float, y: float, up: float):
    """A horizontal disc of radius r at height y, facing up (+1) or down (-1)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (y - o[:, 1]) / d[:, 1]
    px, pz = o[:, 0] + t * d[:, 0], o[:, 2] + t * d[:, 2]
    t = _valid(t, (px * px + pz * pz <= r * r) & (up * d[:, 1] < 0))
    return t, np.broadcast_to(np.array([0.0, up, 0.0]), o.shape)


def _box(o: np.ndarray, d: np.ndarray, half: float):
    """An axis-aligned cube of half-size ``half`` standing on the floor (slab method)."""
    lo, hi = np.array([-half, 0.0, -half]), np.array([half, 2 * half, half])
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (lo - o) / d, (hi - o) / d
    near = np.nan_to_num(np.minimum(t1, t2), nan=-np.inf)
    far = np.nan_to_num(np.maximum(t1, t2), nan=np.inf)
    t_in, t_out = near.max(axis=1), far.min(axis=1)
    axis = near.argmax(axis=1)
    normal = np.zeros_like(o)
    normal[np.arange(len(o)), axis] = -np.sign(d[np.arange(len(o)), axis])
    return _valid(t_in, (t_in <= t_out) & (t_out > 0)), normal


def _hit_object(shape: int, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(t, unit normal) of rays against the unit-scale object ``shape`` standing at the origin."""
    if shape == 0:
        return _box(o, d, 0.5)
    if shape == 1:
        r, h = 0.52, 1.05
        return _nearest(_tube(o, d, r, 0.0, h), _disc(o, d, r, h, 1.0), _disc(o, d, r, 0.0, -1.0))
    if shape == 2:
        return _sphere(o, d, 0.6, 0.6)
    r, h = 0.42, 1.35
    return _nearest(_tube(o, d, r, r, h - r), _sphere(o, d, r, r), _sphere(o, d, h - r, r))


def _bounding_hit(o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Which rays can hit a unit-scale object: a test against a sphere enclosing all four."""
    oc = o - np.array([0.0, 0.675, 0.0])
    b = np.einsum("ij,ij->i", oc, d)
    disc = b * b - (np.einsum("ij,ij->i", oc, oc) - 1.0)
    return (disc >= 0) & (np.sqrt(np.maximum(disc, 0.0)) - b > 0)


def _light_directions(light: np.ndarray = _LIGHT) -> np.ndarray:
    """Directions to points of a small disc light around ``light`` (soft shadows)."""
    a = np.cross(light, [0.0, 0.0, 1.0])
    a /= np.linalg.norm(a)
    b = np.cross(light, a)
    ang = 2 * np.pi * (np.arange(_LIGHT_SAMPLES) + 0.5) / _LIGHT_SAMPLES
    rad = _LIGHT_SPREAD * np.sqrt((np.arange(_LIGHT_SAMPLES) % 2 + 0.5) / 2)
    dirs = light + rad[:, None] * (np.cos(ang)[:, None] * a + np.sin(ang)[:, None] * b)
    return dirs / np.linalg.norm(dirs, axis=1, keepdims=True)


def _lambert(
    normal: np.ndarray, visibility: np.ndarray | float = 1.0, light: np.ndarray = _LIGHT
) -> np.ndarray:
    return _AMBIENT + _DIFFUSE * visibility * np.clip(normal @ light, 0.0, None)


def _room_hit(eye: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where rays meet the room: (points (n, 3), True where that is the floor, not the wall)."""
    with np.errstate(divide="ignore"):
        t_floor = np.where(d[:, 1] < 0, -eye[1] / d[:, 1], np.inf)
        t_wall = np.where(d[:, 2] < 0, (_WALL_Z - eye[2]) / d[:, 2], np.inf)
    return eye + np.minimum(t_floor, t_wall)[:, None] * d, t_floor <= t_wall


def _render_view(azimuth: float, scales: np.ndarray) -> np.ndarray:
    """Shading layers (scale, shape, region, H, W) of one camera azimuth, anti-aliased.

    Coverage is supersampled; the soft shadow is evaluated once per pixel (at its centre).
    """
    eye, d = _camera_rays(azimuth)
    k = _SUPERSAMPLE
    centre = d.reshape(IMAGE_SIZE, k, IMAGE_SIZE, k, 3)[:, k // 2, :, k // 2].reshape(-1, 3)
    _, on_floor = _room_hit(eye, d)
    pixel_point, pixel_floor = _room_hit(eye, centre)
    pixel_normal = np.where(pixel_floor[:, None], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0])
    lights = _light_directions()
    out = np.zeros((len(scales), len(SHAPE_NAMES), len(REGIONS), len(d)))
    for i, s in enumerate(scales):
        near = np.flatnonzero(_bounding_hit(np.broadcast_to(eye / s, d.shape), d))
        shadow_rays = [
            (np.flatnonzero(_bounding_hit(pixel_point / s, ray)), ray)
            for ray in (np.broadcast_to(light, pixel_point.shape) for light in lights)
        ]
        for shape in range(len(SHAPE_NAMES)):
            lit = np.full(len(centre), float(len(lights)))
            for cand, ray in shadow_rays:
                t_shadow, _ = _hit_object(shape, pixel_point[cand] / s, ray[cand])
                lit[cand[np.isfinite(t_shadow)]] -= 1.0
            room_shade = _lambert(pixel_normal, lit / len(lights))
            room_shade = np.broadcast_to(
                room_shade.reshape(IMAGE_SIZE, 1, IMAGE_SIZE, 1), (IMAGE_SIZE, k, IMAGE_SIZE, k)
            ).reshape(-1)
            t_obj, normal = _hit_object(shape, np.broadcast_to(eye / s, (len(near), 3)), d[near])
            hit = near[np.isfinite(t_obj)]
            room = np.ones(len(d), dtype=bool)
            room[hit] = False
            out[i, shape, 0] = np.where(room & on_floor, room_shade, 0.0)
            out[i, shape, 1] = np.where(room & ~on_floor, room_shade, 0.0)
            out[i, shape, 2, hit] = _lambert(normal[np.isfinite(t_obj)])
    layers = out.reshape(len(scales), len(SHAPE_NAMES), len(REGIONS), IMAGE_SIZE, k, IMAGE_SIZE, k)
    return layers.mean(axis=(4, 6))


@lru_cache(maxsize=1)
def scene_layers() -> np.ndarray:
    """Shading of floor, wall and object per scene: (scale 8, shape 4, orientation 15, 3, H, W).

    Each pixel's three layers sum to its brightness (coverage × Lambert shading × soft shadow);
    an image is ``Σ_region layer × rgb(hue of region)``. Computed once per process (~3 s).
    """
    scales, azimuths = FACTOR_VALUES[3], FACTOR_VALUES[5]
    views = np.stack([_render_view(a, scales) for a in azimuths], axis=2)
    layers = np.ascontiguousarray(views, dtype=np.float32)
    layers.setflags(write=False)
    return layers


_HUE_RGB = hue_to_rgb(FACTOR_VALUES[0])


def _render_twin(factors: np.ndarray) -> np.ndarray:
    """Factor classes (n, 6) -> float32 images (n, 3, 64, 64): hue colours times shading layers."""
    layers = scene_layers().reshape(-1, len(REGIONS), IMAGE_SIZE * IMAGE_SIZE)
    scene = (factors[:, 3] * len(SHAPE_NAMES) + factors[:, 4]) * len(FACTOR_VALUES[5]) + factors[
        :, 5
    ]
    rgb = _HUE_RGB[factors[:, :3]]  # (n, region, channel)
    out = np.matmul(rgb.transpose(0, 2, 1), layers[scene])
    return out.reshape(len(factors), 3, IMAGE_SIZE, IMAGE_SIZE)


@register_twin("shapes3d", official=OFFICIAL)
def shapes3d_twin() -> GridDataset:
    """The Shapes3D twin: floor, wall and object hue, object scale and shape, camera azimuth."""
    space = FactorSpace(FACTOR_NAMES, tuple(len(v) for v in FACTOR_VALUES), FACTOR_VALUES)
    info = {
        "shapes": SHAPE_NAMES,
        "orientation": "camera azimuth (degrees) orbiting the object; the room turns with it",
        "official": OFFICIAL,
    }
    return GridDataset("shapes3d", space, (3, IMAGE_SIZE, IMAGE_SIZE), _render_twin, "twin", info)


_DECIMALS = 6
"""Labels are rounded to this many decimals before ranking, so float noise cannot split a value."""


def _fail(path: Path, problem: str) -> UntwineError:
    return UntwineError(f"{path}: {problem}; expected {OFFICIAL}")


def label_classes(labels: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Factor values (N, K) -> (class indices (N, K) int64, sorted unique values per factor).

    A value's class is its rank among the column's distinct values (rounded to 6 decimals),
    so no range is assumed and a file with fewer values per factor works as well.
    """
    rounded = np.round(np.asarray(labels, dtype=np.float64), _DECIMALS)
    values = tuple(np.unique(column) for column in rounded.T)
    classes = np.stack([np.searchsorted(v, c) for v, c in zip(values, rounded.T, strict=True)], 1)
    return classes.astype(np.int64), values


def _check_c_order(path: Path, classes: np.ndarray, space: FactorSpace) -> None:
    """Every row must be the grid's C-order index: the last factor varies fastest."""
    rows = space.factors_to_index(classes)
    wrong = np.flatnonzero(rows != np.arange(len(rows)))
    if wrong.size:
        i = int(wrong[0])
        raise _fail(
            path,
            f"rows are not in C order of the factor classes (row {i} holds classes "
            f"{classes[i].tolist()}, which is grid index {int(rows[i])}); the official file "
            f"varies orientation fastest, then shape, scale, object, wall and floor hue",
        )


@register_loader("shapes3d", official=OFFICIAL)
def load_shapes3d_file(path: str | Path, in_memory: bool = False) -> ArrayDataset:
    """The official 3dshapes.h5 as a FactorDataset: classes from label ranks, images per batch.

    Images are read lazily from the HDF5 file per batch; ``in_memory=True`` reads them all
    into RAM first (5.9 GB of uint8 for the full file) for faster random access.
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "no such file")
    if not h5py.is_hdf5(path):
        raise _fail(path, "not an HDF5 file")
    try:
        h5 = h5py.File(path, "r")
    except OSError as err:
        raise _fail(path, f"cannot be read as HDF5, truncated or corrupt? ({err})") from err
    try:
        return _open(path, h5, in_memory)
    except BaseException:
        h5.close()
        raise


def _open(path: Path, h5: h5py.File, in_memory: bool) -> ArrayDataset:
    """Validate an open 3dshapes.h5 and wrap it; raises UntwineError naming what is wrong."""
    missing = [key for key in ("images", "labels") if key not in h5]
    if missing:
        raise _fail(path, f"lacks dataset(s) {missing}; it has {sorted(h5.keys())}")
    images, labels = h5["images"], h5["labels"]
    if not isinstance(images, h5py.Dataset) or not isinstance(labels, h5py.Dataset):
        raise _fail(path, "'images' and 'labels' must be HDF5 datasets, not groups")
    if images.ndim != 4 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise _fail(path, f"'images' has shape {images.shape}, not (N, 64, 64, 3)")
    if images.dtype != np.uint8:
        raise _fail(path, f"'images' has dtype {images.dtype}, not uint8")
    if labels.shape != (images.shape[0], len(FACTOR_NAMES)):
        raise _fail(path, f"'labels' has shape {labels.shape}, not ({images.shape[0]}, 6)")
    if not np.issubdtype(labels.dtype, np.floating):
        raise _fail(path, f"'labels' has dtype {labels.dtype}, not float64 factor values")
    try:
        label_values = labels[()]
    except OSError as err:
        raise _fail(path, f"'labels' cannot be read, probably truncated ({err})") from err
    if not np.isfinite(label_values).all():
        raise _fail(path, "'labels' holds NaN or infinite values")
    classes, values = label_classes(label_values)
    space = FactorSpace(FACTOR_NAMES, tuple(len(v) for v in values), values)
    if len(space) != len(label_values):
        raise _fail(
            path,
            f"{len(label_values)} rows but the distinct label values give the grid "
            f"{space.describe()} = {len(space)} combinations (each must occur exactly once)",
        )
    _check_c_order(path, classes, space)
    array = images
    if in_memory:
        try:
            array = images[()]
        except OSError as err:
            raise _fail(path, f"'images' cannot be read, probably truncated ({err})") from err
        h5.close()
    info = {"path": str(path), "in_memory": in_memory, "official": OFFICIAL}
    return ArrayDataset("shapes3d", space, array, source="file", info=info)
