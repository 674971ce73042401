import numpy as np
import pytest
import scipy.linalg
from dlib_reference import kl_gaussians_numerically_unstable, unsupervised_metrics

from untwine.errors import UntwineError
from untwine.metrics import unsupervised
from untwine.metrics.unsupervised import (
    gaussian_total_correlation,
    gaussian_wasserstein_correlation,
)

KEYS = (
    "gaussian_total_correlation",
    "gaussian_wasserstein_correlation",
    "gaussian_wasserstein_correlation_norm",
    "mutual_info_score",
)


def _correlated_codes(seed, n, d, strength):
    rs = np.random.RandomState(seed)
    mixing = np.eye(d) + strength * rs.randn(d, d)
    return rs.randn(n, d) @ mixing * rs.uniform(0.1, 5.0, size=d)


def test_gaussian_total_correlation_of_diagonal_covariance_is_zero():
    assert abs(gaussian_total_correlation(np.diag(np.ones(5)))) < 1e-12
    assert abs(gaussian_total_correlation(np.diag([0.1, 2.0, 30.0]))) < 1e-12


def test_gaussian_total_correlation_is_the_kl_to_the_product_of_marginals():
    cov = np.array([[1.0, 0.9], [0.9, 1.0]])
    means = np.zeros(2)
    expected = kl_gaussians_numerically_unstable(means, cov, means, np.diag(np.diag(cov)), 2)
    assert gaussian_total_correlation(cov) == pytest.approx(expected, abs=1e-12)
    assert gaussian_total_correlation(cov) == pytest.approx(-0.5 * np.log(1 - 0.81), abs=1e-12)


def test_gaussian_wasserstein_correlation_of_identity_is_zero_and_matches_formula():
    assert abs(gaussian_wasserstein_correlation(np.eye(5))) < 1e-12
    cov = np.array([[1.0, 0.9], [0.9, 1.0]])
    diagonal = np.diag(np.diag(cov))
    expected = np.trace(cov + diagonal - 2 * scipy.linalg.sqrtm(cov @ diagonal)).real
    assert gaussian_wasserstein_correlation(cov) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    "seed, n, d, strength, num_bins",
    [(0, 10000, 10, 0.5, 20), (1, 2000, 3, 2.0, 20), (2, 300, 16, 0.1, 7), (3, 25, 2, 1.0, 20)],
)
def test_unsupervised_equals_reference(seed, n, d, strength, num_bins):
    codes = _correlated_codes(seed, n, d, strength)
    ours = unsupervised(codes, num_bins=num_bins)
    expected = unsupervised_metrics(codes.T, num_bins=num_bins)
    for key in KEYS:
        assert abs(ours[key] - expected[key]) < 1e-9 * max(1.0, abs(expected[key])), key
    assert ours["params"] == {"num_bins": num_bins, "num_train": n}


def test_independent_codes_score_near_zero():
    codes = np.random.RandomState(4).randn(10000, 5) * [1.0, 2.0, 0.5, 3.0, 1.0]
    scores = unsupervised(codes)
    assert 0.0 <= scores["gaussian_total_correlation"] < 0.01
    assert abs(scores["gaussian_wasserstein_correlation_norm"]) < 0.01
    assert 0.0 <= scores["mutual_info_score"] < 0.03


def test_unsupervised_invariances():
    codes = _correlated_codes(5, 3000, 5, 0.5)
    base = unsupervised(codes)
    permuted = unsupervised(codes[:, np.random.RandomState(0).permutation(5)])
    for key in KEYS:
        assert permuted[key] == pytest.approx(base[key], rel=1e-9, abs=1e-12)
    scaled = unsupervised(4.0 * codes)
    for key in ("gaussian_total_correlation", "gaussian_wasserstein_correlation_norm"):
        assert scaled[key] == pytest.approx(base[key], rel=1e-9)
    assert scaled["gaussian_wasserstein_correlation"] == pytest.approx(
        16 * base["gaussian_wasserstein_correlation"], rel=1e-9
    )
    assert scaled["mutual_info_score"] == base["mutual_info_score"]
    per_dim = unsupervised(codes * [1.0, 3.0, 0.2, 7.0, 1.5])
    assert per_dim["gaussian_total_correlation"] == pytest.approx(
        base["gaussian_total_correlation"], rel=1e-9
    )


def test_constant_codes_add_nothing_to_covariance_scores():
    codes = _correlated_codes(6, 2000, 4, 0.5)
    padded = np.hstack([codes, np.zeros((2000, 1)), np.full((2000, 1), 0.3)])
    ours, without = unsupervised(padded), unsupervised(codes)
    for key in KEYS[:3]:
        assert ours[key] == pytest.approx(without[key], rel=1e-9)
    assert ours["mutual_info_score"] == pytest.approx(without["mutual_info_score"] * 12 / 30)
    assert all(np.isfinite(ours[key]) for key in KEYS)


def test_one_or_no_varying_code_scores_zero():
    for codes in (np.random.RandomState(7).randn(100, 1), np.full((100, 3), 2.0)):
        scores = unsupervised(codes)
        assert [scores[key] for key in KEYS] == [0.0] * 4


def test_unsupervised_rejects_non_finite_codes():
    codes = np.zeros((10, 2))
    codes[2, 0] = np.nan
    with pytest.raises(UntwineError, match="NaN or infinite"):
        unsupervised(codes)
