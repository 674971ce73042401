"""The BetaVAE score (Higgins et al., ICLR 2017), as disentanglement_lib's ``beta_vae_sklearn``.

One point: draw a factor k uniformly, two batches of ``batch_size`` factor vectors, copy factor k
of the first batch into the second; the feature is the mean over the pairs of |r(x1) − r(x2)|
and the label is k. A default ``LogisticRegression`` (``random_state`` = the RandomState)
trained on ``num_train`` points is scored on ``num_eval`` fresh points.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from untwine.data.base import FactorDataset
from untwine.metrics.sampling import CodeCache, Represent, as_cache

_CHUNK = 1024
"""Points whose codes are looked up at once (bounds memory for wide codes)."""


def draw_pairs(
    dataset: FactorDataset, batch_size: int, num_points: int, random_state: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference's draws: labels (n,), factors of both batches (n, batch_size, K) each."""
    num_factors = len(dataset.factor_sizes)
    labels = np.zeros(num_points, dtype=np.int64)
    first, second = [], []
    for i in range(num_points):
        k = random_state.randint(num_factors)
        f1 = dataset.sample_factors(batch_size, random_state)
        f2 = dataset.sample_factors(batch_size, random_state)
        f2[:, k] = f1[:, k]
        labels[i] = k
        first.append(f1)
        second.append(f2)
    return labels, np.stack(first), np.stack(second)


def features(
    cache: CodeCache, factors1: np.ndarray, factors2: np.ndarray
) -> np.ndarray:
    """Mean absolute code difference of each pair of batches, (n, D) float64.

    Computed point by point with the reference's expression, so the floating-point result is
    the reference's bit for bit.
    """
    index1, index2 = cache.index(factors1), cache.index(factors2)
    cache.ensure(np.concatenate([index1.ravel(), index2.ravel()]))
    points = None
    for start in range(0, len(index1), _CHUNK):
        c1 = cache.codes(index1[start : start + _CHUNK])
        c2 = cache.codes(index2[start : start + _CHUNK])
        if points is None:
            points = np.zeros((len(index1), c1.shape[-1]))
        for j in range(len(c1)):
            points[start + j, :] = np.mean(np.abs(c1[j] - c2[j]), axis=0)
    return points


def _points(
    dataset: FactorDataset,
    cache: CodeCache,
    batch_size: int,
    num_points: int,
    random_state: np.random.RandomState,
) -> tuple[np.ndarray, np.ndarray]:
    labels, factors1, factors2 = draw_pairs(dataset, batch_size, num_points, random_state)
    return features(cache, factors1, factors2), labels


def beta_vae_score(
    dataset: FactorDataset,
    represent: Represent | CodeCache,
    seed: int = 0,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
    encode_batch_size: int = 1024,
) -> dict:
    """BetaVAE score of ``represent`` on ``dataset``: keys ``train_accuracy``, ``eval_accuracy``.

    Draws from ``numpy.random.RandomState(seed)`` in the reference's order; codes come from a
    :class:`CodeCache` (pass one to share encodings between metrics), so each grid image is
    encoded once instead of 2 · batch_size · (num_train + num_eval) times.
    """
    cache = as_cache(dataset, represent, encode_batch_size)
    random_state = np.random.RandomState(seed)
    train_points, train_labels = _points(dataset, cache, batch_size, num_train, random_state)
    if np.unique(train_labels).size < 2:
        # One factor (or one label drawn): the classifier can only predict it.
        only = train_labels[0]
        eval_points, eval_labels = _points(dataset, cache, batch_size, num_eval, random_state)
        train_accuracy, eval_accuracy = 1.0, np.mean(eval_labels == only)
    else:
        model = LogisticRegression(random_state=random_state)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(train_points, train_labels)
        train_accuracy = np.mean(model.predict(train_points) == train_labels)
        eval_points, eval_labels = _points(dataset, cache, batch_size, num_eval, random_state)
        eval_accuracy = model.score(eval_points, eval_labels)
    return {
        "train_accuracy": float(train_accuracy),
        "eval_accuracy": float(eval_accuracy),
        "params": {
            "seed": seed,
            "batch_size": batch_size,
            "num_train": num_train,
            "num_eval": num_eval,
        },
    }
