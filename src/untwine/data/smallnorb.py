"""SmallNORB: a loader for the official NORB binary-matrix files (no twin).

Both splits are merged (48,600 stereo pairs of 50 toys), the left camera is kept and resized to
64 × 64. Factors (C order, last fastest): category 5, elevation 9 (30°…70°), azimuth 18
(0°…340°; the info file stores azimuth / 2 as 0, 2, …, 34, multiply by 10 for degrees),
lighting 6. Classes are the rank of each stored value, so files with fewer values work too.

The object instance (10 per category across the splits) is a nuisance factor, not a grid
factor. ``instance`` chooses how ``images(factors)`` picks one:
- ``"spread"`` (default): each factor combination gets one instance, drawn once from ``seed``
  when the dataset is built; the same factors always give the same image, and all instances
  appear about equally often.
- an int k: the k-th instance (by id) of each category, for a one-object-per-category grid.
- ``"random"``: a fresh instance per sample at every call (disentanglement_lib's behaviour),
  from a RandomState(``seed``) held by the dataset; the same factors can give another object.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from untwine.data.base import ArrayDataset, GridDataset, to_nchw_float
from untwine.data.cars3d import resize
from untwine.data.factors import FactorSpace
from untwine.data.registry import register_loader
from untwine.errors import UntwineError

SPLITS = {
    "training": "smallnorb-5x46789x9x18x6x2x96x96-training",
    "testing": "smallnorb-5x01235x9x18x6x2x96x96-testing",
}
OFFICIAL = (
    "the folder holding the six official SmallNORB files "
    f"{SPLITS['training']}-{{dat,cat,info}}.mat and {SPLITS['testing']}-{{dat,cat,info}}.mat "
    "(gunzipped) from https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/"
)
NAMES = ("category", "elevation", "azimuth", "lighting")
MAGIC = {
    0x1E3D4C51: np.dtype("<f4"),
    0x1E3D4C53: np.dtype("<f8"),
    0x1E3D4C54: np.dtype("<i4"),
    0x1E3D4C55: np.dtype("u1"),
    0x1E3D4C56: np.dtype("<i2"),
}
"""Binary-matrix magic numbers -> element type; 0x1E3D4C55 is unsigned bytes."""


def read_matrix(path: Path) -> np.ndarray:
    """A NORB binary matrix, memory-mapped: int32 magic, int32 ndim, max(3, ndim) int32 dims.

    All little-endian; for ndim < 3 the header still holds three dims, the unused ones 1.
    """
    if not path.is_file():
        raise UntwineError(f"{path}: no such file; expected {OFFICIAL}")
    with open(path, "rb") as f:
        head = np.frombuffer(f.read(8), dtype="<i4")
        if len(head) < 2 or int(head[0]) not in MAGIC:
            magic = hex(int(head[0])) if len(head) else "nothing"
            raise UntwineError(
                f"{path}: not a NORB binary matrix (magic {magic}; expected one of "
                f"{[hex(m) for m in MAGIC]}); expected {OFFICIAL}"
            )
        dtype, ndim = MAGIC[int(head[0])], int(head[1])
        if not 0 <= ndim <= 16:
            raise UntwineError(f"{path}: implausible ndim {ndim}; expected {OFFICIAL}")
        dims = np.frombuffer(f.read(4 * max(3, ndim)), dtype="<i4")
    if len(dims) < max(3, ndim) or (dims[:ndim] < 0).any():
        raise UntwineError(f"{path}: truncated header; expected {OFFICIAL}")
    shape = tuple(int(d) for d in dims[:ndim])
    offset = 8 + 4 * max(3, ndim)
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    actual = path.stat().st_size
    if actual != expected:
        raise UntwineError(
            f"{path}: {actual} bytes, but its header promises {dtype} {shape} = {expected} bytes "
            f"(truncated or not a NORB file); expected {OFFICIAL}"
        )
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)


def read_split(folder: Path, prefix: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One split: left-camera images (n, 64, 64) uint8, categories (n,), info (n, 4)."""
    dat, cat, info = (
        read_matrix(folder / f"{prefix}-{kind}.mat") for kind in ("dat", "cat", "info")
    )
    name = f"{folder / prefix}-"
    if dat.dtype != np.uint8 or dat.ndim != 4 or dat.shape[1] != 2:
        raise UntwineError(
            f"{name}dat.mat: {dat.dtype} {dat.shape}, expected uint8 (N, 2, 96, 96) stereo "
            f"pairs; {OFFICIAL}"
        )
    n = len(dat)
    if cat.dtype != np.int32 or cat.shape != (n,):
        raise UntwineError(
            f"{name}cat.mat: {cat.dtype} {cat.shape}, expected int32 ({n},); {OFFICIAL}"
        )
    if info.dtype != np.int32 or info.shape != (n, 4):
        raise UntwineError(
            f"{name}info.mat: {info.dtype} {info.shape}, expected int32 ({n}, 4); {OFFICIAL}"
        )
    return resize(dat[:, 0]), np.array(cat, dtype=np.int64), np.array(info, dtype=np.int64)


