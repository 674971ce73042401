"""Shared metric helpers: input checks, histogram discretisation, discrete MI and entropy.

Each helper reproduces disentanglement_lib's ``evaluation/metrics/utils.py`` on (N, D) arrays
(the reference works on (D, N)); the MI matrix is a vectorised form of
``sklearn.metrics.mutual_info_score`` applied to every pair of columns.
"""

import math
import warnings
from typing import Any

import numpy as np

from untwine.errors import UntwineError


def check_codes(codes, name: str = "codes") -> np.ndarray:
    """Return ``codes`` as a finite real (N, D) array, N >= 2, D >= 1; its dtype is kept."""
    arr = _as_real_matrix(codes, name, "(num_points, num_codes)")
    if arr.shape[0] < 2 or arr.shape[1] < 1:
        raise UntwineError(
            f"{name} has shape {arr.shape}; metrics need at least 2 points and 1 code dimension."
        )
    return arr


def check_factors(factors, num_points: int, name: str = "factors") -> np.ndarray:
    """Return ``factors`` as a finite real (N, K) array with the codes' N rows; dtype is kept."""
    arr = _as_real_matrix(factors, name, "(num_points, num_factors)")
    if arr.shape[0] != num_points:
        raise UntwineError(
            f"{name} has {arr.shape[0]} rows but the codes have {num_points}; pass the factors "
            "of exactly the points that were encoded, in the same order."
        )
    if arr.shape[1] < 1:
        raise UntwineError(f"{name} has no columns; pass at least one factor.")
    return arr


def check_class_labels(factors: np.ndarray, name: str) -> None:
    """Raise unless every factor value is an integer class index (classifiers need classes)."""
    if factors.dtype.kind == "f" and (np.round(factors) != factors).any():
        raise UntwineError(
            f"{name} holds non-integer values; classifier-based metrics need factor classes "
            "(integers 0..size-1). Pass class indices, or continuous_factors=True for SAP."
        )


def check_same_width(train: np.ndarray, test: np.ndarray, what: str) -> None:
    """Raise unless train and test arrays have the same number of columns."""
    if train.shape[1] != test.shape[1]:
        raise UntwineError(
            f"{what}: train has {train.shape[1]} columns but test has {test.shape[1]}; "
            "train and test must come from the same encoder and factor space."
        )


