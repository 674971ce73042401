import math

import numpy as np
import pytest
from dlib_reference import compute_mig

from untwine.errors import UntwineError
from untwine.metrics import mig


def _sample(seed, n, d, sizes, noise=0.3):
    """Factors uniform over the grid and codes that mix them linearly, plus noise."""
    rs = np.random.RandomState(seed)
    factors = np.stack([rs.randint(0, s, n) for s in sizes], axis=1)
    mixing = rs.randn(len(sizes), d) * (rs.rand(len(sizes), d) < 0.4)
    codes = (factors / np.array(sizes)) @ mixing + noise * rs.randn(n, d)
    return codes, factors


@pytest.mark.parametrize(
    "seed, n, d, sizes, num_bins",
    [
        (0, 10000, 10, (3, 6, 40, 32, 32), 20),
        (1, 2000, 4, (10, 10, 10), 20),
        (2, 500, 16, (2, 5), 7),
        (3, 37, 3, (4, 40, 3, 2), 20),
    ],
)
def test_mig_equals_reference(seed, n, d, sizes, num_bins):
    codes, factors = _sample(seed, n, d, sizes)
    ours = mig(codes, factors, num_bins=num_bins)
    expected = compute_mig(codes.T, factors.T, num_bins=num_bins)["discrete_mig"]
    assert abs(ours["discrete_mig"] - expected) < 1e-10
    assert ours["params"] == {"num_bins": num_bins, "num_train": n}


def test_mig_equals_reference_on_float32_codes():
    codes, factors = _sample(4, 3000, 6, (6, 40))
    codes = codes.astype(np.float32)
    expected = compute_mig(codes.T, factors.T)["discrete_mig"]
    assert abs(mig(codes, factors)["discrete_mig"] - expected) < 1e-10


def _identity_factors(n=3000, seed=0):
    """The reference tests' IdentityObservationsData: 10 factors uniform on 1..10."""
    return np.random.RandomState(seed).randint(1, 11, size=(n, 10))


def test_mig_of_identity_codes_is_near_one():
    factors = _identity_factors()
    assert 0.9 <= mig(factors.astype(float), factors)["discrete_mig"] <= 1.0


def test_mig_of_random_codes_is_near_zero():
    factors = _identity_factors()
    codes = np.random.RandomState(1).randn(3000, 10)
    assert 0.0 <= mig(codes, factors)["discrete_mig"] <= 0.2


def test_mig_of_duplicated_latent_is_near_zero():
    factors = _identity_factors()
    codes = np.hstack([factors, factors]).astype(float)
    assert 0.0 <= mig(codes, factors)["discrete_mig"] <= 0.1


def test_mig_is_invariant_to_permuting_and_scaling_codes_and_relabelling_classes():
    codes, factors = _sample(5, 3000, 8, (3, 6, 40))
    base = mig(codes, factors)["discrete_mig"]
    permuted = codes[:, np.random.RandomState(0).permutation(8)]
    assert mig(permuted, factors)["discrete_mig"] == pytest.approx(base, abs=1e-12)
    assert mig(4.0 * codes, factors)["discrete_mig"] == pytest.approx(base, abs=1e-12)
    relabelled = np.stack(
        [np.random.RandomState(k).permutation(s)[factors[:, k]] for k, s in enumerate((3, 6, 40))],
        axis=1,
    )
    assert mig(codes, relabelled)["discrete_mig"] == pytest.approx(base, abs=1e-12)


def test_mig_of_constant_codes_is_zero():
    factors = _identity_factors()
    assert mig(np.full((3000, 4), 0.3), factors)["discrete_mig"] == 0.0


def test_mig_leaves_a_single_valued_factor_out_of_the_mean():
    codes, factors = _sample(6, 2000, 5, (6, 8))
    with_constant = np.hstack([factors, np.full((2000, 1), 2)])
    with pytest.warns(UserWarning, match=r"factors \[2\]"):
        score = mig(codes, with_constant)["discrete_mig"]
    assert score == pytest.approx(mig(codes, factors)["discrete_mig"], abs=1e-15)


def test_mig_raises_when_no_factor_varies():
    with pytest.raises(UntwineError, match="every factor takes a single value"):
        mig(np.random.RandomState(0).randn(50, 3), np.zeros((50, 2), dtype=int))


def test_mig_with_one_code_is_its_normalised_mutual_information():
    factors = np.tile(np.arange(4), 100).reshape(-1, 1)
    codes = factors.astype(float)
    assert mig(codes, factors)["discrete_mig"] == pytest.approx(1.0, abs=1e-15)
    half = np.tile([0.0, 0.0, 1.0, 1.0], 100).reshape(-1, 1)
    expected = math.log(2) / math.log(4)
    assert mig(half, factors)["discrete_mig"] == pytest.approx(expected, abs=1e-15)


def test_mig_with_fewer_points_than_bins_is_defined():
    codes, factors = _sample(7, 5, 3, (2, 3))
    factors[:2] = [[0, 0], [1, 1]]
    score = mig(codes, factors)["discrete_mig"]
    assert np.isfinite(score)
    assert score == pytest.approx(compute_mig(codes.T, factors.T)["discrete_mig"], abs=1e-10)


def test_mig_rejects_non_finite_codes_and_mismatched_rows():
    codes, factors = _sample(8, 100, 3, (4,))
    with pytest.raises(UntwineError, match="rows"):
        mig(codes[:50], factors)
    codes[10, 1] = np.nan
    with pytest.raises(UntwineError, match="NaN or infinite"):
        mig(codes, factors)
