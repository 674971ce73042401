"""Unsupervised scores (total correlation, Wasserstein correlation, MI), as disentanglement_lib."""

import warnings

import numpy as np
import scipy.linalg

from untwine.metrics.utils import (
    check_codes,
    check_num_bins,
    discrete_mutual_info,
    histogram_discretize,
    varying_columns,
)


def unsupervised(codes, num_bins: int = 20) -> dict:
    """Label-free scores of how statistically independent the code dimensions are.

    Parameters
    ----------
    codes : array of shape (N, D)
        Representations of N points.
    num_bins : int, default=20
        Equal-width histogram bins per code dimension for the mutual information.

    Returns
    -------
    dict
        ``{"gaussian_total_correlation", "gaussian_wasserstein_correlation",
        "gaussian_wasserstein_correlation_norm", "mutual_info_score": float,
        "params": {"num_bins", "num_train"}}``.

    Notes
    -----
    With Σ the sample covariance of the codes (``np.cov``, ddof=1) and diag(Σ) its diagonal:

    - Gaussian total correlation, KL(N(0, Σ) || N(0, diag Σ)):
      ``0.5 * (Σ_d log Σ_dd - log det Σ)``; 0 for independent codes, +inf if the codes are
      exactly collinear.
    - Gaussian Wasserstein correlation, the squared 2-Wasserstein distance between N(0, Σ)
      and N(0, diag Σ): ``2 tr Σ - 2 tr sqrtm(Σ · diag(Σ)[:, None])``
      (``scipy.linalg.sqrtm``); ``_norm`` divides it by ``tr Σ``.
    - ``mutual_info_score``: the mean over ordered pairs d != d' of the discrete MI (nats,
      ``sklearn.metrics.mutual_info_score``) between histogram-discretised codes.

    Identical to the reference on every input it defines (the covariance is the reference's own
    ``np.cov`` of all codes). Where it does not: codes with exactly zero variance are left out of
    the total correlation (they are independent of the rest and add 0; the reference returns
    NaN), and of the Wasserstein term only if ``sqrtm`` fails on the singular matrix; with fewer
    than two codes that take more than one value the three covariance scores are 0, and with
    D = 1 the MI score is 0 (the reference fails).

    References
    ----------
    Locatello et al. (2019). Challenging Common Assumptions in the Unsupervised Learning of
    Disentangled Representations. ICML. https://arxiv.org/abs/1811.12359
    disentanglement_lib: ``evaluation/metrics/unsupervised_metrics.py``
    (``unsupervised_metrics``), study defaults ``num_train=10000``, ``discretizer.num_bins=20``.
    """
    codes = check_codes(codes)
    num_bins = check_num_bins(num_bins)
    num_codes = codes.shape[1]
    active = varying_columns(codes)
    scores = {
        "gaussian_total_correlation": 0.0,
        "gaussian_wasserstein_correlation": 0.0,
        "gaussian_wasserstein_correlation_norm": 0.0,
        "mutual_info_score": 0.0,
    }
    if active.sum() >= 2:
        cov = np.cov(codes.T)
        positive = np.diag(cov) > 0
        reduced = cov if positive.all() else cov[positive][:, positive]
        with warnings.catch_warnings():
            # zero-variance codes make cov singular; sqrtm still handles their zero block
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            wasserstein = gaussian_wasserstein_correlation(cov)
        if not np.isfinite(wasserstein):
            wasserstein = gaussian_wasserstein_correlation(reduced)
        scores["gaussian_total_correlation"] = gaussian_total_correlation(reduced)
        scores["gaussian_wasserstein_correlation"] = wasserstein
        scores["gaussian_wasserstein_correlation_norm"] = float(wasserstein / np.sum(np.diag(cov)))
    if num_codes >= 2:
        discrete = histogram_discretize(codes, num_bins)
        mi = discrete_mutual_info(discrete, discrete)
        np.fill_diagonal(mi, 0)
        scores["mutual_info_score"] = float(np.sum(mi) / (num_codes**2 - num_codes))
    scores["params"] = {"num_bins": num_bins, "num_train": int(codes.shape[0])}
    return scores


def gaussian_total_correlation(cov: np.ndarray) -> float:
    """KL divergence between N(0, cov) and the product of its marginals (nats)."""
    return float(0.5 * (np.sum(np.log(np.diag(cov))) - np.linalg.slogdet(cov)[1]))


def gaussian_wasserstein_correlation(cov: np.ndarray) -> float:
    """Squared 2-Wasserstein distance between N(0, cov) and N(0, diag cov)."""
    sqrtm = scipy.linalg.sqrtm(cov * np.expand_dims(np.diag(cov), axis=1))
    return float(np.real(2 * np.trace(cov) - 2 * np.trace(sqrtm)))