def check_train_test(
    codes_train: Any, factors_train: Any, codes_test: Any, factors_test: Any, classes: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate a train/test split of codes and factors; ``classes`` also requires class
    indices (for the metrics that fit classifiers). Returns the four checked arrays."""
    codes_train = check_codes(codes_train, "codes_train")
    factors_train = check_factors(factors_train, codes_train.shape[0], "factors_train")
    codes_test = check_codes(codes_test, "codes_test")
    factors_test = check_factors(factors_test, codes_test.shape[0], "factors_test")
    check_same_width(codes_train, codes_test, "codes")
    check_same_width(factors_train, factors_test, "factors")
    if classes:
        check_class_labels(factors_train, "factors_train")
        check_class_labels(factors_test, "factors_test")
    return codes_train, factors_train, codes_test, factors_test


def check_num_bins(num_bins: int) -> int:
    """Return ``num_bins`` as an int >= 1."""
    if isinstance(num_bins, bool) or int(num_bins) != num_bins or num_bins < 1:
        raise UntwineError(f"num_bins must be a positive integer; got {num_bins!r}.")
    return int(num_bins)


def _as_real_matrix(x, name: str, layout: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iuf":
        raise UntwineError(f"{name} must hold real numbers; got dtype {arr.dtype}.")
    if arr.ndim != 2:
        raise UntwineError(
            f"{name} must be a 2-D array {layout}; got shape {arr.shape}. "
            "Reshape a single column with x.reshape(-1, 1)."
        )
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise UntwineError(
                f"{name} contains {int(bad.sum())} NaN or infinite values (first at row {row}, "
                f"column {col}); fix the encoder or drop those points before scoring."
            )
    return arr


def varying_columns(x: np.ndarray) -> np.ndarray:
    """Boolean mask of the columns of ``x`` whose values are not all equal."""
    return x.max(axis=0) > x.min(axis=0)


def keep_varying_factors(factors: np.ndarray, metric: str) -> np.ndarray:
    """Mask of factors taking more than one value; warns on the others, raises if none vary."""
    varying = varying_columns(factors)
    if not varying.any():
        raise UntwineError(
            f"{metric}: every factor takes a single value, so the score is undefined; "
            "sample points over the factor grid (e.g. FactorDataset.sample_factors)."
        )
    if not varying.all():
        skipped = np.flatnonzero(~varying).tolist()
        warnings.warn(
            f"{metric}: factors {skipped} take a single value and are left out of the mean.",
            stacklevel=3,
        )
    return varying


def histogram_discretize(x: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Bin each column into ``num_bins`` equal-width bins over its own min..max (labels 1..bins).

    Exactly disentanglement_lib's ``_histogram_discretize``: edges from
    ``np.histogram(column, num_bins)``, then ``np.digitize(column, edges[:-1])``; the result
    has the input's dtype, as the reference's ``np.zeros_like`` does.
    """
    out = np.zeros_like(x)
    for j in range(x.shape[1]):
        column = x[:, j]
        out[:, j] = np.digitize(column, np.histogram_bin_edges(column, num_bins)[:-1])
    return out


def _dense_labels(column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels 0..c-1 of the distinct values of ``column`` and the count of each."""
    _, labels, counts = np.unique(column, return_inverse=True, return_counts=True)
    return labels.reshape(-1).astype(np.int64), counts.astype(np.int64)


def _mi_terms(joint: np.ndarray, count_a: np.ndarray, count_b: np.ndarray, n: int) -> np.ndarray:
    """sklearn's per-cell MI terms (non-zero contingency cells), with its |term| < eps cut."""
    log_n = math.log(n)
    share = joint / n
    log_outer = -np.log(count_a * count_b) + log_n + log_n
    terms = share * (np.log(joint) - log_n) + share * log_outer
    return np.where(np.abs(terms) < np.finfo(terms.dtype).eps, 0.0, terms)


def discrete_mutual_info(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MI (nats) between every column of ``a`` (N, D) and of ``b`` (N, K): a (D, K) matrix.

    Entry [i, j] equals ``sklearn.metrics.mutual_info_score(b[:, j], a[:, i])`` (to round-off),
    computed from one bincount per column of ``a`` over all columns of ``b`` at once.
    """
    n = a.shape[0]
    labels_b, counts_b = zip(*(_dense_labels(b[:, j]) for j in range(b.shape[1])), strict=True)
    sizes_b = np.array([len(c) for c in counts_b], dtype=np.int64)
    labels_b = np.stack(labels_b, axis=1)
    b_offsets = np.concatenate([[0], np.cumsum(sizes_b)])
    flat_counts_b = np.concatenate(counts_b)
    mi = np.zeros((a.shape[1], b.shape[1]))
    for i in range(a.shape[1]):
        labels_a, counts_a = _dense_labels(a[:, i])
        if len(counts_a) == 1:
            continue
        cells = len(counts_a) * sizes_b
        offsets = np.concatenate([[0], np.cumsum(cells)])
        index = labels_a[:, None] * sizes_b[None, :] + labels_b + offsets[None, :-1]
        joint = np.bincount(index.ravel(), minlength=offsets[-1])
        cell = np.flatnonzero(joint)
        factor = np.searchsorted(offsets, cell, side="right") - 1
        local = cell - offsets[factor]
        row, col = np.divmod(local, sizes_b[factor])
        terms = _mi_terms(joint[cell], counts_a[row], flat_counts_b[b_offsets[factor] + col], n)
        mi[i] = np.clip(np.bincount(factor, weights=terms, minlength=b.shape[1]), 0.0, None)
    mi[:, sizes_b == 1] = 0.0
    return mi


def discrete_entropy(b: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each column of ``b`` (N, K), as ``mutual_info_score(y, y)`` computes it."""
    n = b.shape[0]
    entropy = np.zeros(b.shape[1])
    for j in range(b.shape[1]):
        _, counts = _dense_labels(b[:, j])
        if len(counts) > 1:
            entropy[j] = max(float(_mi_terms(counts, counts, counts, n).sum()), 0.0)
    return entropy
