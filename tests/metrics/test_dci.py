"""DCI: closed-form importance matrices, parity with disentanglement_lib, the fast backend."""

import math
import os
import subprocess
import sys

import dlib_reference_sampled as ref
import numpy as np
import pytest
from sampled_toys import linear_represent, pixel_dataset

from untwine.errors import UntwineError
from untwine.metrics.dci import dci, disentanglement_completeness
from untwine.metrics.sampling import CodeCache, generate_batch_factor_code

ONE_MINUS_LN2_LN10 = 1 - math.log(2) / math.log(10)


def _dc(importance):
    out = disentanglement_completeness(importance)
    return out["disentanglement"], out["completeness"]


def test_diagonal_importance_gives_one():
    assert _dc(np.diag(5.0 * np.ones(5))) == pytest.approx((1.0, 1.0))


def test_diagonal_with_an_empty_code_gives_one():
    assert _dc(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])) == pytest.approx((1.0, 1.0))


def test_zero_importance_gives_zero():
    assert _dc(np.zeros((10, 10))) == (0.0, 0.0)


def test_each_factor_in_two_codes_keeps_d_and_costs_c_ln2_over_ln10():
    redundant = np.vstack([np.diag(5.0 * np.ones(5))] * 2)  # 10 codes, 5 factors
    assert _dc(redundant) == pytest.approx((1.0, ONE_MINUS_LN2_LN10))


def test_one_code_holding_two_factors_costs_d_ln2_over_ln10():
    shared = np.hstack([np.diag(5.0 * np.ones(5))] * 2)  # 5 codes, 10 factors
    assert _dc(shared) == pytest.approx((ONE_MINUS_LN2_LN10, 1.0))


def test_missed_factors_keep_one():
    assert _dc(np.diag(5.0 * np.ones(5))[:2, :]) == pytest.approx((1.0, 1.0))


@pytest.mark.parametrize("seed", [0, 3])
def test_disentanglement_completeness_match_reference_formula(seed):
    importance = np.random.RandomState(seed).rand(7, 4) ** 3
    out = disentanglement_completeness(importance)
    assert out["disentanglement"] == pytest.approx(ref.disentanglement(importance), abs=1e-12)
    assert out["completeness"] == pytest.approx(ref.completeness(importance), abs=1e-12)


def test_dci_on_sampled_codes_equals_reference():
    ds = pixel_dataset()
    represent = linear_represent(4, 5)
    cache = CodeCache(ds, represent)
    rs = np.random.RandomState(0)
    ctr, ftr = generate_batch_factor_code(ds, cache, 400, rs, 16)
    cte, fte = generate_batch_factor_code(ds, cache, 200, rs, 16)
    ours = dci(ctr, ftr, cte, fte, n_jobs=1)
    theirs = ref.compute_dci(ref.ReferenceData(ds), represent, np.random.RandomState(0), 400, 200)
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, abs=1e-12), key


def _codes(kind, n, seed):
    rs = np.random.RandomState(seed)
    factors = np.stack([rs.randint(s, size=n) for s in (3, 5, 8)], axis=1)
    z = (factors - np.array([1, 2, 3.5])) / np.array([3, 5, 8])
    if kind == "identity":
        return factors.astype(float), factors
    if kind == "rotated":
        q, _ = np.linalg.qr(np.random.RandomState(7).randn(3, 3))
        return z @ q, factors
    return rs.randn(n, 4), factors


@pytest.mark.parametrize("kind", ["identity", "rotated", "random"])
def test_fast_backend_stays_close_to_exact(kind):
    ctr, ftr = _codes(kind, 1500, 0)
    cte, fte = _codes(kind, 700, 1)
    exact = dci(ctr, ftr, cte, fte, backend="exact", n_jobs=1)
    fast = dci(ctr, ftr, cte, fte, backend="fast", n_jobs=1)
    assert fast["backend"] == "fast"
    for key in ("informativeness_test", "disentanglement", "completeness"):
        assert abs(fast[key] - exact[key]) <= 0.03, (key, fast[key], exact[key])
    assert abs(fast["informativeness_train"] - exact["informativeness_train"]) <= 0.06


def test_identity_codes_score_high_and_random_codes_low():
    ctr, ftr = _codes("identity", 600, 0)
    cte, fte = _codes("identity", 300, 1)
    good = dci(ctr, ftr, cte, fte, n_jobs=1)
    assert min(good["disentanglement"], good["completeness"], good["informativeness_test"]) > 0.9
    ctr, ftr = _codes("random", 600, 0)
    cte, fte = _codes("random", 300, 1)
    bad = dci(ctr, ftr, cte, fte, n_jobs=1)
    assert max(bad["disentanglement"], bad["completeness"]) < 0.2


