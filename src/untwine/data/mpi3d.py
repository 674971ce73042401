"""MPI3D: a procedural twin (a two-joint arm holding an object) and a memory-mapping npz loader.

The twin keeps the official factor names, sizes and C order of the 1,036,800-image release
(mpi3d_toy / realistic / real); the loader reads that release and the 460,800-image files
(NeurIPS 2019 challenge, mpi3d_real_complex) without reading the ~12 GiB file into memory.
"""

from __future__ import annotations

import logging
import struct
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.lib import format as npy_format

from untwine.data.base import ArrayDataset, GridDataset
from untwine.data.factors import FactorSpace
from untwine.data.registry import register_loader, register_twin
from untwine.errors import UntwineError

log = logging.getLogger(__name__)

FACTOR_NAMES = (
    "object_color",
    "object_shape",
    "object_size",
    "camera_height",
    "background_color",
    "horizontal_axis",
    "vertical_axis",
)
AXIS_NAMES = tuple(str(i) for i in range(40))
CAMERAS = ("top", "center", "bottom")
BACKGROUNDS = ("purple", "sea green", "salmon")
SIZES = ("small", "large")

OFFICIAL = (
    "the MPI3D npz with one key 'images' (N, 64, 64, 3) uint8: mpi3d_toy.npz, "
    "mpi3d_realistic.npz or mpi3d_real.npz (N = 1,036,800), or the NeurIPS 2019 challenge / "
    "mpi3d_real_complex files (N = 460,800); github.com/rr-learning/disentanglement_dataset"
)


@dataclass(frozen=True)
class Layout:
    """One known arrangement of an MPI3D file: factor sizes and the name of every class."""

    name: str
    sizes: tuple[int, ...]
    value_names: tuple[tuple[str, ...], ...]


FULL = Layout(
    "mpi3d 1,036,800 (toy / realistic / real)",
    (6, 6, 2, 3, 3, 40, 40),
    (
        ("white", "green", "red", "blue", "brown", "olive"),
        ("cone", "cube", "cylinder", "hexagonal", "pyramid", "sphere"),
        SIZES,
        CAMERAS,
        BACKGROUNDS,
        AXIS_NAMES,
        AXIS_NAMES,
    ),
)
CHALLENGE = Layout(
    "mpi3d 460,800 (NeurIPS 2019 challenge)",
    (4, 4, 2, 3, 3, 40, 40),
    (
        ("green", "red", "blue", "brown"),
        ("cone", "cube", "hexagonal prism", "sphere"),
        SIZES,
        CAMERAS,
        BACKGROUNDS,
        AXIS_NAMES,
        AXIS_NAMES,
    ),
)
COMPLEX = Layout(
    "mpi3d 460,800 (mpi3d_real_complex)",
    (4, 4, 2, 3, 3, 40, 40),
    (
        ("yellow", "green", "olive", "red"),
        ("coffee-cup", "tennis-ball", "croissant", "beer-cup"),
        SIZES,
        CAMERAS,
        BACKGROUNDS,
        AXIS_NAMES,
        AXIS_NAMES,
    ),
)


def factor_space(layout: Layout) -> FactorSpace:
    """The factor grid of a layout; values are the official class indices (0, 1, ...)."""
    return FactorSpace.from_sizes(FACTOR_NAMES, layout.sizes)


# --------------------------------------------------------------------------------------------
# The procedural twin
# --------------------------------------------------------------------------------------------

SIZE = 64
SCALE = 18.0  # pixels per world unit
PATCH = 24  # object patch side in pixels
SUPER = 4  # object super-sampling: sub-pixel placement in quarter pixels
UPPER_ARM, FOREARM = 0.9, 1.35  # post from the base to the shoulder; the moving link
YAW = np.deg2rad(np.linspace(-55.0, 55.0, 40))  # horizontal_axis: first joint, about vertical
PITCH = np.deg2rad(np.linspace(-15.0, 45.0, 40))  # vertical_axis: second joint, elevation
ELEVATION = np.deg2rad([50.0, 15.0, -20.0])  # camera_height: top, center, bottom
OBJECT_RADIUS = (0.27, 0.4)  # object_size: small, large (world units)
OBJECT_RGB = np.array(
    [
        [0.95, 0.95, 0.93],  # white
        [0.15, 0.70, 0.20],  # green
        [0.90, 0.12, 0.10],  # red
        [0.15, 0.30, 0.95],  # blue
        [0.50, 0.28, 0.10],  # brown
        [0.55, 0.55, 0.08],  # olive
    ],
    dtype=np.float32,
)
BACKGROUND_RGB = np.array(
    [[0.50, 0.30, 0.62], [0.18, 0.55, 0.40], [0.98, 0.55, 0.45]], dtype=np.float32
)  # purple, sea green, salmon
_SHADE = np.linspace(1.08, 0.82, SIZE, dtype=np.float32)  # background: lighter at the top
LIGHT = np.array([-0.45, 0.75, 0.5]) / np.linalg.norm([-0.45, 0.75, 0.5])


