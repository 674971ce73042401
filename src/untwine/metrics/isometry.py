"""Local-isometry score: are the codes, up to one global scale, locally distance-preserving?

Horan et al. (2021) identify latents when the representation is locally isometric to the data;
this score measures that property directly on nearest-neighbour distances.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from untwine.errors import UntwineError
from untwine.metrics.utils import check_codes, check_factors


def isometry(codes: np.ndarray, reference: np.ndarray, n_neighbors: int = 10) -> dict:
    """Local-isometry score LI in [0, 1] of ``codes`` (N, D) against ``reference`` (N, ...).

    ``reference`` is the true latents (N, K) or the data (images (N, C, H, W) or (N, P), which
    are flattened). Definition, fixed:

    1. For every point i, its ``n_neighbors`` nearest neighbours j in the reference space
       (Euclidean; pairs at reference distance 0 are dropped).
    2. r_ij = ‖ref_i − ref_j‖ and c_ij = ‖code_i − code_j‖ over those pairs.
    3. One global scale by least squares: s = Σ r·c / Σ c².
    4. Relative errors e_ij = |s·c_ij − r_ij| / r_ij; LI = clip(1 − median(e), 0, 1).

    An isometry up to scale (rotation, shift, global scaling) gives LI = 1; a constant code
    (all c_ij = 0) preserves no distances and gives LI = 0. Non-finite inputs raise.
    Returns ``isometry``, ``scale`` (s), ``median_relative_error`` and ``n_neighbors``.
    """
    c = check_codes(codes).astype(np.float64)
    ref = np.asarray(reference)
    ref = ref.reshape(len(ref), -1) if ref.ndim > 2 else ref
    r = check_factors(ref, len(c), name="reference").astype(np.float64)
    if isinstance(n_neighbors, bool) or int(n_neighbors) != n_neighbors or n_neighbors < 1:
        raise UntwineError(f"n_neighbors must be a positive integer; got {n_neighbors!r}")
    if n_neighbors >= len(c):
        raise UntwineError(
            f"n_neighbors={n_neighbors} needs more than {n_neighbors} points; got {len(c)}"
        )
    dist, idx = NearestNeighbors(n_neighbors=int(n_neighbors) + 1).fit(r).kneighbors(r)
    rows = np.repeat(np.arange(len(r)), int(n_neighbors) + 1)
    cols, rd = idx.ravel(), dist.ravel()
    keep = (rows != cols) & (rd > 0)
    rows, cols, rd = rows[keep], cols[keep], rd[keep]
    if len(rd) == 0:
        raise UntwineError("all reference points coincide; the isometry score is undefined")
    cd = np.sqrt(((c[rows] - c[cols]) ** 2).sum(axis=1))
    denom = float((cd**2).sum())
    if denom == 0.0:
        return {
            "isometry": 0.0,
            "scale": float("nan"),
            "median_relative_error": 1.0,
            "n_neighbors": int(n_neighbors),
        }
    scale = float((rd * cd).sum() / denom)
    err = float(np.median(np.abs(scale * cd - rd) / rd))
    return {
        "isometry": float(np.clip(1.0 - err, 0.0, 1.0)),
        "scale": scale,
        "median_relative_error": err,
        "n_neighbors": int(n_neighbors),
    }