def test_dci_is_invariant_to_permuting_code_dims():
    ctr, ftr = _codes("rotated", 400, 0)
    cte, fte = _codes("rotated", 200, 1)
    perm = [2, 0, 1]
    a = dci(ctr, ftr, cte, fte, n_jobs=1)
    b = dci(ctr[:, perm], ftr, cte[:, perm], fte, n_jobs=1)
    for key in ("informativeness_test", "disentanglement", "completeness"):
        assert a[key] == pytest.approx(b[key], abs=0.05)


def test_parallel_fit_gives_the_serial_result():
    ctr, ftr = _codes("rotated", 300, 0)
    cte, fte = _codes("rotated", 150, 1)
    a = dci(ctr, ftr, cte, fte, n_jobs=1)
    b = dci(ctr, ftr, cte, fte, n_jobs=2)
    assert a == b


def test_constant_codes_and_single_valued_factor_are_defined():
    rs = np.random.RandomState(0)
    factors = np.stack([rs.randint(3, size=200), np.zeros(200, int)], axis=1)
    out = dci(np.ones((200, 2)), factors, np.ones((100, 2)), factors[:100], n_jobs=1)
    assert out["disentanglement"] == 0.0 and out["completeness"] == 0.0
    assert out["informativeness_test"] <= 1.0
    one_dim = dci(factors[:, :1] * 1.0, factors, factors[:, :1] * 1.0, factors, n_jobs=1)
    assert one_dim["completeness"] == pytest.approx(1.0)
    assert np.isfinite(one_dim["disentanglement"])


def test_nan_codes_and_mismatched_rows_raise():
    factors = np.zeros((10, 2), int)
    codes = np.ones((10, 3))
    codes[4, 1] = np.nan
    with pytest.raises(UntwineError, match="NaN"):
        dci(codes, factors, np.ones((5, 3)), factors[:5])
    with pytest.raises(UntwineError, match="rows"):
        dci(np.ones((9, 3)), factors, np.ones((5, 3)), factors[:5])


def test_physical_factor_values_are_refused_before_any_fitting():
    codes = np.random.RandomState(0).randn(40, 2)
    values = np.linspace(0.5, 1.0, 40)[:, None]
    with pytest.raises(UntwineError, match="class"):
        dci(codes[:30], values[:30], codes[30:], values[30:])


@pytest.mark.parametrize("kind", ["rotated", "random"])
def test_exact_backend_matches_sklearns_classifier(kind):
    ctr, ftr = _codes(kind, 800, 0)
    cte, fte = _codes(kind, 400, 1)
    ours = dci(ctr, ftr, cte, fte, backend="exact", n_jobs=2)
    theirs = dci(ctr, ftr, cte, fte, backend="sklearn", n_jobs=1)
    for key in ("informativeness_train", "informativeness_test", "disentanglement", "completeness"):
        assert abs(ours[key] - theirs[key]) <= 1e-12, (key, ours[key], theirs[key])


def test_random_state_reaches_both_backends_alike():
    ctr, ftr = _codes("rotated", 600, 0)
    cte, fte = _codes("rotated", 300, 1)
    ours = dci(ctr, ftr, cte, fte, backend="exact", n_jobs=1, random_state=7)
    theirs = dci(ctr, ftr, cte, fte, backend="sklearn", n_jobs=1, random_state=7)
    assert ours["params"]["random_state"] == 7
    for key in ("informativeness_test", "disentanglement", "completeness"):
        assert abs(ours[key] - theirs[key]) <= 1e-12, (key, ours[key], theirs[key])


def test_exact_backend_stays_within_tolerance_on_tied_codes():
    ctr, ftr = _codes("identity", 600, 0)
    cte, fte = _codes("identity", 300, 1)
    ours = dci(ctr, ftr, cte, fte, backend="exact", n_jobs=1)
    theirs = dci(ctr, ftr, cte, fte, backend="sklearn", n_jobs=1)
    for key in ("informativeness_test", "disentanglement", "completeness"):
        assert abs(ours[key] - theirs[key]) <= 0.005, (key, ours[key], theirs[key])



WORKER_THREADS_PROBE = """
import os
from joblib import Parallel, delayed
from untwine.metrics.dci import worker_threads

def threads():
    from sklearn.ensemble import HistGradientBoostingClassifier  # loads OpenMP
    from threadpoolctl import threadpool_info
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"]

with worker_threads(2):
    print(Parallel(n_jobs=2)(delayed(threads)() for _ in range(2)))
"""


def test_fast_dci_workers_get_their_share_of_threads_whatever_omp_num_threads_says():
    # Ray sets OMP_NUM_THREADS to a task's CPUs; inherited by 2 joblib workers on 2 cores it ran
    # the fast DCI 13x slower. Each worker must get cpu_count // jobs threads instead. A fresh
    # process, so no joblib executor started with another environment is reused.
    env = {**os.environ, "OMP_NUM_THREADS": "8"}
    out = subprocess.run(
        [sys.executable, "-c", WORKER_THREADS_PROBE], env=env, capture_output=True, text=True
    )
    share = max(1, (os.cpu_count() or 1) // 2)
    assert out.stdout.strip() == str([[share], [share]]), out.stderr
