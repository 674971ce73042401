"""The FactorVAE score (Kim & Mnih, ICML 2018), as disentanglement_lib's ``factor_vae_score``.

Global variances (ddof=1) of the codes of ``num_variance_estimate`` random images; active dims
have std ≥ ``prune_threshold``. One vote: draw a factor k, a batch of ``batch_size`` factor
vectors sharing one random value of k; the active dim with the least local variance / global
variance votes for k. The classifier maps each dim to its majority factor over the train votes
and is scored on ``num_eval`` fresh votes.
"""

from __future__ import annotations

import numpy as np

from untwine.data.base import FactorDataset
from untwine.metrics.sampling import CodeCache, Represent, as_cache

_CHUNK = 1024


def draw_fixed_factor_batches(
    dataset: FactorDataset, batch_size: int, num_points: int, random_state: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """The reference's draws: fixed factor (n,), batch factors (n, batch_size, K)."""
    num_factors = len(dataset.factor_sizes)
    fixed = np.zeros(num_points, dtype=np.int64)
    batches = []
    for i in range(num_points):
        k = random_state.randint(num_factors)
        factors = dataset.sample_factors(batch_size, random_state)
        factors[:, k] = factors[0, k]
        fixed[i] = k
        batches.append(factors)
    return fixed, np.stack(batches)


def _votes(
    dataset: FactorDataset,
    cache: CodeCache,
    batch_size: int,
    num_points: int,
    random_state: np.random.RandomState,
    global_variances: np.ndarray,
    active: np.ndarray,
) -> np.ndarray:
    """Vote counts (K, D): row = fixed factor, column = position among the active dims."""
    fixed, factors = draw_fixed_factor_batches(dataset, batch_size, num_points, random_state)
    index = cache.index(factors)
    cache.ensure(index)
    votes = np.zeros((len(dataset.factor_sizes), global_variances.shape[0]), dtype=np.int64)
    for start in range(0, num_points, _CHUNK):
        codes = cache.codes(index[start : start + _CHUNK])
        for j in range(len(codes)):
            local_variances = np.var(codes[j], axis=0, ddof=1)
            argmin = np.argmin(local_variances[active] / global_variances[active])
            votes[fixed[start + j], argmin] += 1
    return votes


def _accuracy(votes: np.ndarray, classifier: np.ndarray) -> float:
    return float(np.sum(votes[classifier, np.arange(votes.shape[1])]) / np.sum(votes))


def factor_vae_score(
    dataset: FactorDataset,
    represent: Represent | CodeCache,
    seed: int = 0,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
    num_variance_estimate: int = 10000,
    prune_threshold: float = 0.05,
    encode_batch_size: int = 1024,
) -> dict:
    """FactorVAE score: keys ``train_accuracy``, ``eval_accuracy``, ``num_active_dims``.

    Draws from ``numpy.random.RandomState(seed)`` in the reference's order, with codes from a
    :class:`CodeCache`. ``num_active_dims`` is the true number of dims with std ≥
    ``prune_threshold``; disentanglement_lib reports ``len(active_dims)`` of a boolean mask,
    i.e. the code size, by mistake. Dims with zero variance are never active (the reference
    would divide 0 by 0 with ``prune_threshold=0``).
    """
    cache = as_cache(dataset, represent, encode_batch_size)
    random_state = np.random.RandomState(seed)
    factors = dataset.sample_factors(num_variance_estimate, random_state)
    global_variances = np.var(cache.codes_of(factors), axis=0, ddof=1)
    active = (np.sqrt(global_variances) >= prune_threshold) & (global_variances > 0)
    params = {
        "seed": seed,
        "batch_size": batch_size,
        "num_train": num_train,
        "num_eval": num_eval,
        "num_variance_estimate": num_variance_estimate,
        "prune_threshold": prune_threshold,
    }
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0, "params": params}
    args = (global_variances, active)
    train_votes = _votes(dataset, cache, batch_size, num_train, random_state, *args)
    classifier = np.argmax(train_votes, axis=0)
    eval_votes = _votes(dataset, cache, batch_size, num_eval, random_state, *args)
    return {
        "train_accuracy": _accuracy(train_votes, classifier),
        "eval_accuracy": _accuracy(eval_votes, classifier),
        "num_active_dims": int(active.sum()),
        "params": params,
    }
