"""FactorSpace: a dataset's ground-truth factor grid (names, sizes, values, C-order indexing)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from untwine.errors import UntwineError


@dataclass(frozen=True, eq=False)
class FactorSpace:
    """A finite grid of factors of variation, indexed in C order (last factor fastest).

    This is the order of the official dataset files, so index ``i`` of a twin and of the real
    file describe the same factor combination.
    """

    names: tuple[str, ...]
    sizes: tuple[int, ...]
    values: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if not (len(self.names) == len(self.sizes) == len(self.values)):
            raise UntwineError("FactorSpace needs one name, size and value list per factor")
        for name, size, vals in zip(self.names, self.sizes, self.values, strict=False):
            if size < 1 or len(vals) != size:
                raise UntwineError(f"factor {name!r}: size {size} but {len(vals)} values")

    @classmethod
    def from_sizes(
        cls,
        names: Sequence[str],
        sizes: Sequence[int],
        values: Sequence[Sequence[float]] | None = None,
    ) -> FactorSpace:
        """Build a space; values default to the class indices 0..size-1."""
        sizes = tuple(int(s) for s in sizes)
        vals = (
            tuple(np.arange(s, dtype=np.float64) for s in sizes)
            if values is None
            else tuple(np.asarray(v, dtype=np.float64) for v in values)
        )
        return cls(tuple(names), sizes, vals)

    @property
    def num_factors(self) -> int:
        return len(self.sizes)

    def __len__(self) -> int:
        return int(np.prod(self.sizes, dtype=np.int64))

    def index_to_factors(self, index: np.ndarray | Sequence[int] | int) -> np.ndarray:
        """Flat C-order indices (n,) -> factor classes (n, K) as int64."""
        idx = np.asarray(index, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise UntwineError(f"index out of range [0, {len(self)})")
        return np.stack(np.unravel_index(idx, self.sizes), axis=-1).astype(np.int64)

    def factors_to_index(self, factors: np.ndarray | Sequence[Sequence[int]]) -> np.ndarray:
        """Factor classes (n, K) -> flat C-order indices (n,) as int64."""
        f = self.check_factors(factors)
        return np.ravel_multi_index(tuple(f.T), self.sizes).astype(np.int64)

    def check_factors(self, factors: np.ndarray | Sequence[Sequence[int]]) -> np.ndarray:
        """Validate factor classes: shape (n, K), integers within each factor's size."""
        f = np.asarray(factors)
        if f.ndim == 1 and f.shape[0] == self.num_factors:
            f = f[None]
        if f.ndim != 2 or f.shape[1] != self.num_factors:
            raise UntwineError(
                f"factors must have shape (n, {self.num_factors}) for {self.names}; got {f.shape}"
            )
        if not np.issubdtype(f.dtype, np.integer):
            if not np.all(np.equal(np.mod(f, 1), 0)):
                raise UntwineError("factors must be integer class indices, not physical values")
            f = f.astype(np.int64)
        if f.size and ((f.min(axis=0) < 0).any() or (f.max(axis=0) >= self.sizes).any()):
            raise UntwineError(f"factor classes out of range for sizes {self.sizes}")
        return f.astype(np.int64, copy=False)

    def sample_factors(
        self, n: int, rng: np.random.RandomState | np.random.Generator
    ) -> np.ndarray:
        """Draw n factor-class vectors uniformly over the grid: (n, K) int64.

        Each factor is drawn independently with ``rng.randint(size)`` in factor order, the
        way disentanglement_lib's ``sample_factors`` does, so a seeded RandomState gives the
        same draws as the reference.
        """
        draw = rng.randint if isinstance(rng, np.random.RandomState) else rng.integers
        out = np.zeros((n, self.num_factors), dtype=np.int64)
        for k, size in enumerate(self.sizes):
            out[:, k] = draw(size, size=n)
        return out

    def factor_values(self, factors: np.ndarray) -> np.ndarray:
        """Factor classes (n, K) -> physical values (n, K) as float64."""
        f = self.check_factors(factors)
        return np.stack([self.values[k][f[:, k]] for k in range(self.num_factors)], axis=1)

    def describe(self) -> str:
        """One line such as ``shape=3 × scale=6 × orientation=40``."""
        return " × ".join(f"{n}={s}" for n, s in zip(self.names, self.sizes, strict=False))
