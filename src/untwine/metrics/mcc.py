"""Mean correlation coefficient (MCC): how well codes match latents up to permutation and sign.

The identifiability score of the non-linear ICA literature (Hyvärinen & Morioka 2016; Horan et
al. 2021): absolute correlations between every code and every latent, a one-to-one matching
that maximises their sum (Hungarian algorithm), and the mean over the matched pairs.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import rankdata

from untwine.errors import UntwineError
from untwine.metrics.utils import check_codes, check_factors

CORRELATIONS = ("pearson", "spearman")


def correlation_matrix(codes: np.ndarray, latents: np.ndarray) -> np.ndarray:
    """Pearson correlations (D, K) between code columns and latent columns; 0 for a constant one."""
    a = codes - codes.mean(axis=0)
    b = latents - latents.mean(axis=0)
    na = np.sqrt((a**2).sum(axis=0))
    nb = np.sqrt((b**2).sum(axis=0))
    denom = np.outer(na, nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (a.T @ b) / denom
    return np.where(denom > 0, corr, 0.0)


def mcc(codes: np.ndarray, latents: np.ndarray, correlation: str = "pearson") -> dict:
    """MCC = mean over the best one-to-one matching of |corr(code_i, latent_j)|.

    ``codes`` (N, D) and ``latents`` (N, K) may differ in width: min(D, K) pairs are matched
    (``linear_sum_assignment`` on −|corr|) and averaged, so surplus codes or latents are ignored.
    ``correlation="spearman"`` correlates ranks (invariant to monotone warps of each latent).
    A constant column correlates 0 with everything. Returns ``mcc`` in [0, 1], the ``matching``
    as (code, latent) index pairs, the matched ``|corr|`` per pair and the full ``correlations``.
    """
    if correlation not in CORRELATIONS:
        raise UntwineError(f"correlation must be one of {CORRELATIONS}; got {correlation!r}")
    c = check_codes(codes).astype(np.float64)
    z = check_factors(latents, len(c), name="latents").astype(np.float64)
    if correlation == "spearman":
        c, z = rankdata(c, axis=0), rankdata(z, axis=0)
    corr = correlation_matrix(c, z)
    rows, cols = linear_sum_assignment(-np.abs(corr))
    matched = np.abs(corr[rows, cols])
    return {
        "mcc": float(matched.mean()),
        "matching": [(int(r), int(k)) for r, k in zip(rows, cols, strict=True)],
        "matched_correlations": matched.tolist(),
        "correlations": corr.tolist(),
        "correlation": correlation,
    }
