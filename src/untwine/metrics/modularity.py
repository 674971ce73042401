"""Modularity and explicitness (Ridgeway & Mozer), exactly as disentanglement_lib computes them."""

import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from untwine.errors import UntwineError
from untwine.metrics.utils import (
    check_num_bins,
    check_train_test,
    discrete_mutual_info,
    histogram_discretize,
    keep_varying_factors,
)


def modularity_explicitness(
    codes_train, factors_train, codes_test, factors_test, num_bins: int = 20
) -> dict:
    """Modularity (each code informs about one factor) and explicitness (factors are linear).

    Parameters
    ----------
    codes_train, codes_test : arrays of shape (N, D) and (M, D)
        Representations of the training and test points.
    factors_train, factors_test : arrays of shape (N, K) and (M, K)
        Ground-truth factor classes of the same points.
    num_bins : int, default=20
        Equal-width histogram bins per code dimension for the mutual information.

    Returns
    -------
    dict
        ``{"modularity_score", "explicitness_score_train", "explicitness_score_test": float,
        "params": {"num_bins", "num_train", "num_test"}}``.

    Notes
    -----
    Modularity: ``modularity(I)`` of the discrete MI matrix ``I`` (D, K) of the histogram-
    discretised training codes (see :func:`modularity`).

    Explicitness: codes are standardised with the training mean and std (population, ddof=0);
    per factor, a default ``sklearn.linear_model.LogisticRegression()`` is fitted on all codes
    and scored by the one-vs-rest ROC-AUC of ``predict_proba``, macro-averaged over the
    factor's classes (the reference's ``MultiLabelBinarizer`` + ``roc_auc_score``), on the
    training and on the test points; the scores are averaged over factors.

    Identical to the reference on every input it defines. Where it does not: a code with zero
    training std is centred but not scaled (the reference divides by 0); a factor taking a
    single training value is left out of the explicitness means with a warning (the reference
    fails), and if no factor varies an ``UntwineError`` is raised; a class absent from the test
    set is left out of that factor's test ROC-AUC (the reference fails or returns NaN), and
    test classes are matched to the classifier's classes by value. The classifier is called
    exactly as the reference calls it, so results follow the installed scikit-learn: its
    ``LogisticRegression()`` default is now lbfgs multinomial, whereas the study (scikit-learn
    0.20) ran liblinear one-vs-rest, so explicitness values can differ from published ones.

    References
    ----------
    Ridgeway, Mozer (2018). Learning Deep Disentangled Embeddings With the F-Statistic Loss.
    NeurIPS. https://arxiv.org/abs/1802.05312
    disentanglement_lib: ``evaluation/metrics/modularity_explicitness.py``
    (``compute_modularity_explicitness``), study defaults ``num_train=10000``,
    ``num_test=5000``, ``discretizer.num_bins=20``.
    """
    codes_train, factors_train, codes_test, factors_test = check_train_test(
        codes_train, factors_train, codes_test, factors_test, classes=True
    )
    num_bins = check_num_bins(num_bins)
    mi = discrete_mutual_info(histogram_discretize(codes_train, num_bins), factors_train)
    varying = keep_varying_factors(factors_train, "explicitness")
    train_scores, test_scores = [], []
    x_train, x_test = _standardise(codes_train, codes_test)
    for k in np.flatnonzero(varying):
        train_auc, test_auc = explicitness_per_factor(
            x_train, factors_train[:, k], x_test, factors_test[:, k]
        )
        train_scores.append(train_auc)
        if test_auc is not None:
            test_scores.append(test_auc)
    if not test_scores:
        raise UntwineError(
            "explicitness: every factor takes a single value in the test set, so the test "
            "ROC-AUC is undefined; sample test points over the factor grid."
        )
    if len(test_scores) < len(train_scores):
        warnings.warn(
            "explicitness: factors with a single test value are left out of the test mean.",
            stacklevel=2,
        )
    return {
        "modularity_score": modularity(mi),
        "explicitness_score_train": float(np.mean(train_scores)),
        "explicitness_score_test": float(np.mean(test_scores)),
        "params": {
            "num_bins": num_bins,
            "num_train": int(codes_train.shape[0]),
            "num_test": int(codes_test.shape[0]),
        },
    }


def modularity(mutual_information) -> float:
    """Modularity of a (D, K) code-by-factor mutual information matrix.

    For each code d with MI row θ over the K factors::

        m_d = 1 - (Σ_k θ_k² - max_k θ_k²) / (max_k θ_k² · (K - 1)),   m_d = 0 if max θ = 0

    and the score is the mean of m_d over codes. With K = 1 (the reference divides by 0) a code
    with any information is perfectly modular, m_d = 1.
    Reference: disentanglement_lib ``modularity_explicitness.modularity``.
    """
    squared = np.square(np.asarray(mutual_information, dtype=np.float64))
    top = np.max(squared, axis=1)
    informative = top != 0.0
    score = np.zeros(squared.shape[0])
    if squared.shape[1] == 1:
        score[informative] = 1.0
    else:
        rest = np.sum(squared, axis=1) - top
        score[informative] = 1.0 - rest[informative] / (top[informative] * (squared.shape[1] - 1.0))
    return float(np.mean(score))


def explicitness_per_factor(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray
) -> tuple[float, float | None]:
    """Train and test one-vs-rest ROC-AUC of a default LogisticRegression (None: undefined)."""
    classifier = LogisticRegression().fit(x_train, y_train)
    train_auc = _macro_roc_auc(y_train, classifier.predict_proba(x_train), classifier.classes_)
    test_auc = _macro_roc_auc(y_test, classifier.predict_proba(x_test), classifier.classes_)
    return train_auc, test_auc


def _macro_roc_auc(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float | None:
    """Mean over classes of the binary ROC-AUC of class c vs rest, over classes where defined."""
    scores = []
    for c, label in enumerate(classes):
        positive = (y == label).astype(np.int64)
        if 0 < positive.sum() < len(positive):
            scores.append(roc_auc_score(positive, proba[:, c]))
    return float(np.average(scores)) if scores else None


def _standardise(codes_train: np.ndarray, codes_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes standardised with the train mean/std, in the reference's (D, N) arithmetic."""
    mus_train, mus_test = codes_train.T, codes_test.T
    mean = np.mean(mus_train, axis=1)
    std = np.std(mus_train, axis=1)
    std = np.where(std == 0, np.ones_like(std), std)
    train = (mus_train - mean[:, np.newaxis]) / std[:, np.newaxis]
    test = (mus_test - mean[:, np.newaxis]) / std[:, np.newaxis]
    return np.transpose(train), np.transpose(test)
