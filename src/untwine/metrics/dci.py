"""DCI: disentanglement, completeness and informativeness (Eastwood & Williams, ICLR 2018).

As disentanglement_lib's ``dci.compute_importance_gbt``: per factor, one sklearn
``GradientBoostingClassifier()`` with its defaults on the raw codes; the importance matrix
R[d, k] = |feature_importances_|; D and C are importance-weighted one-minus-entropies.

Backends: ``exact`` refits that classifier with :class:`untwine.metrics.gbt.ExactGradientBoosting`
(features sorted once, shared by every factor; scikit-learn's trees and tie-breaking of
``random_state=0`` reproduced), ``sklearn`` calls scikit-learn's own
``GradientBoostingClassifier(random_state=0)``, ``fast`` is histogram boosting (not DCI).
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from joblib import Parallel, delayed, parallel_config
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier

from untwine.errors import UntwineError
from untwine.metrics.gbt import ExactGradientBoosting, presort
from untwine.metrics.utils import check_train_test

BACKENDS = ("exact", "sklearn", "fast")
_EPS = 1e-11


def _entropy_along(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy of each column of p + 1e-11, normalised to sum 1, in base ``base``.

    The 1e-11 is the reference's (scipy.stats.entropy(importance + 1e-11, base=n)); a single
    outcome (base 1) has entropy 0 instead of the reference's 0/0.
    """
    q = p + _EPS
    q = q / q.sum(axis=0, keepdims=True)
    h = -np.sum(q * np.log(q), axis=0)
    return h / np.log(base) if base > 1 else np.zeros_like(h)


def disentanglement_completeness(importance_matrix: np.ndarray) -> dict[str, float]:
    """D and C from an importance matrix R (codes × factors), as disentanglement_lib defines them.

    D = Σ_d ρ_d (1 − H_K(R[d, :] / Σ_k R[d, k])), ρ_d = Σ_k R[d, k] / Σ R;
    C = Σ_k ρ_k (1 − H_D(R[:, k] / Σ_d R[d, k])), ρ_k = Σ_d R[d, k] / Σ R.
    An all-zero matrix scores 0 for both.
    """
    r = np.abs(np.asarray(importance_matrix, dtype=np.float64))
    if r.ndim != 2 or r.size == 0:
        raise UntwineError(f"importance matrix must be 2-D (codes, factors); got {r.shape}")
    total = r.sum()
    if total == 0.0:
        return {"disentanglement": 0.0, "completeness": 0.0}
    num_codes, num_factors = r.shape
    per_code = 1.0 - _entropy_along(r.T, num_factors)
    per_factor = 1.0 - _entropy_along(r, num_codes)
    return {
        "disentanglement": float(np.sum(per_code * r.sum(axis=1) / total)),
        "completeness": float(np.sum(per_factor * r.sum(axis=0) / total)),
    }


def _fit_sklearn(x_train: np.ndarray, y_train: np.ndarray, random_state: int = 0):
    """sklearn's default gradient boosting; random_state only breaks ties between equal splits."""
    model = GradientBoostingClassifier(random_state=random_state).fit(x_train, y_train)
    return model, np.abs(model.feature_importances_)


def _fit_fast(x_train: np.ndarray, y_train: np.ndarray, random_state: int = 0):
    """Histogram gradient boosting shaped like the default GBC, with GBC's impurity importance.

    100 iterations, learning rate 0.1, depth ≤ 3, one sample per leaf allowed, no early
    stopping: the default ``GradientBoostingClassifier`` ensemble, with splits searched over
    255 quantile bins instead of every threshold. The importance is computed as GBC defines it,
    on these trees: each split's decrease of the squared error of the residuals it was fitted
    to, summed per feature and normalised (see :func:`_impurity_importance`).
    """
    model = HistGradientBoostingClassifier(
        max_iter=100,
        learning_rate=0.1,
        max_depth=3,
        max_leaf_nodes=8,
        min_samples_leaf=1,
        l2_regularization=0.0,
        early_stopping=False,
        random_state=random_state,
    ).fit(x_train, y_train)
    return model, _impurity_importance(model, x_train, y_train)


