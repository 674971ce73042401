import math

import numpy as np
import pytest
import sklearn.metrics
from dlib_reference import _histogram_discretize

from untwine.errors import UntwineError
from untwine.metrics.utils import (
    check_codes,
    check_factors,
    discrete_entropy,
    discrete_mutual_info,
    histogram_discretize,
    keep_varying_factors,
)


def test_histogram_discretize_reproduces_reference_example():
    target = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.6, 0.5, 0.4, 0.3, 0.2, 0.1]]).T
    expected = np.array([[1, 1, 2, 2, 3, 3], [3, 3, 2, 2, 1, 1]]).T
    np.testing.assert_array_equal(histogram_discretize(target, 3), expected)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
@pytest.mark.parametrize("num_bins", [1, 3, 20, 50])
def test_histogram_discretize_equals_reference_bit_for_bit(dtype, num_bins):
    rs = np.random.RandomState(num_bins)
    codes = (rs.standard_t(2, size=(777, 6)) * 10).astype(dtype)
    codes[:, 2] = 3  # a constant column
    ours = histogram_discretize(codes, num_bins)
    assert ours.dtype == codes.dtype
    np.testing.assert_array_equal(ours, _histogram_discretize(codes.T, num_bins).T)


def test_histogram_discretize_keeps_small_integer_classes_apart():
    classes = np.arange(20).reshape(-1, 1)
    assert len(np.unique(histogram_discretize(classes, 20))) == 20
    merged = histogram_discretize(np.arange(40).reshape(-1, 1), 20)
    assert len(np.unique(merged)) == 20


def test_discrete_entropy_of_three_equal_classes_is_log3():
    target = np.array([[1, 1, 2, 2, 3, 3], [3, 3, 2, 2, 1, 1]]).T
    np.testing.assert_allclose(discrete_entropy(target), [math.log(3)] * 2, rtol=1e-15)


def test_discrete_entropy_of_a_constant_is_zero():
    assert discrete_entropy(np.full((10, 1), 4)).tolist() == [0.0]


def test_discrete_mutual_info_reproduces_reference_example():
    xs = np.array([[1, 2, 1, 2], [1, 1, 2, 2]]).T
    ys = np.array([[1, 2, 1, 2], [2, 2, 1, 1]]).T
    expected = [[math.log(2), 0.0], [0.0, math.log(2)]]
    np.testing.assert_allclose(discrete_mutual_info(xs, ys), expected, atol=1e-15)


@pytest.mark.parametrize("seed, n, d, k", [(0, 10000, 10, 5), (1, 50, 7, 4), (2, 3, 2, 2)])
def test_discrete_mutual_info_equals_sklearn_to_1e12(seed, n, d, k):
    rs = np.random.RandomState(seed)
    factors = np.stack([rs.randint(0, s, n) for s in rs.randint(1, 41, size=k)], axis=1)
    codes = rs.randn(n, d) + 0.5 * np.resize(factors, (n, d))
    codes[:, 0] = 0.3
    labels = histogram_discretize(codes, 20)
    ours = discrete_mutual_info(labels, factors)
    for i in range(d):
        for j in range(k):
            expected = sklearn.metrics.mutual_info_score(factors[:, j], labels[:, i])
            assert abs(ours[i, j] - expected) < 1e-12
    reference = [sklearn.metrics.mutual_info_score(y, y) for y in factors.T]
    np.testing.assert_allclose(discrete_entropy(factors), reference, atol=1e-12, rtol=0)


def test_discrete_mutual_info_of_independent_labels_is_nonnegative_and_tiny():
    rs = np.random.RandomState(3)
    mi = discrete_mutual_info(rs.randint(0, 5, (20000, 3)), rs.randint(0, 5, (20000, 3)))
    assert (mi >= 0).all() and mi.max() < 0.005


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_codes_rejects_non_finite_values(bad):
    codes = np.zeros((5, 2))
    codes[3, 1] = bad
    with pytest.raises(UntwineError, match="row 3, column 1"):
        check_codes(codes)


@pytest.mark.parametrize(
    "codes", [np.zeros(5), np.zeros((1, 3)), np.zeros((5, 0)), np.array([["a", "b"]] * 3)]
)
def test_check_codes_rejects_bad_shapes_and_types(codes):
    with pytest.raises(UntwineError):
        check_codes(codes)


def test_check_factors_rejects_mismatched_rows():
    with pytest.raises(UntwineError, match="4 rows but the codes have 5"):
        check_factors(np.zeros((4, 2), dtype=int), 5)


def test_keep_varying_factors_warns_on_constant_and_raises_when_none_vary():
    factors = np.array([[0, 1], [0, 2], [0, 3]])
    with pytest.warns(UserWarning, match=r"factors \[0\]"):
        assert keep_varying_factors(factors, "MIG").tolist() == [False, True]
    with pytest.raises(UntwineError, match="every factor takes a single value"):
        keep_varying_factors(factors[:, :1], "MIG")
