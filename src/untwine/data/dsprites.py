"""dSprites: a procedural twin, and loaders for the official npz / hdf5 files.

Factors (C order, last fastest): shape 3 (square, ellipse, heart), scale 6 (0.5 … 1),
orientation 40 (linspace(0, 2π, 40), both ends), posX 32, posY 32 (linspace(0, 1, 32)); the
official constant ``color`` factor (size 1) is dropped. Images are 64 × 64 × 1 in {0, 1}.

Twin geometry: a white shape on black, rasterised at pixel centres (no anti-aliasing). posX
class i puts the sprite centre at column 16 + i (moves right), posY class j at row 16 + j (moves
down), so positions sweep the central 32 pixels in integer steps and the largest sprite (radius
< 16 px) never leaves the frame. Orientation turns the shape counter-clockwise as displayed.
Symmetries (tested): orientation class 39 (2π) is class 0 pixel for pixel; a square's
rasterisation at angle θ and θ + π/2 is identical, an ellipse's at θ and θ + π is identical.
As 2π/39 does not divide π/2 or π, no two other classes are exact symmetric copies, but a square
10 classes apart (92.3°) and an ellipse 19 or 20 classes apart (175.4°, 184.6°) are near-copies;
at small scales such pairs within 7° of each other modulo the period can rasterise identically.
Every other pair of orientation classes differs, for every shape and scale (tested exhaustively).
"""

from __future__ import annotations

import pickle
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from untwine.data.base import ArrayDataset, GridDataset
from untwine.data.factors import FactorSpace
from untwine.data.registry import register_loader, register_twin
from untwine.errors import UntwineError

OFFICIAL = (
    "the official dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz (or its .hdf5 twin) from "
    "https://github.com/deepmind/dsprites-dataset"
)
NAMES = ("shape", "scale", "orientation", "posX", "posY")
SHAPES = ("square", "ellipse", "heart")
SIZE = 64
RADIUS = 16
"""Sprites live on a (2·RADIUS + 1)² canvas centred on a pixel; positions start at RADIUS."""

SYMMETRY = {"square": 4, "ellipse": 2, "heart": 1}
"""Rotational symmetry order of each shape: its pixels repeat every 2π / order."""
_CHUNK = 8192
"""Rows handled at a time when streaming the npz images and checking the class order."""


def twin_space() -> FactorSpace:
    """The official dSprites factor grid without the constant colour factor."""
    return FactorSpace.from_sizes(
        NAMES,
        (3, 6, 40, 32, 32),
        (
            np.array([1.0, 2.0, 3.0]),
            np.linspace(0.5, 1.0, 6),
            np.linspace(0.0, 2 * np.pi, 40),
            np.linspace(0.0, 1.0, 32),
            np.linspace(0.0, 1.0, 32),
        ),
    )