def _camera(alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orthographic camera at elevation ``alpha``: (right, up, view direction) unit vectors."""
    right = np.array([1.0, 0.0, 0.0])
    up = np.array([0.0, np.cos(alpha), -np.sin(alpha)])
    view = np.array([0.0, -np.sin(alpha), -np.cos(alpha)])
    return right, up, view


def _tip(yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """World position of the forearm's tip (the shoulder is the origin): (..., 3).

    At yaw 0 the forearm points at the cameras (+z), so the tip's image height moves
    monotonically with pitch from every camera height.
    """
    yaw, pitch = np.broadcast_arrays(yaw, pitch)
    return FOREARM * np.stack(
        [np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)], axis=-1
    )


def _project(points: np.ndarray, cam: int) -> np.ndarray:
    """World points (..., 3) -> pixel coordinates (..., 2) as (column, row), continuous."""
    right, up, _ = _camera(ELEVATION[cam])
    u = points @ right
    v = points @ up
    return np.stack([SIZE / 2 + SCALE * u, SIZE / 2 - SCALE * (v - _centre(cam))], axis=-1)


@lru_cache(maxsize=3)
def _centre(cam: int) -> float:
    """Height (in the camera's up direction) put at the image centre: the middle of the scene."""
    right, up, _ = _camera(ELEVATION[cam])
    tips = _tip(YAW[:, None], PITCH[None, :]) @ up
    base = np.array([0.0, -UPPER_ARM, 0.0]) @ up
    return float((max(tips.max(), base) + min(tips.min(), base)) / 2)


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from pixels p (P, 2) to segments a->b (m, 2): (m, P)."""
    ab = b - a
    ap = p[None] - a[:, None]
    t = np.clip((ap @ ab[:, :, None])[..., 0] / np.maximum((ab**2).sum(-1), 1e-9)[:, None], 0, 1)
    closest = a[:, None] + t[..., None] * ab[:, None]
    return np.linalg.norm(p[None] - closest, axis=-1)


def _tube(dist: np.ndarray, radius: float, dark: float, light: float) -> tuple[np.ndarray, ...]:
    """Anti-aliased alpha and shaded grey of a metal tube at ``dist`` pixels from its axis."""
    alpha = np.clip(radius + 0.5 - dist, 0.0, 1.0)
    across = np.clip(dist / radius, 0.0, 1.0)
    grey = dark + (light - dark) * np.sqrt(1.0 - across**2)
    return alpha, grey


def _over(alpha: np.ndarray, colour: np.ndarray, a: np.ndarray, c: np.ndarray) -> tuple:
    """Composite a premultiplied layer (a, a*c) over (alpha, colour premultiplied)."""
    return alpha * (1 - a) + a, colour * (1 - a) + a * c


class _Scene(NamedTuple):
    """Everything that depends on (camera, horizontal, vertical), pre-rendered once."""

    arm_alpha: np.ndarray  # (3, 40, 40, 64, 64) float32
    arm_grey: np.ndarray  # (3, 40, 40, 64, 64) float32, premultiplied by the alpha
    tip: np.ndarray  # (3, 40, 40, 2) the tip in pixels (column, row)
    corner: np.ndarray  # (3, 40, 40, 2) int: the object patch's top-left pixel (column, row)
    phase: np.ndarray  # (3, 40, 40, 2) int: its sub-pixel offset in quarter pixels


@lru_cache(maxsize=1)
def _scene() -> _Scene:
    """Render the arm for every (camera, horizontal, vertical) and place the object's patch."""
    grid = np.stack(np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="xy"), -1) + 0.5
    pix = grid.reshape(-1, 2).astype(np.float64)
    alphas = np.zeros((3, 40 * 40, SIZE * SIZE), np.float32)
    greys = np.zeros_like(alphas)
    tips = np.zeros((3, 40 * 40, 2))
    tip3 = _tip(YAW[:, None], PITCH[None, :]).reshape(-1, 3)
    for cam in range(3):
        shoulder = _project(np.zeros(3), cam)
        base = _project(np.array([0.0, -UPPER_ARM, 0.0]), cam)
        # base plate: a horizontal disc seen as an ellipse whose height follows the camera
        squash = max(abs(np.sin(ELEVATION[cam])), 0.12)
        rel = (pix - base) / np.array([0.5 * SCALE, 0.5 * SCALE * squash])
        plate = np.sqrt((rel**2).sum(-1))
        a = np.clip((1.0 - plate) * 0.5 * SCALE * squash + 0.5, 0, 1)[None]
        alpha, colour = a, a * (0.18 + 0.1 * (rel[:, 1] < 0))[None]
        post = _segment_distance(pix, base[None], shoulder[None])
        alpha, colour = _over(alpha, colour, *_tube(post, 0.1 * SCALE, 0.25, 0.6))
        joint = _tube(np.linalg.norm(pix - shoulder, axis=-1), 0.13 * SCALE, 0.2, 0.5)
        tips[cam] = _project(tip3, cam)
        for rows in np.array_split(np.arange(len(tip3)), 8):  # bounded temporaries
            fore = _segment_distance(pix, np.repeat(shoulder[None], len(rows), 0), tips[cam, rows])
            a, c = _over(alpha, colour, *_tube(fore, 0.07 * SCALE, 0.3, 0.75))
            alphas[cam, rows], greys[cam, rows] = _over(a, c, *joint)
    # the object's patch: its centre on the tip, to a quarter pixel
    top_left = tips - PATCH / 2
    corner = np.floor(top_left).astype(np.int64)
    phase = np.rint((top_left - corner) * SUPER).astype(np.int64)
    corner += phase // SUPER
    phase %= SUPER
    if corner.min() < 0 or corner.max() > SIZE - PATCH:
        raise AssertionError("mpi3d twin geometry: the object patch leaves the frame")
    frame = (3, 40, 40, SIZE, SIZE)
    return _Scene(
        alphas.reshape(frame),
        greys.reshape(frame),
        tips.reshape(3, 40, 40, 2),
        corner.reshape(3, 40, 40, 2),
        phase.reshape(3, 40, 40, 2),
    )


def _rot_y(p: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    return np.stack([c * x + s * z, y, -s * x + c * z], axis=-1)


def _sdf(shape: int, p: np.ndarray, r: float) -> np.ndarray:
    """Signed distance (or a lower bound) to object ``shape`` of radius ``r`` centred at 0."""
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    if shape == 0:  # cone, apex up
        side = (np.hypot(x, z) - (r - y) / 2) * (2 / np.sqrt(5.0))
        return np.maximum(side, -y - r)
    if shape == 1:  # cube, turned so three faces show
        q = np.abs(_rot_y(p, 0.6)) - 0.75 * r
        outside = np.linalg.norm(np.maximum(q, 0), axis=-1)
        return outside + np.minimum(q.max(-1), 0)
    if shape == 2:  # cylinder, upright
        dr, dy = np.hypot(x, z) - 0.7 * r, np.abs(y) - 0.95 * r
        return np.minimum(np.maximum(dr, dy), 0) + np.hypot(np.maximum(dr, 0), np.maximum(dy, 0))
    if shape == 3:  # hexagonal prism, upright
        angles = np.arange(6) * np.pi / 3 + 0.3
        planes = x[..., None] * np.cos(angles) + z[..., None] * np.sin(angles)
        return np.maximum(planes.max(-1) - 0.95 * r, np.abs(y) - 0.5 * r)
    if shape == 4:  # square pyramid, turned
        q = _rot_y(p, 0.5)
        faces = np.maximum(np.abs(q[..., 0]), np.abs(q[..., 2])) + (y - r) / 2
        return np.maximum(faces / np.sqrt(1.25), -y - r)
    return np.sqrt(x**2 + y**2 + z**2) - r  # sphere


@lru_cache(maxsize=1)
def _object_patches() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (shape, size, camera, row phase, column phase): premultiplied (alpha, diffuse, specular)
    patches (6, 2, 3, 4, 4, PATCH, PATCH), ray-marched once at 4x resolution."""
    hi = SUPER * (PATCH + 2)
    coords = ((np.arange(hi) + 0.5) / SUPER - (PATCH / 2 + 1)) / SCALE  # world units from centre
    cu, cv = np.meshgrid(coords, -coords, indexing="xy")
    out = np.zeros((3, 6, 2, 3, SUPER, SUPER, PATCH, PATCH), np.float32)
    for cam in range(3):
        right, up, view = _camera(ELEVATION[cam])
        origin = cu[..., None] * right + cv[..., None] * up - 2.0 * view
        half = (LIGHT - view) / np.linalg.norm(LIGHT - view)
        for shape in range(6):
            for size, r in enumerate(OBJECT_RADIUS):
                t = np.zeros(cu.shape)
                for _ in range(64):
                    t = t + np.maximum(_sdf(shape, origin + t[..., None] * view, r), 0.0)
                p = origin + t[..., None] * view
                hit = _sdf(shape, p, r) < 1e-3
                eps = 1e-3
                normal = np.stack(
                    [_sdf(shape, p + eps * e, r) - _sdf(shape, p - eps * e, r) for e in np.eye(3)],
                    axis=-1,
                )
                normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-9)
                diffuse = 0.3 + 0.7 * np.clip(normal @ LIGHT, 0, 1)
                specular = 0.35 * np.clip(normal @ half, 0, 1) ** 24
                layers = np.stack([hit, hit * diffuse, hit * specular]).astype(np.float64)
                for jy in range(SUPER):
                    for jx in range(SUPER):
                        rows = slice(SUPER - jy, SUPER - jy + SUPER * PATCH)
                        cols = slice(SUPER - jx, SUPER - jx + SUPER * PATCH)
                        block = layers[:, rows, cols].reshape(3, PATCH, SUPER, PATCH, SUPER)
                        out[:, shape, size, cam, jy, jx] = block.mean(axis=(2, 4))
    return out[0], out[1], out[2]


def _object(factors: np.ndarray) -> tuple[np.ndarray, ...]:
    """The object of each image: flat pixel indices (n, P, P) of its patch in the 64x64 frame,
    and the patch's alpha, premultiplied diffuse and specular (n, P, P)."""
    scene, (alpha, diffuse, specular) = _scene(), _object_patches()
    _, shape, size, cam, _, hor, ver = factors.T
    corner, phase = scene.corner[cam, hor, ver], scene.phase[cam, hor, ver]
    ar = np.arange(PATCH)
    index = (corner[:, 1, None, None] + ar[:, None]) * SIZE + corner[:, 0, None, None] + ar
    at = (shape, size, cam, phase[:, 1], phase[:, 0])
    return index, alpha[at], diffuse[at], specular[at]


def render_layers(factors: np.ndarray) -> dict[str, np.ndarray]:
    """The twin's layers, full frame, for factor classes (n, 7): background RGB (n, 3, 64, 64),
    arm alpha and premultiplied grey, object alpha, premultiplied diffuse and specular
    (n, 64, 64), and the object's RGB (n, 3). Tests use them to see which pixels a factor
    may change; ``render`` composites the same parts."""
    f = np.asarray(factors, dtype=np.int64)
    n, scene = len(f), _scene()
    cam, hor, ver = f[:, 3], f[:, 5], f[:, 6]
    index, alpha, diffuse, specular = _object(f)
    layers = {
        "background": BACKGROUND_RGB[f[:, 4], :, None, None] * _SHADE[:, None],
        "arm_alpha": scene.arm_alpha[cam, hor, ver],
        "arm_grey": scene.arm_grey[cam, hor, ver],
        "object_rgb": OBJECT_RGB[f[:, 0]],
    }
    rows = np.arange(n)[:, None, None]
    for name, patch in (("alpha", alpha), ("diffuse", diffuse), ("specular", specular)):
        full = np.zeros((n, SIZE * SIZE), np.float32)
        full[rows, index] = patch
        layers[f"object_{name}"] = full.reshape(n, SIZE, SIZE)
    return layers


def render(factors: np.ndarray) -> np.ndarray:
    """Factor classes (n, 7) -> float32 images (n, 3, 64, 64) in [0, 1]: background, arm, object.

    Full-frame work is two multiply-adds; the object is composited inside its patch only.
    """
    f = np.asarray(factors, dtype=np.int64)
    n, scene = len(f), _scene()
    cam, hor, ver = f[:, 3], f[:, 5], f[:, 6]
    arm_alpha = scene.arm_alpha[cam, hor, ver]
    weight = np.subtract(1.0, arm_alpha, out=arm_alpha)
    weight *= _SHADE[:, None]
    img = np.multiply(BACKGROUND_RGB[f[:, 4], :, None, None], weight[:, None])
    img += scene.arm_grey[cam, hor, ver][:, None]
    index, alpha, diffuse, specular = _object(f)
    flat = img.reshape(n, 3, SIZE * SIZE)
    rows = np.arange(n)[:, None, None, None]
    channels = np.arange(3)[:, None, None]
    at = (rows, channels, index[:, None])
    patch = flat[at] * (1.0 - alpha[:, None])
    patch += OBJECT_RGB[f[:, 0], :, None, None] * diffuse[:, None]
    patch += specular[:, None]
    flat[at] = patch
    return np.clip(img, 0.0, 1.0, out=img)


@register_twin("mpi3d", official=OFFICIAL)
def mpi3d_twin() -> GridDataset:
    """The MPI3D twin: a two-joint arm holding an object, 1,036,800 images in the official order."""
    info = {
        "layout": FULL.name,
        "value_names": dict(zip(FACTOR_NAMES, FULL.value_names, strict=True)),
        "horizontal_axis_degrees": np.rad2deg(YAW).round(3).tolist(),
        "vertical_axis_degrees": np.rad2deg(PITCH).round(3).tolist(),
    }
    return GridDataset("mpi3d", factor_space(FULL), (3, SIZE, SIZE), render, "twin", info)


# --------------------------------------------------------------------------------------------
# The official files
# --------------------------------------------------------------------------------------------

IMAGE_SHAPE = (64, 64, 3)
LAYOUTS = {len(factor_space(FULL)): FULL, len(factor_space(CHALLENGE)): CHALLENGE}


def infer_layout(
    n: int, factor_sizes: tuple[int, ...] | None = None, variant: str | None = None
) -> Layout:
    """The layout of a file with ``n`` images: 1,036,800 -> 6,6,2,3,3,40,40; 460,800 ->
    4,4,2,3,3,40,40 (``variant="complex"`` names mpi3d_real_complex's classes, else the
    challenge's); ``factor_sizes`` overrides the inference for custom subsets."""
    if factor_sizes is not None:
        sizes = tuple(int(s) for s in factor_sizes)
        if len(sizes) != len(FACTOR_NAMES) or int(np.prod(sizes, dtype=np.int64)) != n:
            raise UntwineError(
                f"factor_sizes={sizes} must give one size for each of {FACTOR_NAMES} whose "
                f"product is the file's {n:,} images"
            )
        names = tuple(tuple(str(i) for i in range(s)) for s in sizes)
        return Layout(f"mpi3d custom {n:,} ({', '.join(map(str, sizes))})", sizes, names)
    if n not in LAYOUTS:
        known = "; ".join(f"{k:,} images = {v.sizes}" for k, v in LAYOUTS.items())
        raise UntwineError(
            f"an MPI3D file with {n:,} images matches no known layout ({known}); pass "
            "factor_sizes=(...) for a custom subset"
        )
    if n == len(factor_space(CHALLENGE)) and variant == "complex":
        return COMPLEX
    return LAYOUTS[n]


def _npy_header(f: Any, where: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Parse a .npy header at the file position: (shape, fortran_order, dtype, data offset)."""
    try:
        version = npy_format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except ValueError as err:
        raise UntwineError(f"{where}: not a valid .npy array ({err}); expected {OFFICIAL}") from err
    return shape, fortran, dtype, f.tell()


def _stored_member(path: Path, key: str) -> tuple[zipfile.ZipInfo, int]:
    """The zip entry ``key``.npy of an npz and the file offset where its bytes begin."""
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        member = f"{key}.npy"
        if member not in names:
            found = ", ".join(n.removesuffix(".npy") for n in names) or "none"
            raise UntwineError(f"{path}: lacks key {key!r} (keys: {found}); expected {OFFICIAL}")
        info = zf.getinfo(member)
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        raise UntwineError(f"{path}: broken zip entry {member!r}; the file may be truncated")
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    return info, info.header_offset + 30 + name_len + extra_len


def open_images(path: str | Path, key: str = "images", in_memory: bool = False) -> np.ndarray:
    """The ``key`` array of an .npz (or a plain .npy), memory-mapped without reading it.

    np.load cannot memory-map inside an npz, so the stored (uncompressed) member is located in
    the zip, its .npy header parsed, and the data mapped at that offset. ``in_memory`` reads
    the array into RAM instead, which also works for a compressed npz.
    """
    path = Path(path)
    if not path.is_file():
        raise UntwineError(f"{path}: no such file; expected {OFFICIAL}")
    size = path.stat().st_size
    with open(path, "rb") as f:
        is_npy = f.read(6) == b"\x93NUMPY"
    if is_npy:
        with open(path, "rb") as f:
            shape, fortran, dtype, offset = _npy_header(f, str(path))
        end, limit = offset + _nbytes(shape, dtype), size
    elif zipfile.is_zipfile(path):
        info, start = _stored_member(path, key)
        if info.compress_type != zipfile.ZIP_STORED:
            if in_memory:
                return np.load(path)[key]
            raise UntwineError(
                f"{path}: {key!r} is compressed, so it cannot be memory-mapped; re-save it "
                f"uncompressed (np.savez(out, {key}=np.load(path)['{key}'])) or pass "
                "in_memory=True (`--data-option in_memory=true`, or load_dataset('mpi3d', "
                "path=..., in_memory=True)) to decompress it into RAM"
            )
        with open(path, "rb") as f:
            f.seek(start)
            shape, fortran, dtype, offset = _npy_header(f, f"{path}:{key}")
        end, limit = offset + _nbytes(shape, dtype), min(size, start + info.file_size)
    else:
        raise UntwineError(
            f"{path}: neither an .npz (zip) nor an .npy file; it may be an incomplete "
            f"download; expected {OFFICIAL}"
        )
    if dtype.hasobject:
        raise UntwineError(f"{path}: {key!r} holds Python objects; expected uint8 images")
    if fortran:
        raise UntwineError(f"{path}: {key!r} is stored in Fortran order; expected C order")
    if end > limit:
        raise UntwineError(
            f"{path}: truncated: {key!r} {shape} {dtype} needs {end:,} bytes but the file "
            f"holds {limit:,}; download it again"
        )
    images = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
    return np.array(images) if in_memory else images


def _nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


@register_loader("mpi3d", official=OFFICIAL)
def load_mpi3d(
    path: str | Path,
    factor_sizes: tuple[int, ...] | None = None,
    variant: str | None = None,
    in_memory: bool = False,
) -> ArrayDataset:
    """The official MPI3D npz, memory-mapped; the layout is inferred from the number of images.

    ``variant="complex"`` names the 460,800-image classes as mpi3d_real_complex does (default:
    inferred from a file name containing "complex", else the NeurIPS 2019 challenge's names).
    """
    path = Path(path)
    images = open_images(path, "images", in_memory=in_memory)
    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE or images.dtype != np.uint8:
        raise UntwineError(
            f"{path}: 'images' is {images.shape} {images.dtype}; expected (N, 64, 64, 3) uint8 "
            f"as in {OFFICIAL}"
        )
    if variant is None and "complex" in path.name.lower():
        variant = "complex"
    try:
        layout = infer_layout(len(images), factor_sizes, variant)
    except UntwineError as err:
        raise UntwineError(f"{path}: {err}") from None
    log.info("%s: %s images, layout %s", path, f"{len(images):,}", layout.name)
    info = {
        "layout": layout.name,
        "path": str(path),
        "memory_mapped": isinstance(images, np.memmap),
        "value_names": dict(zip(FACTOR_NAMES, layout.value_names, strict=True)),
    }
    return ArrayDataset("mpi3d", factor_space(layout), images, source="file", info=info)