def _impurity_importance(model: HistGradientBoostingClassifier, x: np.ndarray, y: np.ndarray):
    """GBC's ``feature_importances_`` definition evaluated on a fitted HistGradientBoosting model.

    Replays the boosting on the training data: before each iteration the residuals are
    onehot(y) − softmax(raw) (y − sigmoid(raw) for two classes); every split adds
    G_L²/n_L + G_R²/n_R − G²/n (G: sum of residuals in the node) to its feature, which is the
    weighted decrease of the squared-error impurity that sklearn's trees report.
    """
    binned = model._bin_mapper.transform(np.asarray(x, dtype=np.float64))
    num_trees = model.n_trees_per_iteration_
    if num_trees == 1:
        target = (y == model.classes_[1]).astype(np.float64)[:, None]
    else:
        target = (y[:, None] == model.classes_[None, :]).astype(np.float64)
    raw = np.zeros((len(x), num_trees)) + np.asarray(model._baseline_prediction).reshape(1, -1)
    importance = np.zeros(x.shape[1])
    for trees in model._predictors:
        if num_trees == 1:
            prob = 1.0 / (1.0 + np.exp(-raw))
        else:
            shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
            prob = shifted / shifted.sum(axis=1, keepdims=True)
        residual = target - prob
        for k, tree in enumerate(trees):
            _walk(tree.nodes, binned, residual[:, k], raw[:, k], importance)
    total = importance.sum()
    return importance / total if total > 0 else importance


def _walk(nodes, binned, residual, raw_k, importance) -> None:
    """Route the samples down one tree: add split impurity decreases, and leaf values to raw."""
    stack = [(0, np.arange(len(binned)))]
    while stack:
        node, idx = stack.pop()
        if nodes["is_leaf"][node]:
            raw_k[idx] += nodes["value"][node]
            continue
        feature = nodes["feature_idx"][node]
        left = binned[idx, feature] <= nodes["bin_threshold"][node]
        idx_l, idx_r = idx[left], idx[~left]
        g_l, g_r = residual[idx_l].sum(), residual[idx_r].sum()
        g = g_l + g_r
        decrease = g_l**2 / max(len(idx_l), 1) + g_r**2 / max(len(idx_r), 1) - g**2 / len(idx)
        importance[feature] += decrease
        stack.append((nodes["left"][node], idx_l))
        stack.append((nodes["right"][node], idx_r))


def _one_factor(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    backend: str,
    random_state: int = 0,
) -> tuple[np.ndarray, float, float]:
    """Importance of each code for one factor, and the train / test accuracy of its classifier."""
    if np.unique(y_train).size < 2:
        # A single-valued factor: predicting it is trivial and no code carries it.
        only = y_train[0]
        return np.zeros(x_train.shape[1]), 1.0, float(np.mean(y_test == only))
    fit = _fit_sklearn if backend == "sklearn" else _fit_fast
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model, importance = fit(x_train, y_train, random_state)
    train_acc = float(np.mean(model.predict(x_train) == y_train))
    test_acc = float(np.mean(model.predict(x_test) == y_test))
    return importance, train_acc, test_acc


def _one_factor_exact(x_train, y_train, x_test, y_test, sorted_codes, random_state=0):
    """As :func:`_one_factor` with the presorted exact engine."""
    if np.unique(y_train).size < 2:
        return np.zeros(x_train.shape[1]), 1.0, float(np.mean(y_test == y_train[0]))
    model = ExactGradientBoosting(random_state=random_state).fit(
        x_train, y_train, presorted=sorted_codes
    )
    train_acc = float(np.mean(model.predict_train() == y_train))
    test_acc = float(np.mean(model.predict(x_test) == y_test))
    return np.abs(model.feature_importances_), train_acc, test_acc