def _heart(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Inside of the heart curve (x² + y² − 1)³ ≤ x² y³ (y up), bounding box centred on 0."""
    y = y + 0.115
    return (x * x + y * y - 1.0) ** 3 <= x * x * y**3


def sprite(shape: str, scale: float, angle: float) -> np.ndarray:
    """Rasterise one centred sprite: a (33, 33) bool mask, shape turned by ``angle`` radians.

    The angle is first reduced modulo the shape's rotational symmetry (π/2 for the square, π
    for the ellipse), so symmetric angles give identical pixels, not near-identical ones.
    """
    period = 2 * np.pi / SYMMETRY[shape]
    a = float(np.mod(angle, period))
    a = 0.0 if np.isclose(a, period) else a
    d = np.arange(-RADIUS, RADIUS + 1, dtype=np.float64)
    col, row = np.meshgrid(d, d)
    x, y = col, -row  # y up, so positive angles turn counter-clockwise as displayed
    c, s = np.cos(a), np.sin(a)
    u, v = c * x + s * y, -s * x + c * y  # rotate the sample points by -angle
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 10.5 * scale
    if shape == "ellipse":
        return (u / (14.5 * scale)) ** 2 + (v / (7.0 * scale)) ** 2 <= 1.0
    if shape == "heart":
        k = 11.2 * scale
        return _heart(u / k, v / k)
    raise UntwineError(f"unknown dSprites shape {shape!r}; expected one of {SHAPES}")


@lru_cache(maxsize=1)
def sprite_bank() -> np.ndarray:
    """All 3 × 6 × 40 centred sprites, (3, 6, 40, 33, 33) bool, rendered once per process."""
    space = twin_space()
    scales, angles = space.values[1], space.values[2]
    bank = np.zeros((3, 6, 40, 2 * RADIUS + 1, 2 * RADIUS + 1), dtype=bool)
    for i, shape in enumerate(SHAPES):
        for j, scale in enumerate(scales):
            for k in range(40):
                bank[i, j, k] = sprite(shape, scale, angles[k % 39])  # 2π is angle 0 exactly
    border = bank[..., 0, :].any() or bank[..., -1, :].any()
    border = border or bank[..., :, 0].any() or bank[..., :, -1].any()
    if border:
        raise UntwineError("dSprites twin: a sprite touches its canvas border (would be clipped)")
    return bank


@lru_cache(maxsize=1)
def _windows() -> np.ndarray:
    """A (720, 32, 32, 64, 64) float32 view: windows[s, a, b] is sprite s at posX 31−b, posY 31−a.

    Each sprite sits at offset 31 on a (95, 95) canvas; the 64 × 64 window starting at
    (31 − posY, 31 − posX) shows it centred at (RADIUS + posY, RADIUS + posX) in the frame.
    """
    n_pos = 32
    bank = sprite_bank().reshape(-1, 2 * RADIUS + 1, 2 * RADIUS + 1)
    side = SIZE + n_pos - 1
    canvas = np.zeros((len(bank), side, side), dtype=np.float32)
    o = n_pos - 1
    canvas[:, o : o + 2 * RADIUS + 1, o : o + 2 * RADIUS + 1] = bank
    return sliding_window_view(canvas, (SIZE, SIZE), axis=(1, 2))


def render(factors: np.ndarray) -> np.ndarray:
    """Factor classes (n, 5) -> images (n, 1, 64, 64) float32 in {0, 1}, by one gather."""
    f = np.asarray(factors, dtype=np.int64)
    sprite_index = (f[:, 0] * 6 + f[:, 1]) * 40 + f[:, 2]
    return _windows()[sprite_index, 31 - f[:, 4], 31 - f[:, 3]][:, None]


@register_twin("dsprites", official=OFFICIAL)
def dsprites_twin() -> GridDataset:
    """The procedural dSprites twin: same factors, sizes, values and C-order index as the file."""
    return GridDataset(
        "dsprites",
        twin_space(),
        (1, SIZE, SIZE),
        render,
        source="twin",
        info={
            "shapes": SHAPES,
            "position": "posX moves right, posY moves down, 1 pixel per class",
            "symmetries": "orientation 0 == 39; square period π/2; ellipse period π",
        },
    )


# ---------------------------------------------------------------- official files


def _text(x: Any) -> Any:
    return x.decode("latin1") if isinstance(x, bytes) else x


def _metadata(raw: Any, path: Path) -> dict[str, Any]:
    """The npz's pickled metadata dict, keys as str whether pickled by Python 2 or 3."""
    meta = raw.item() if isinstance(raw, np.ndarray) else raw
    if not isinstance(meta, dict):
        raise UntwineError(f"{path}: 'metadata' is not a dict; expected {OFFICIAL}")
    meta = {_text(k): v for k, v in meta.items()}
    for key in ("latents_sizes", "latents_names", "latents_possible_values"):
        if key not in meta:
            raise UntwineError(f"{path}: metadata lacks {key!r}; expected {OFFICIAL}")
    meta["latents_names"] = tuple(_text(n) for n in meta["latents_names"])
    meta["latents_possible_values"] = {
        _text(k): np.asarray(v, dtype=np.float64)
        for k, v in meta["latents_possible_values"].items()
    }
    return meta


