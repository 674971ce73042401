"""Separated Attribute Predictability (SAP), exactly as disentanglement_lib computes it."""

import numpy as np
from sklearn.svm import LinearSVC

from untwine.metrics.utils import check_train_test, keep_varying_factors


def sap(
    codes_train, factors_train, codes_test, factors_test, continuous_factors: bool = False
) -> dict:
    """SAP score: the mean gap between the two codes that best predict each factor.

    Parameters
    ----------
    codes_train, codes_test : arrays of shape (N, D) and (M, D)
        Representations of the training and test points.
    factors_train, factors_test : arrays of shape (N, K) and (M, K)
        Ground-truth factor classes of the same points (the test set is only used for
        discrete factors).
    continuous_factors : bool, default=False
        Score with squared correlations (True) instead of classifiers (False, the study).

    Returns
    -------
    dict
        ``{"SAP_score": float, "params": {"continuous_factors", "num_train", "num_test"}}``.

    Notes
    -----
    Score matrix ``S[d, k]``: for discrete factors, the test accuracy of
    ``sklearn.svm.LinearSVC(C=0.01, class_weight="balanced")`` trained on code d alone to
    predict factor k; for continuous factors, ``cov(z_d, v_k)^2 / (var z_d var v_k)`` on the
    training points (ddof=1), 0 when ``var z_d <= 1e-12``. Then::

        SAP = mean_k (S[d1(k), k] - S[d2(k), k])

    with d1(k), d2(k) the best and second-best codes for factor k. Identical to the reference on
    every input it defines. Where it does not: a factor taking a single training value (the
    reference fails or returns NaN) is left out of the mean with a warning, and if no factor
    varies an ``UntwineError`` is raised; with one code dimension (D = 1) the second-best score
    is taken as 0. ``LinearSVC`` is called exactly as the reference calls it, so results follow
    the installed scikit-learn (since 1.5 its ``dual="auto"`` picks the deterministic primal
    solver here; the study ran the seed-dependent dual solver of its time).

    References
    ----------
    Kumar, Sattigeri, Balakrishnan (2018). Variational Inference of Disentangled Latent Concepts
    from Unlabeled Observations. ICLR. https://openreview.net/forum?id=H1kG7GZAW
    disentanglement_lib: ``evaluation/metrics/sap_score.py`` (``compute_sap``), study defaults
    ``num_train=10000``, ``num_test=5000``, ``continuous_factors=False``.
    """
    codes_train, factors_train, codes_test, factors_test = check_train_test(
        codes_train, factors_train, codes_test, factors_test, classes=not continuous_factors
    )
    varying = keep_varying_factors(factors_train, "SAP")
    scores = score_matrix(
        codes_train, factors_train, codes_test, factors_test, varying, bool(continuous_factors)
    )
    ranked = np.sort(scores, axis=0)
    second = ranked[-2] if scores.shape[0] > 1 else np.zeros(scores.shape[1])
    return {
        "SAP_score": float(np.mean((ranked[-1] - second)[varying])),
        "params": {
            "continuous_factors": bool(continuous_factors),
            "num_train": int(codes_train.shape[0]),
            "num_test": int(codes_test.shape[0]),
        },
    }


def score_matrix(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    varying: np.ndarray,
    continuous_factors: bool,
) -> np.ndarray:
    """SAP's (D, K) matrix: per-code predictability of each factor (0 for non-varying factors)."""
    scores = np.zeros((codes_train.shape[1], factors_train.shape[1]))
    for d in range(codes_train.shape[1]):
        z = codes_train[:, d]
        for k in np.flatnonzero(varying):
            y = factors_train[:, k]
            if continuous_factors:
                cov = np.cov(z, y, ddof=1)
                if cov[0, 0] > 1e-12:
                    scores[d, k] = cov[0, 1] ** 2 * 1.0 / (cov[0, 0] * cov[1, 1])
            else:
                classifier = LinearSVC(C=0.01, class_weight="balanced")
                classifier.fit(z[:, np.newaxis], y)
                predicted = classifier.predict(codes_test[:, d][:, np.newaxis])
                scores[d, k] = np.mean(predicted == factors_test[:, k])
    return scores
