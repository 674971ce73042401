"""Mutual Information Gap (MIG), exactly as disentanglement_lib computes it."""

import numpy as np

from untwine.metrics.utils import (
    check_codes,
    check_factors,
    check_num_bins,
    discrete_entropy,
    discrete_mutual_info,
    histogram_discretize,
    keep_varying_factors,
)


def mig(codes, factors, num_bins: int = 20) -> dict:
    """Mutual Information Gap of codes with respect to ground-truth factors.

    Parameters
    ----------
    codes : array of shape (N, D)
        Representations (the encoder mean in the study) of N points.
    factors : array of shape (N, K)
        Ground-truth factor classes (integers 0..size-1) of the same points.
    num_bins : int, default=20
        Equal-width histogram bins per code dimension.

    Returns
    -------
    dict
        ``{"discrete_mig": float, "params": {"num_bins", "num_train"}}``.

    Notes
    -----
    Each code dimension is discretised into ``num_bins`` equal-width bins over its own range
    (``np.histogram`` edges, then ``np.digitize`` with the edges but the last). With the
    discrete mutual information matrix ``I[d, k] = MI(z_d; v_k)`` (nats,
    ``sklearn.metrics.mutual_info_score``) and the factor entropies ``H[k] = MI(v_k; v_k)``::

        MIG = mean_k (I[d1(k), k] - I[d2(k), k]) / H[k]

    where d1(k), d2(k) are the codes with the largest and second-largest MI with factor k.
    Identical to the reference on every input it defines. Where it does not: a factor taking a
    single value (H = 0, the reference returns NaN) is left out of the mean with a warning, and
    if no factor varies an ``UntwineError`` is raised; with a single code dimension (D = 1, the
    reference fails) the second-largest MI is taken as 0.

    References
    ----------
    Chen, Li, Grosse, Duvenaud (2018). Isolating Sources of Disentanglement in Variational
    Autoencoders. NeurIPS. https://arxiv.org/abs/1802.04942
    disentanglement_lib: ``evaluation/metrics/mig.py`` (``compute_mig``), study default
    ``num_train=10000``, ``discretizer.num_bins=20``.
    """
    codes = check_codes(codes)
    factors = check_factors(factors, codes.shape[0])
    num_bins = check_num_bins(num_bins)
    varying = keep_varying_factors(factors, "MIG")
    mi = discrete_mutual_info(histogram_discretize(codes, num_bins), factors)
    entropy = discrete_entropy(factors)
    sorted_mi = np.sort(mi, axis=0)[::-1]
    second = sorted_mi[1] if mi.shape[0] > 1 else np.zeros(mi.shape[1])
    gap = np.divide((sorted_mi[0] - second)[varying], entropy[varying])
    return {
        "discrete_mig": float(np.mean(gap)),
        "params": {"num_bins": num_bins, "num_train": int(codes.shape[0])},
    }