def _space_from_file(
    path: Path, names: tuple[str, ...], sizes: np.ndarray, values: list[np.ndarray]
) -> FactorSpace:
    """The exposed grid: the file's factors minus the constant colour, checked against NAMES."""
    if tuple(names) != ("color", *NAMES):
        raise UntwineError(f"{path}: factors {names}, expected ('color', *{NAMES}); {OFFICIAL}")
    if int(sizes[0]) != 1:
        raise UntwineError(f"{path}: color has {sizes[0]} values, expected 1; {OFFICIAL}")
    return FactorSpace.from_sizes(NAMES, [int(s) for s in sizes[1:]], values[1:])


def _check_c_order(path: Path, classes: np.ndarray, sizes: tuple[int, ...]) -> None:
    """Row i must hold the factor classes of C-order index i (the official ordering)."""
    expected_rows = int(np.prod(sizes))
    if classes.ndim != 2 or classes.shape != (expected_rows, len(sizes)):
        raise UntwineError(
            f"{path}: latents classes have shape {classes.shape}, expected "
            f"({expected_rows}, {len(sizes)}) for sizes {sizes}; {OFFICIAL}"
        )
    for start in range(0, expected_rows, _CHUNK):
        block = classes[start : start + _CHUNK]
        grid = np.stack(np.unravel_index(np.arange(start, start + len(block)), sizes), axis=1)
        bad = np.flatnonzero((block != grid).any(axis=1))
        if bad.size:
            row = start + int(bad[0])
            raise UntwineError(
                f"{path}: rows are not in C order of the factor classes (first mismatch at row "
                f"{row}: {block[bad[0]].tolist()}, expected {grid[bad[0]].tolist()}); "
                f"expected {OFFICIAL} unmodified"
            )


