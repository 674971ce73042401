"""The FactorDataset contract and its two forms: a render function, or an image array."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from untwine.data.factors import FactorSpace
from untwine.errors import UntwineError

Render = Callable[[np.ndarray], np.ndarray]
"""Factor classes (n, K) int64 -> images (n, C, H, W) float32 in [0, 1]."""


@runtime_checkable
class FactorDataset(Protocol):
    """What training and metrics need from a dataset with a known factor grid."""

    name: str
    space: FactorSpace
    image_shape: tuple[int, int, int]

    @property
    def factor_names(self) -> tuple[str, ...]: ...

    @property
    def factor_sizes(self) -> tuple[int, ...]: ...

    @property
    def factor_values(self) -> tuple[np.ndarray, ...]: ...

    def sample_factors(self, n: int, rng: np.random.RandomState) -> np.ndarray: ...

    def images(self, factors: np.ndarray) -> torch.Tensor: ...

    def __len__(self) -> int: ...


class GridDataset:
    """A FactorDataset from a factor grid and a function that renders factor classes to images.

    Procedural twins are a ``GridDataset`` whose ``render`` composes pre-rendered parts; file
    loaders are ``ArrayDataset``s whose ``render`` reads the rows of the official file.
    """

    def __init__(
        self,
        name: str,
        space: FactorSpace,
        image_shape: tuple[int, int, int],
        render: Render,
        source: str = "twin",
        info: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.space = space
        self.image_shape = tuple(int(s) for s in image_shape)
        self.source = source
        self.info = dict(info or {})
        self._render = render

    @property
    def factor_names(self) -> tuple[str, ...]:
        return self.space.names

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return self.space.sizes

    @property
    def factor_values(self) -> tuple[np.ndarray, ...]:
        return self.space.values

    def __len__(self) -> int:
        return len(self.space)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.space.describe()}, {self.source})"

    def sample_factors(
        self, n: int, rng: np.random.RandomState | np.random.Generator
    ) -> np.ndarray:
        """n factor-class vectors drawn uniformly over the grid, (n, K) int64."""
        return self.space.sample_factors(n, rng)

    def index_to_factors(self, index: np.ndarray | int) -> np.ndarray:
        return self.space.index_to_factors(index)

    def factors_to_index(self, factors: np.ndarray) -> np.ndarray:
        return self.space.factors_to_index(factors)

    def images_numpy(self, factors: np.ndarray) -> np.ndarray:
        """Images for factor classes as a float32 array (n, C, H, W) in [0, 1]."""
        f = self.space.check_factors(factors)
        out = self._render(f)
        if out.shape[1:] != self.image_shape:
            raise UntwineError(
                f"{self.name}: rendered images have shape {out.shape[1:]}, "
                f"expected {self.image_shape}"
            )
        return out

    def images(self, factors: np.ndarray) -> torch.Tensor:
        """Images for factor classes as a float32 tensor (n, C, H, W) in [0, 1]."""
        return torch.from_numpy(np.ascontiguousarray(self.images_numpy(factors)))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, np.ndarray]:
        """(image (C, H, W), factor classes (K,)) for one flat C-order index."""
        f = self.space.index_to_factors(np.array([index]))
        return self.images(f)[0], f[0]


def to_nchw_float(batch: np.ndarray, binary: bool = False) -> np.ndarray:
    """uint8 images (n, H, W), (n, H, W, C) or (n, C, H, W) -> float32 (n, C, H, W) in [0, 1].

    ``binary`` images hold {0, 1} (dSprites) and are not divided by 255.
    """
    x = np.asarray(batch)
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    x = x.astype(np.float32)
    return x if binary else x / np.float32(255.0)


def read_rows(array: Any, index: np.ndarray) -> np.ndarray:
    """Read rows ``index`` (any order, repeats allowed) from a NumPy, memmap or h5py array.

    h5py only accepts increasing unique indices, so read those once and scatter them back.
    """
    index = np.asarray(index, dtype=np.int64)
    if isinstance(array, np.ndarray):
        return array[index]
    unique, inverse = np.unique(index, return_inverse=True)
    return np.asarray(array[unique])[inverse]


class ArrayDataset(GridDataset):
    """A FactorDataset over an image array in C-order factor order (memory, memmap or h5py).

    Images are read per batch, so a 12 GiB memory-mapped file costs only the rows asked for.
    ``index_map`` maps a flat grid index to a row of ``array`` when the file's row order is
    not the grid's (e.g. SmallNORB); by default row i is grid index i.
    """

    def __init__(
        self,
        name: str,
        space: FactorSpace,
        array: Any,
        binary: bool = False,
        index_map: np.ndarray | None = None,
        source: str = "file",
        info: dict[str, Any] | None = None,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        if index_map is None and len(array) != len(space):
            raise UntwineError(
                f"{name}: the image array has {len(array)} rows but the factor grid "
                f"{space.describe()} has {len(space)}"
            )
        self.array = array
        self.binary = binary
        self.index_map = index_map
        self.transform = transform
        self.space = space
        probe = self._read(np.zeros((1, space.num_factors), dtype=np.int64))
        super().__init__(name, space, probe.shape[1:], self._read, source, info)

    def _read(self, factors: np.ndarray) -> np.ndarray:
        rows = self.space.factors_to_index(factors)
        if self.index_map is not None:
            rows = self.index_map[rows]
        raw = read_rows(self.array, rows)
        if self.transform is not None:
            raw = self.transform(raw)
        return to_nchw_float(raw, binary=self.binary)