def _ranks(column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values, classes = np.unique(column, return_inverse=True)
    return values, classes.reshape(-1)


def instance_table(
    factors: np.ndarray, instances: np.ndarray, space: FactorSpace, folder: Path
) -> np.ndarray:
    """(grid size, instances per combination) image rows, each row's instances sorted by id."""
    index = space.factors_to_index(factors)
    order = np.lexsort((instances, index))
    counts = np.bincount(index, minlength=len(space))
    if counts.min() != counts.max():
        missing = space.index_to_factors([int(np.argmin(counts))])[0].tolist()
        raise UntwineError(
            f"{folder}: the factor grid {space.describe()} is not complete: combination "
            f"{missing} has {counts.min()} images, others {counts.max()}; expected {OFFICIAL}"
        )
    return order.reshape(len(space), counts[0])


def _random_render(
    images: np.ndarray, table: np.ndarray, space: FactorSpace, seed: int
) -> Callable[[np.ndarray], np.ndarray]:
    """disentanglement_lib's sampling: a fresh instance for every sample, from one RandomState."""
    rng = np.random.RandomState(seed)

    def render(factors: np.ndarray) -> np.ndarray:
        index = space.factors_to_index(factors)
        rows = table[index, rng.randint(table.shape[1], size=len(index))]
        return to_nchw_float(images[rows])

    return render


@register_loader("smallnorb", official=OFFICIAL)
def load_smallnorb(path: str | Path, instance: int | str = "spread", seed: int = 0) -> GridDataset:
    """SmallNORB from the folder of the six official files, both splits merged (see module doc)."""
    folder = Path(path)
    folder = folder.parent if folder.is_file() else folder
    parts = [read_split(folder, prefix) for prefix in SPLITS.values()]
    images = np.concatenate([p[0] for p in parts])
    category = np.concatenate([p[1] for p in parts])
    info = np.concatenate([p[2] for p in parts])
    columns = (category, info[:, 1], info[:, 2], info[:, 3])
    ranked = [_ranks(c) for c in columns]
    stored = [v for v, _ in ranked]
    values = (stored[0], 30.0 + 5.0 * stored[1], 10.0 * stored[2], stored[3])
    space = FactorSpace.from_sizes(NAMES, [len(v) for v in stored], values)
    factors = np.stack([c for _, c in ranked], axis=1)
    table = instance_table(factors, info[:, 0], space, folder)
    meta = {
        "instances_per_combination": table.shape[1],
        "instance": instance,
        "seed": seed,
        "random_images": instance == "random",
    }
    if instance == "random":
        render = _random_render(images, table, space, seed)
        return GridDataset("smallnorb", space, (1, 64, 64), render, str(folder), meta)
    if instance == "spread":
        rank = np.random.RandomState(seed).randint(table.shape[1], size=len(space))
    elif isinstance(instance, (int, np.integer)) and 0 <= instance < table.shape[1]:
        rank = np.full(len(space), int(instance))
    else:
        raise UntwineError(
            f"smallnorb: instance={instance!r}; expected 'spread', 'random' or an int in "
            f"[0, {table.shape[1]}) (`--data-option instance=3`)"
        )
    index_map = table[np.arange(len(space)), rank]
    meta["instance_rank"] = rank
    return ArrayDataset(
        "smallnorb", space, images, index_map=index_map, source=str(folder), info=meta
    )