def _packed_images(path: Path, n_rows: int) -> np.ndarray:
    """Stream ``imgs.npy`` out of the npz into bit-packed rows (n, 64, 8), chunk by chunk.

    The real member is 3 GB once decompressed; packed it is 377 MB, and no more than one chunk
    of the unpacked array ever exists.
    """
    with zipfile.ZipFile(path) as archive, archive.open("imgs.npy") as f:
        version = np.lib.format.read_magic(f)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read_header(f)
        if fortran or dtype != np.uint8 or shape != (n_rows, SIZE, SIZE):
            raise UntwineError(
                f"{path}: 'imgs' is {dtype} {shape}{' (Fortran order)' if fortran else ''}, "
                f"expected uint8 ({n_rows}, {SIZE}, {SIZE}); {OFFICIAL}"
            )
        packed = np.empty((n_rows, SIZE, SIZE // 8), dtype=np.uint8)
        for start in range(0, n_rows, _CHUNK):
            m = min(_CHUNK, n_rows - start)
            buf = f.read(m * SIZE * SIZE)
            if len(buf) != m * SIZE * SIZE:
                raise UntwineError(f"{path}: 'imgs' is truncated; expected {OFFICIAL}")
            rows = np.frombuffer(buf, dtype=np.uint8).reshape(m, SIZE, SIZE)
            if rows.max(initial=0) > 1:
                raise UntwineError(
                    f"{path}: 'imgs' holds values > 1, expected {{0, 1}}; {OFFICIAL}"
                )
            packed[start : start + m] = np.packbits(rows, axis=-1)
    return packed


def _unpack(rows: np.ndarray) -> np.ndarray:
    return np.unpackbits(rows, axis=-1)


def _npz_space(path: Path) -> FactorSpace:
    """The grid of an npz from its metadata, after checking its classes are in C order."""
    with np.load(path, allow_pickle=True, encoding="latin1") as data:
        missing = {"imgs", "latents_classes", "metadata"} - set(data.files)
        if missing:
            raise UntwineError(
                f"{path}: lacks key(s) {sorted(missing)} (has {sorted(data.files)}); "
                f"expected {OFFICIAL}"
            )
        meta = _metadata(data["metadata"], path)
        classes = data["latents_classes"]
    names = meta["latents_names"]
    sizes = np.asarray(meta["latents_sizes"], dtype=np.int64)
    if len(names) != len(sizes) or set(names) != set(meta["latents_possible_values"]):
        raise UntwineError(f"{path}: metadata names, sizes and values disagree; {OFFICIAL}")
    values = [meta["latents_possible_values"][n] for n in names]
    space = _space_from_file(path, names, sizes, values)
    _check_c_order(path, classes, tuple(int(s) for s in sizes))
    return space


def load_npz(path: Path) -> ArrayDataset:
    """The official npz: metadata gives the grid, classes are checked, images kept bit-packed.

    Peak memory is the packed images (377 MB for the real file) plus one chunk, never the
    3 GB the images take unpacked.
    """
    try:
        space = _npz_space(path)
        packed = _packed_images(path, len(space))
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError,
            pickle.UnpicklingError) as err:
        what = "not an npz archive" if isinstance(err, pickle.UnpicklingError) else err
        raise UntwineError(f"{path}: unreadable ({what}); expected {OFFICIAL}") from err
    return ArrayDataset(
        "dsprites",
        space,
        packed,
        binary=True,
        source=str(path),
        transform=_unpack,
        info={"format": "npz", "storage": "bit-packed in memory"},
    )


def load_hdf5(path: Path) -> ArrayDataset:
    """The hdf5 twin: sizes from the classes, values from the values, images read per batch."""
    import h5py

    try:
        h5 = h5py.File(path, "r")
    except OSError as err:
        raise UntwineError(f"{path}: not readable as hdf5 ({err}); expected {OFFICIAL}") from err
    try:
        for key in ("imgs", "latents/classes", "latents/values"):
            if key not in h5:
                raise UntwineError(f"{path}: lacks dataset {key!r}; expected {OFFICIAL}")
        try:
            classes = h5["latents/classes"][()]
            values = h5["latents/values"][()]
        except OSError as err:
            raise UntwineError(f"{path}: unreadable ({err}); expected {OFFICIAL}") from err
        imgs = h5["imgs"]
        if classes.ndim != 2 or classes.shape[1] != 6 or values.shape != classes.shape:
            raise UntwineError(
                f"{path}: latents/classes {classes.shape} and latents/values {values.shape} must "
                f"both be (N, 6); expected {OFFICIAL}"
            )
        if imgs.shape != (len(classes), SIZE, SIZE) or imgs.dtype != np.uint8:
            raise UntwineError(
                f"{path}: imgs is {imgs.dtype} {imgs.shape}, expected uint8 "
                f"({len(classes)}, {SIZE}, {SIZE}) holding 0/1; {OFFICIAL}"
            )
        sizes = tuple(int(s) for s in classes.max(axis=0) + 1)
        _check_c_order(path, classes, sizes)
        strides = np.cumprod((1, *sizes[::-1]))[::-1][1:]
        vals = [values[np.arange(s) * strides[k], k] for k, s in enumerate(sizes)]
        space = _space_from_file(path, ("color", *NAMES), np.asarray(sizes), vals)
    except BaseException:
        h5.close()
        raise
    return ArrayDataset(
        "dsprites", space, imgs, binary=True, source=str(path), info={"format": "hdf5"}
    )


@register_loader("dsprites", official=OFFICIAL)
def load_dsprites(path: str | Path) -> ArrayDataset:
    """dSprites from the official file: ``.npz`` or ``.hdf5`` / ``.h5``."""
    path = Path(path)
    if not path.is_file():
        raise UntwineError(f"{path}: no such file; expected {OFFICIAL}")
    if path.suffix == ".npz":
        return load_npz(path)
    if path.suffix in (".h5", ".hdf5"):
        return load_hdf5(path)
    raise UntwineError(f"{path}: unknown file type {path.suffix!r}; expected {OFFICIAL}")
