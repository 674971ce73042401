import numpy as np
import pytest
from dlib_reference import compute_irs

from untwine.errors import UntwineError
from untwine.metrics import irs


def _sample(seed, n, d, sizes, noise=0.3):
    """Factors uniform over the grid and codes that mix them linearly, plus noise."""
    rs = np.random.RandomState(seed)
    factors = np.stack([rs.randint(0, s, n) for s in sizes], axis=1)
    mixing = rs.randn(len(sizes), d) * (rs.rand(len(sizes), d) < 0.4)
    codes = (factors / np.array(sizes)) @ mixing + noise * rs.randn(n, d)
    return codes, factors


@pytest.mark.parametrize(
    "seed, n, d, sizes, diff_quantile, num_bins",
    [
        (0, 10000, 10, (3, 6, 40, 32, 32), 0.99, 20),
        (1, 2000, 4, (10, 10, 10), 1.0, 20),
        (2, 500, 16, (2, 5), 0.5, 7),
        (3, 37, 3, (4, 40, 3, 2), 0.99, 20),
    ],
)
def test_irs_equals_reference(seed, n, d, sizes, diff_quantile, num_bins):
    codes, factors = _sample(seed, n, d, sizes)
    codes[:, 1] = 0.0  # an exactly constant code, dropped by both
    ours = irs(codes, factors, diff_quantile=diff_quantile, num_bins=num_bins)
    expected = compute_irs(codes.T, factors.T, diff_quantile=diff_quantile, num_bins=num_bins)
    assert abs(ours["IRS"] - expected["IRS"]) < 1e-10
    assert ours["num_active_dims"] == d - 1
    assert ours["params"] == {"diff_quantile": diff_quantile, "num_bins": num_bins, "num_train": n}


def test_irs_reports_the_count_of_active_dims_not_the_reference_sum_of_values():
    codes, factors = _sample(4, 500, 5, (4, 4))
    codes[:, 3] = 0.0
    assert irs(codes, factors)["num_active_dims"] == 4
    assert compute_irs(codes.T, factors.T)["num_active_dims"] == pytest.approx(codes.sum())


def _identity_factors(n=3000, seed=0):
    """The reference tests' IdentityObservationsData: 10 factors uniform on 1..10."""
    return np.random.RandomState(seed).randint(1, 11, size=(n, 10))


def test_irs_of_identity_codes_is_near_one():
    factors = _identity_factors()
    assert 0.9 <= irs(factors.astype(float), factors)["IRS"] <= 1.0


def test_irs_of_constant_codes_is_zero():
    factors = _identity_factors()
    for value in (0.0, 0.3):
        result = irs(np.full((3000, 10), value), factors)
        assert result["IRS"] == 0.0 and result["num_active_dims"] == 0


def test_irs_is_invariant_to_permuting_and_scaling_codes_and_relabelling_classes():
    codes, factors = _sample(5, 3000, 6, (3, 6, 20))
    base = irs(codes, factors)["IRS"]
    permuted = codes[:, np.random.RandomState(0).permutation(6)]
    assert irs(permuted, factors)["IRS"] == pytest.approx(base, abs=1e-12)
    assert irs(4.0 * codes, factors)["IRS"] == pytest.approx(base, abs=1e-12)
    relabelled = np.stack(
        [np.random.RandomState(k).permutation(s)[factors[:, k]] for k, s in enumerate((3, 6, 20))],
        axis=1,
    )
    assert irs(codes, relabelled)["IRS"] == pytest.approx(base, abs=1e-12)


def test_irs_groups_more_classes_than_bins_like_the_reference():
    codes, factors = _sample(6, 4000, 3, (40,))
    ours = irs(codes, factors)["IRS"]
    assert ours == pytest.approx(compute_irs(codes.T, factors.T)["IRS"], abs=1e-10)
    assert ours != pytest.approx(irs(codes, factors, num_bins=40)["IRS"], abs=1e-6)


def test_irs_is_defined_for_degenerate_inputs():
    codes, factors = _sample(7, 200, 1, (3, 2))
    factors[:, 1] = 1  # a single-valued factor
    one_dim = irs(codes, factors)
    assert np.isfinite(one_dim["IRS"]) and one_dim["num_active_dims"] == 1
    assert one_dim["IRS"] == pytest.approx(compute_irs(codes.T, factors.T)["IRS"], abs=1e-10)
    tiny = irs(codes[:5], factors[:5])
    assert np.isfinite(tiny["IRS"])


def test_irs_rejects_bad_inputs():
    codes, factors = _sample(8, 100, 3, (4,))
    with pytest.raises(UntwineError, match="diff_quantile"):
        irs(codes, factors, diff_quantile=99)
    with pytest.raises(UntwineError, match="rows"):
        irs(codes, factors[:50])
    codes[1, 1] = -np.inf
    with pytest.raises(UntwineError, match="NaN or infinite"):
        irs(codes, factors)
