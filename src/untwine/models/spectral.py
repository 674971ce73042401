"""Hessian LLE + ICA (Horan, Richardson & Weiss, NeurIPS 2021): latents from local isometry.

If images x = f(z) with f a local isometry and z independent and non-Gaussian, Hessian LLE
(Donoho & Grimes 2003) recovers z up to a rigid motion and linear ICA removes the rotation.
No SGD: ``fit`` / ``transform`` in scikit-learn's conventions, ``represent`` for the metrics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.optimize import nnls
from sklearn.decomposition import PCA, FastICA
from sklearn.manifold import LocallyLinearEmbedding
from sklearn.neighbors import NearestNeighbors

from untwine.errors import UntwineError


def min_neighbors(n_components: int) -> int:
    """Smallest neighbour count Hessian LLE accepts: more than d(d+3)/2."""
    return n_components * (n_components + 3) // 2 + 1


def default_neighbors(n_components: int) -> int:
    """Base neighbour count: the minimum plus 2d slack for noise-free local fits, at least 10."""
    return max(10, min_neighbors(n_components) + 2 * n_components)


def candidate_neighbors(n_components: int, n_points: int) -> list[int]:
    """Neighbour counts ``n_neighbors="auto"`` tries: the base count, 1.5× and 2× it (< n)."""
    base = default_neighbors(n_components)
    ks = sorted({base, int(round(1.5 * base)), 2 * base})
    return [k for k in ks if k < n_points] or [base]


SCORE_NEIGHBORS = 10
"""Nearest neighbours (in data space) over which the label-free isometry score is computed."""


def _as_matrix(X: Any) -> np.ndarray:
    """Images (n, C, H, W) or flattened images (n, P), NumPy or torch -> float64 (n, P)."""
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim == 4:
        arr = arr.reshape(len(arr), -1)
    if arr.ndim != 2:
        raise UntwineError(
            f"expected images (n, C, H, W), flattened images (n, P) or a FactorDataset; "
            f"got an array of shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise UntwineError("the images contain NaN or infinite values")
    return arr


def isometric_fit(
    codes: np.ndarray, data: np.ndarray, n_neighbors: int = SCORE_NEIGHBORS
) -> tuple[np.ndarray, float]:
    """Per-axis scales a (D,) making ``codes * a`` locally isometric to ``data``, and how well.

    ICA outputs unit-variance sources, which loses each latent's extent. Over k-nearest-
    neighbour pairs (i, j) in data space, non-negative least squares fits
    ‖Δdata‖² ≈ Σ_k a_k² Δcode_k². The score is the local-isometry score LI of the scaled codes
    (``untwine.metrics.isometry``'s definition on the same pairs): with r = ‖Δdata‖,
    c = ‖a ⊙ Δcode‖ and s = Σ r·c / Σ c², LI = clip(1 − median(|s·c − r| / r), 0, 1).
    It needs no labels, so it can choose or check the neighbour count of Hessian LLE.
    """
    dist, idx = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(data).kneighbors(data)
    rows = np.repeat(np.arange(len(data)), n_neighbors + 1)
    cols, r = idx.ravel(), dist.ravel()
    keep = (rows != cols) & (r > 0)
    rows, cols, r = rows[keep], cols[keep], r[keep]
    weights, _ = nnls((codes[rows] - codes[cols]) ** 2, r**2)
    scales = np.sqrt(weights)
    c = np.sqrt((((codes[rows] - codes[cols]) * scales) ** 2).sum(axis=1))
    denom = float((c**2).sum())
    if denom == 0.0:
        return scales, 0.0
    s = float((r * c).sum() / denom)
    return scales, float(np.clip(1.0 - np.median(np.abs(s * c - r) / r), 0.0, 1.0))


def isometric_axis_scales(
    codes: np.ndarray, data: np.ndarray, n_neighbors: int = SCORE_NEIGHBORS
) -> np.ndarray:
    """The scales of ``isometric_fit`` alone."""
    return isometric_fit(codes, data, n_neighbors)[0]


class SpectralICA:
    """Hessian LLE to ``n_components`` locally isometric coordinates, then FastICA on them.

    Parameters (stored as given, validated in ``fit``):
      n_components: latent dimension d.
      n_neighbors: neighbourhood size k; must exceed d(d+3)/2 and be below the sample count.
        ``"auto"`` (default) fits each of ``candidate_neighbors(d, n)`` (the base count
        ``default_neighbors(d)`` — 10 for d = 2, 16 for d = 3 — and 1.5×, 2× it) and keeps the
        one whose codes are most locally isometric to the data (``isometric_fit``'s score: no
        labels needed). None = the base count alone.
      pca_components: if set, PCA to this many dimensions first (cheaper neighbour searches).
      random_state: seed of the dataset sampling, PCA and FastICA.
      n_samples: how many points ``fit`` draws when given a ``FactorDataset`` (continuous
        latents via ``sample_latents`` / ``render_latents`` when the dataset has them, else
        uniform grid factors).

    The ICA sources are then rescaled per axis (``isometric_fit``) so the codes are
    locally isometric to the data as well as independent (unit-variance ICA output would not be
    when latents have different extents).

    Why "auto": with the base count, Hessian LLE sometimes folds the embedding (blob3d,
    500 points, seeds 2 and 4 with k = 10: MCC 0.665 and 0.337 where k = 16 gives 0.990 and
    0.987); those fits have LI 0.81 and 0.64 against ≥ 0.96 for good ones, so the score picks
    them out without labels. The score is kept (``isometry_score_``) for a fixed k as well, as
    a check: below ~0.9 on an isometric manifold the embedding is suspect.

    Learned state: ``pca_`` (or None), ``lle_``, ``ica_``, ``scales_``, ``n_neighbors_`` (the
    count used), ``isometry_score_`` (its label-free LI), ``neighbor_scores_`` ({k: LI} over
    the counts tried), ``embedding_``
    (HLLE coordinates of the training points), ``n_features_in_``, and ``fit_latents_`` (the
    sampled latents, or factor classes, when fitted on a dataset; else None).

    Out-of-sample extension: ``transform`` maps new images with scikit-learn's
    ``LocallyLinearEmbedding.transform`` — barycentric reconstruction weights of each point from
    its k nearest training points, applied to their embedding — then the fitted ICA unmixing.

    Cost: Hessian LLE solves a dense N×N eigenproblem: O(N²) memory (N = 5000 is 200 MB) and
    O(N³) time, so a few thousand points is its natural size (N = 2000 takes seconds).

    Reference: Horan, Richardson, Weiss, "When is unsupervised disentanglement possible?",
    NeurIPS 2021; Donoho & Grimes, "Hessian eigenmaps", PNAS 2003.
    """

    def __init__(
        self,
        n_components: int,
        n_neighbors: int | str | None = "auto",
        pca_components: int | None = None,
        random_state: int = 0,
        n_samples: int = 2000,
    ) -> None:
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.pca_components = pca_components
        self.random_state = random_state
        self.n_samples = n_samples

    def _check_params(self, n: int, p: int) -> list[int]:
        """The neighbour counts to try, after validating every parameter."""
        d = self.n_components
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
            raise UntwineError(f"n_components must be a positive integer; got {d!r}")
        if isinstance(self.n_neighbors, str):
            if self.n_neighbors != "auto":
                raise UntwineError(
                    f"n_neighbors must be an integer, None or 'auto'; got {self.n_neighbors!r}"
                )
            ks = candidate_neighbors(d, n)
        else:
            ks = [default_neighbors(d) if self.n_neighbors is None else self.n_neighbors]
        for k in ks:
            self._check_neighbors(k, n)
        if self.pca_components is not None and not d <= self.pca_components <= min(n, p):
            raise UntwineError(
                f"pca_components={self.pca_components} must lie in [{d}, {min(n, p)}] "
                "(at least n_components, at most min(points, pixels))"
            )
        return [int(k) for k in ks]

    def _check_neighbors(self, k: int, n: int) -> None:
        d = self.n_components
        if k < min_neighbors(d):
            raise UntwineError(
                f"n_neighbors={k} is too small for Hessian LLE with n_components={d}: it needs "
                f"more than d(d+3)/2, i.e. n_neighbors >= {min_neighbors(d)}"
            )
        if k >= n:
            raise UntwineError(
                f"n_neighbors={k} must be smaller than the number of points ({n}); "
                "pass more points or fewer neighbours"
            )

    def _data(self, X: Any) -> np.ndarray:
        """The training matrix; a FactorDataset is sampled (``n_samples`` points)."""
        self.fit_latents_ = None
        if hasattr(X, "sample_factors") and hasattr(X, "image_shape"):
            rng = np.random.RandomState(self.random_state)
            if hasattr(X, "sample_latents"):
                self.fit_latents_ = X.sample_latents(self.n_samples, rng)
                return _as_matrix(X.render_latents(self.fit_latents_))
            self.fit_latents_ = X.sample_factors(self.n_samples, rng)
            return _as_matrix(X.images(self.fit_latents_))
        return _as_matrix(X)

    def fit(self, X: Any, y: Any = None) -> SpectralICA:
        """Fit PCA (optional), Hessian LLE and FastICA on X; returns self."""
        self.fit_transform(X)
        return self

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit and return the ICA codes (n, n_components) of the training points."""
        data = self._data(X)
        candidates = self._check_params(*data.shape)
        self.n_features_in_ = data.shape[1]
        self.pca_ = None
        if self.pca_components is not None:
            self.pca_ = PCA(self.pca_components, random_state=self.random_state)
            data = self.pca_.fit_transform(data)
        fits = {k: self._fit_neighbors(data, k) for k in candidates}
        self.neighbor_scores_ = {k: fit[-1] for k, fit in fits.items()}
        self.n_neighbors_ = max(candidates, key=lambda k: self.neighbor_scores_[k])
        self.lle_, self.embedding_, self.ica_, sources, self.scales_, self.isometry_score_ = fits[
            self.n_neighbors_
        ]
        return sources * self.scales_

    def _fit_neighbors(self, data: np.ndarray, k: int) -> tuple:
        """(lle, embedding, ica, sources, scales, LI score) for one neighbour count k."""
        lle = LocallyLinearEmbedding(
            n_neighbors=k,
            n_components=self.n_components,
            method="hessian",
            eigen_solver="dense",
            random_state=self.random_state,
        )
        embedding = lle.fit_transform(data)
        ica = FastICA(
            self.n_components, whiten="unit-variance", max_iter=1000, random_state=self.random_state
        )
        sources = ica.fit_transform(embedding)
        scales, score = isometric_fit(sources, data)
        return lle, embedding, ica, sources, scales, score

    def transform(self, X: Any) -> np.ndarray:
        """Codes (n, n_components) of new images via the barycentric out-of-sample extension."""
        if not hasattr(self, "ica_"):
            raise UntwineError("SpectralICA is not fitted; call fit(X) first")
        data = _as_matrix(X)
        if data.shape[1] != self.n_features_in_:
            raise UntwineError(
                f"images have {data.shape[1]} pixels but the model was fitted on "
                f"{self.n_features_in_}"
            )
        if self.pca_ is not None:
            data = self.pca_.transform(data)
        return self.ica_.transform(self.lle_.transform(data)) * self.scales_

    def represent(self, x: torch.Tensor, mode: str = "mean") -> torch.Tensor:
        """Model contract: float32 images (n, C, H, W) -> float32 codes (n, n_components).

        The embedding is deterministic, so ``mode`` ("mean" or "sampled") changes nothing.
        """
        if mode not in ("mean", "sampled"):
            raise UntwineError(f"represent mode must be 'mean' or 'sampled'; got {mode!r}")
        return torch.from_numpy(self.transform(x).astype(np.float32))