def worker_threads(jobs: int) -> object:
    """joblib's setting that gives each of ``jobs`` worker processes its share of the cores in
    OpenMP/BLAS threads. Without it a worker inherits ``OMP_NUM_THREADS`` from the parent (Ray sets
    it to a task's CPU count), and 2 workers × 2 HistGradientBoosting threads on 2 cores ran
    the fast DCI 13× slower (81 s against 6 s)."""
    share = max(1, (os.cpu_count() or 1) // jobs)
    return parallel_config(backend="loky", inner_max_num_threads=share)


def importance_matrix(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    backend: str = "exact",
    n_jobs: int | None = None,
    random_state: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R (codes × factors), and per-factor train / test accuracies; factors fitted in parallel."""
    if backend not in BACKENDS:
        raise UntwineError(f"unknown DCI backend {backend!r}; choose one of {BACKENDS}")
    num_factors = factors_train.shape[1]
    # Largest factors first, so the slowest fits start early (longest-processing-time order).
    order = sorted(range(num_factors), key=lambda k: -np.unique(factors_train[:, k]).size)
    jobs = n_jobs if n_jobs is not None else (os.cpu_count() or 1)
    jobs = max(1, min(jobs, num_factors))
    if backend == "exact":
        # One sort of the codes serves every factor; the compiled fits release the GIL.
        sorted_codes = presort(codes_train)
        with ThreadPoolExecutor(jobs) as pool:
            out = list(
                pool.map(
                    lambda k: _one_factor_exact(
                        codes_train,
                        factors_train[:, k],
                        codes_test,
                        factors_test[:, k],
                        sorted_codes,
                        random_state,
                    ),
                    order,
                )
            )
    else:
        with worker_threads(jobs):
            out = Parallel(n_jobs=jobs)(
                delayed(_one_factor)(
                    codes_train,
                    factors_train[:, k],
                    codes_test,
                    factors_test[:, k],
                    backend,
                    random_state,
                )
                for k in order
            )
    importance = np.zeros((codes_train.shape[1], num_factors))
    train_acc = np.zeros(num_factors)
    test_acc = np.zeros(num_factors)
    for k, (imp, tr, te) in zip(order, out, strict=True):
        importance[:, k], train_acc[k], test_acc[k] = imp, tr, te
    return importance, train_acc, test_acc


def dci(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    backend: str = "exact",
    n_jobs: int | None = None,
    random_state: int = 0,
) -> dict:
    """DCI scores of codes (N, D) against integer factor classes (N, K).

    ``backend="exact"`` is disentanglement_lib's definition (one default
    ``GradientBoostingClassifier`` per factor), computed by the presorted engine of
    :mod:`untwine.metrics.gbt`; ``backend="sklearn"`` runs scikit-learn's own classifier
    (same numbers, up to splits that tie to the last bit); ``backend="fast"`` swaps in
    histogram gradient boosting with the same shape and gain importances, and is reported as
    such, never as DCI.
    Keys: ``informativeness_train``, ``informativeness_test`` (mean accuracy over factors),
    ``disentanglement``, ``completeness``, plus ``backend`` and ``params``. ``n_jobs``
    defaults to the number of cores. ``random_state`` seeds the classifiers: it only breaks
    ties between equally good splits (the reference passes none, so its DCI moves with such
    ties from run to run; a fixed seed makes it repeatable).
    """
    ctr, ftr, cte, fte = check_train_test(
        codes_train, factors_train, codes_test, factors_test, classes=True
    )
    importance, train_acc, test_acc = importance_matrix(
        ctr, ftr, cte, fte, backend, n_jobs, random_state
    )
    return {
        "informativeness_train": float(np.mean(train_acc)),
        "informativeness_test": float(np.mean(test_acc)),
        **disentanglement_completeness(importance),
        "backend": backend,
        "params": {
            "backend": backend,
            "num_train": len(ctr),
            "num_test": len(cte),
            "random_state": int(random_state),
        },
    }
