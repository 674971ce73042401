"""Codes for sampled factors, with each grid image encoded at most once.

disentanglement_lib draws factors from one ``numpy.random.RandomState`` and encodes every draw
(~1.9 M images for the BetaVAE score). For a deterministic representation on a finite grid the
code of a grid index never changes, so untwine replays the reference's draws in the same order,
encodes only the distinct grid indices it has not seen (in large batches), and looks codes up.
With a representation whose output for an image does not depend on the rest of its batch, the
scores are identical to the reference's for the same seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from untwine.data.base import FactorDataset
from untwine.errors import UntwineError

Represent = Callable[[Any], Any]
"""Images float32 (n, C, H, W) in [0, 1] (what ``dataset.images`` gives) -> codes (n, D)."""


def check_codes(codes: Any, what: str = "codes") -> np.ndarray:
    """A finite 2-D array (N, D) of codes, or a clear UntwineError."""
    c = to_numpy(codes)
    if c.ndim == 1:
        c = c[:, None]
    if c.ndim != 2:
        raise UntwineError(f"{what} must have shape (N, D); got {c.shape}")
    if not np.issubdtype(c.dtype, np.number):
        raise UntwineError(f"{what} must be numeric; got dtype {c.dtype}")
    if not np.all(np.isfinite(c)):
        bad = int(np.sum(~np.isfinite(c)))
        raise UntwineError(f"{what} hold {bad} NaN/inf values; fix the encoder or drop those rows")
    return c


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array from a NumPy array or a torch tensor (detached, on the CPU)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


class CodeCache:
    """Codes of grid indices, each encoded once: lazily, in batches of ``batch_size`` images.

    ``num_encoded`` counts images passed to ``represent``; ``num_requested`` counts the codes
    looked up, i.e. the images the reference protocol would have encoded; ``encode_seconds``
    is the time spent rendering and encoding. Codes keep the dtype ``represent`` returns.

    Caching is exact only when the same factors always give the same code. ``cache=False``
    encodes every request instead, as the reference does: use it for a sampled representation
    (a fresh posterior sample per encode). ``cache=None`` caches unless the dataset declares
    random images for fixed factors (``dataset.info["random_images"]``, e.g. SmallNORB with
    ``instance="random"``).
    """

    def __init__(
        self,
        dataset: FactorDataset,
        represent: Represent,
        batch_size: int = 1024,
        cache: bool | None = None,
    ):
        self.dataset = dataset
        self.represent = represent
        self.batch_size = int(batch_size)
        info = getattr(dataset, "info", {}) or {}
        self.cache = not info.get("random_images", False) if cache is None else bool(cache)
        self.sizes = tuple(int(s) for s in dataset.factor_sizes)
        self._keys = np.empty(0, dtype=np.int64)
        self._codes: np.ndarray | None = None
        self.num_encoded = 0
        self.num_requested = 0
        self.encode_seconds = 0.0

    def index(self, factors: np.ndarray) -> np.ndarray:
        """Factor classes (..., K) -> flat C-order grid indices (...)."""
        f = np.asarray(factors, dtype=np.int64)
        return np.ravel_multi_index(tuple(np.moveaxis(f, -1, 0)), self.sizes)

    def _encode(self, index: np.ndarray) -> np.ndarray:
        factors = np.stack(np.unravel_index(index, self.sizes), axis=-1).astype(np.int64)
        with torch.no_grad():
            out = self.represent(self.dataset.images(factors))
        codes = check_codes(out, "represent(images)")
        if len(codes) != len(index):
            raise UntwineError(
                f"represent returned {len(codes)} codes for {len(index)} images; it must map "
                "(n, C, H, W) images to (n, D) codes"
            )
        return codes

    def _find(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of ``index`` among the cached keys, and whether each is cached."""
        if self._keys.size == 0:
            return np.zeros(index.shape, np.int64), np.zeros(index.shape, bool)
        pos = np.minimum(np.searchsorted(self._keys, index), self._keys.size - 1)
        return pos, self._keys[pos] == index

    def ensure(self, index: np.ndarray) -> None:
        """Encode the grid indices in ``index`` that have no code yet."""
        unique = np.unique(np.asarray(index, dtype=np.int64).ravel())
        missing = unique[~self._find(unique)[1]]
        if missing.size == 0 or not self.cache:
            return
        new = self._encode_all(missing)
        if self._codes is None:
            self._keys, self._codes = missing, new
            return
        if new.shape[1] != self._codes.shape[1]:
            raise UntwineError("represent returned codes of a different size between batches")
        keys = np.concatenate([self._keys, missing])
        order = np.argsort(keys, kind="stable")
        self._keys, self._codes = keys[order], np.concatenate([self._codes, new])[order]

    def codes(self, index: np.ndarray) -> np.ndarray:
        """Codes (..., D) of flat grid indices (...), encoding the ones not seen yet."""
        index = np.asarray(index, dtype=np.int64)
        self.num_requested += int(index.size)
        if not self.cache:
            return self._encode_all(index.ravel()).reshape(*index.shape, -1)
        self.ensure(index)
        return self._codes[self._find(index)[0]]

    def _encode_all(self, index: np.ndarray) -> np.ndarray:
        """Encode every index of a flat array, repeats included, in batches."""
        start = time.perf_counter()
        out = np.concatenate(
            [
                self._encode(index[i : i + self.batch_size])
                for i in range(0, index.size, self.batch_size)
            ]
        )
        self.num_encoded += int(index.size)
        self.encode_seconds += time.perf_counter() - start
        return out

    def codes_of(self, factors: np.ndarray) -> np.ndarray:
        """Codes (..., D) of factor classes (..., K)."""
        return self.codes(self.index(factors))


def as_cache(
    dataset: FactorDataset, represent: Represent | CodeCache, batch_size: int
) -> CodeCache:
    """The given CodeCache, or a new one over ``dataset`` and ``represent``."""
    if isinstance(represent, CodeCache):
        return represent
    return CodeCache(dataset, represent, batch_size=batch_size)


def draw_batch_factors(
    dataset: FactorDataset, num_points: int, random_state: np.random.RandomState, batch_size: int
) -> np.ndarray:
    """The factors disentanglement_lib's ``generate_batch_factor_code`` draws, (num_points, K).

    It draws ``dataset.sample_factors`` in chunks of ``batch_size``; the chunking changes the
    draw order, so it is replayed as is.
    """
    chunks = [
        dataset.sample_factors(min(batch_size, num_points - i), random_state)
        for i in range(0, num_points, batch_size)
    ]
    return np.concatenate(chunks).astype(np.int64)


def generate_batch_factor_code(
    dataset: FactorDataset,
    represent: Represent | CodeCache,
    num_points: int,
    random_state: np.random.RandomState,
    batch_size: int = 16,
    encode_batch_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Codes (num_points, D) and factor classes (num_points, K), as the reference draws them.

    The reference returns them transposed, (D, N) and (K, N); untwine's metrics take (N, D).
    """
    factors = draw_batch_factors(dataset, num_points, random_state, batch_size)
    cache = as_cache(dataset, represent, encode_batch_size)
    return cache.codes_of(factors), factors
