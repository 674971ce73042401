"""Every metric in one call, with the study's defaults or a fast preset, sharing one CodeCache.

disentanglement_lib evaluates each metric separately, each from ``RandomState(seed)`` (its
configs set ``evaluation.random_seed = 0``). untwine does the same, so the array metrics draw
the same points; the shared :class:`CodeCache` encodes each grid image at most once for all
of them, however many times the protocol draws it.
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from untwine._version import versions
from untwine.data.base import FactorDataset
from untwine.errors import UntwineError
from untwine.metrics.registry import ARRAY_LEVEL, DEFAULT_PRESET, METRICS, resolve
from untwine.metrics.sampling import CodeCache, Represent, generate_batch_factor_code

SAMPLE_BATCH = 16
"""Batch size of the reference's ``generate_batch_factor_code`` (it sets the draw order)."""


def _timed(fn: Callable[[], dict], params: dict[str, Any]) -> dict:
    start = time.perf_counter()
    result = dict(fn())
    result["params"] = {**params, **result.get("params", {})}
    result["time_s"] = time.perf_counter() - start
    return jsonable(result)


def jsonable(value: Any) -> Any:
    """NumPy scalars and arrays inside dicts/lists as plain Python values."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def evaluate(
    dataset: FactorDataset,
    represent: Represent,
    preset: str | Sequence[str] = DEFAULT_PRESET,
    seed: int = 0,
    n_jobs: int | None = None,
    encode_batch_size: int = 1024,
    overrides: dict[str, dict[str, Any]] | None = None,
    cache: bool | None = None,
) -> dict:
    """Score ``represent`` on ``dataset`` with every metric of ``preset``; one JSON-ready dict.

    ``preset``: ``"fast"`` (the default: smaller samples, the fast DCI backend as
    ``dci_fast``), ``"study"`` (disentanglement_lib's defaults, exact DCI) or a list of metric
    names (study parameters). Each metric starts from ``RandomState(seed)``, as the reference's
    evaluation does. The result holds ``metrics`` (name -> scores, ``params``, ``time_s``),
    ``images_encoded`` (distinct grid images encoded), ``images_requested`` (codes the
    reference protocol would have encoded), ``encode_time_s``, ``time_s`` and ``versions``.
    ``overrides`` changes single parameters, e.g. ``{"mig": {"num_train": 2000}}``.
    ``cache=False`` encodes every image the protocol draws (needed for a sampled, i.e. random,
    representation); see :class:`CodeCache`.
    """
    plan = resolve(preset, overrides)
    code_cache = CodeCache(dataset, represent, batch_size=encode_batch_size, cache=cache)
    start = time.perf_counter()
    results = {}
    for name, params in plan.items():
        spec = METRICS[name]
        if spec.level == "dataset":
            results[name] = _timed(
                lambda f=spec.score, p=params: f(dataset, code_cache, seed, **p), params
            )
        else:
            results[name] = _timed(
                lambda n=name, p=params: _sampled_array_metric(
                    dataset, code_cache, seed, n, p, n_jobs
                ),
                params,
            )
    return {
        "dataset": getattr(dataset, "name", type(dataset).__name__),
        "preset": preset if isinstance(preset, str) else list(preset),
        "seed": seed,
        "metrics": results,
        "images_encoded": code_cache.num_encoded,
        "images_requested": code_cache.num_requested,
        "encode_time_s": code_cache.encode_seconds,
        "time_s": time.perf_counter() - start,
        "versions": versions(),
    }


def _sampled_array_metric(
    dataset: FactorDataset,
    cache: CodeCache,
    seed: int,
    name: str,
    params: dict[str, Any],
    n_jobs: int | None,
) -> dict:
    """Draw train (and test) points as the reference does, then score the arrays."""
    random_state = np.random.RandomState(seed)
    codes, factors = generate_batch_factor_code(
        dataset, cache, params["num_train"], random_state, SAMPLE_BATCH
    )
    codes_test = factors_test = None
    if "num_test" in params:
        codes_test, factors_test = generate_batch_factor_code(
            dataset, cache, params["num_test"], random_state, SAMPLE_BATCH
        )
    return METRICS[name].score(codes, factors, codes_test, factors_test, params, n_jobs)


def score_arrays(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    preset: str | Sequence[str] = DEFAULT_PRESET,
    n_jobs: int | None = None,
) -> dict:
    """The array-level metrics of ``preset`` on given codes; BetaVAE/FactorVAE need a dataset.

    ``fast`` uses at most its ``num_train`` / ``num_test`` rows, a ``RandomState(0)`` subset,
    and the fast DCI backend; ``study`` and lists of names use every row given.
    """
    plan = {name: p for name, p in resolve(preset).items() if name in ARRAY_LEVEL}
    if not plan:
        raise UntwineError(f"no array-level metric in {preset}; choose from {ARRAY_LEVEL}")
    start = time.perf_counter()
    results = {}
    for name, params in plan.items():
        train = _rows(len(codes_train), params["num_train"], preset == "fast")
        test = _rows(len(codes_test), params.get("num_test", 0), preset == "fast")
        used = {**params, "num_train": len(train)}
        if "num_test" in params:
            used["num_test"] = len(test)
        results[name] = _timed(
            lambda s=METRICS[name], p=params, a=train, b=test: s.score(
                codes_train[a], factors_train[a], codes_test[b], factors_test[b], p, n_jobs
            ),
            used,
        )
    return {
        "preset": preset if isinstance(preset, str) else list(preset),
        "metrics": results,
        "time_s": time.perf_counter() - start,
        "versions": versions(),
    }


def flat_scores(result: dict) -> dict[str, float | int]:
    """The scores of an ``evaluate`` / ``score_arrays`` result (or its ``metrics``) as one flat
    dict, ``{"mig.discrete_mig": 0.12, ...}``, without parameters, timings or counters."""
    out: dict[str, float | int] = {}
    for name, scores in result.get("metrics", result).items():
        if not isinstance(scores, dict):
            continue
        for key, value in scores.items():
            if key != "time_s" and isinstance(value, (int, float)) and not isinstance(value, bool):
                out[f"{name}.{key}"] = value
    return out


def _rows(n: int, limit: int, subsample: bool) -> np.ndarray:
    """Row indices to score: all n, or a seeded random subset of ``limit`` when subsampling."""
    if subsample and limit < n:
        return np.sort(np.random.RandomState(0).permutation(n)[:limit])
    return np.arange(n)


def load_codes_npz(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train/test codes and factors from an npz with ``codes`` (N, D) and ``factors`` (N, K).

    Optional ``codes_test`` / ``factors_test`` are the test set; without them the rows are
    split deterministically: ``RandomState(0).permutation(N)``, the last N // 3 rows of that
    order are the test set (the study's 2 : 1 train : test ratio).
    """
    path = Path(path)
    if not path.exists():
        raise UntwineError(f"{path}: no such file; expected an npz with 'codes' and 'factors'")
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise ValueError("a single .npy array, not an .npz archive")
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise UntwineError(
            f"{path} is not a readable npz of arrays ({err}); save codes with "
            "np.savez(path, codes=codes_N_by_D, factors=factor_classes_N_by_K)"
        ) from err
    for key in ("codes", "factors"):
        if key not in arrays:
            raise UntwineError(
                f"{path} lacks key {key!r} (has {sorted(arrays)}); save it with "
                "np.savez(path, codes=codes_N_by_D, factors=factor_classes_N_by_K)"
            )
    if ("codes_test" in arrays) != ("factors_test" in arrays):
        raise UntwineError(f"{path}: give both codes_test and factors_test, or neither")
    codes, factors = _two_d(arrays["codes"], "codes"), _two_d(arrays["factors"], "factors")
    if len(codes) != len(factors):
        raise UntwineError(
            f"{path}: codes have {len(codes)} rows but factors have {len(factors)}; "
            "one factor row per code row"
        )
    if "codes_test" in arrays:
        codes_test = _two_d(arrays["codes_test"], "codes_test")
        factors_test = _two_d(arrays["factors_test"], "factors_test")
        return codes, factors, codes_test, factors_test
    order = np.random.RandomState(0).permutation(len(codes))
    num_test = len(codes) // 3
    train, test = order[: len(codes) - num_test], order[len(codes) - num_test :]
    return codes[train], factors[train], codes[test], factors[test]


def _two_d(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise UntwineError(f"{name} must have shape (N, columns); got {x.shape}")
    return x
