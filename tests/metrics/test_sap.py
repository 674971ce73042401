import numpy as np
import pytest
from dlib_reference import compute_sap

from untwine.errors import UntwineError
from untwine.metrics import sap


def _sample(seed, n, d, sizes, noise=0.3):
    """Factors uniform over the grid and codes that mix them linearly, plus noise."""
    rs = np.random.RandomState(seed)
    factors = np.stack([rs.randint(0, s, n) for s in sizes], axis=1)
    mixing = rs.randn(len(sizes), d) * (rs.rand(len(sizes), d) < 0.5)
    codes = (factors / np.array(sizes)) @ mixing + noise * rs.randn(n, d)
    return codes, factors


def _split(codes, factors, n_train):
    return codes[:n_train], factors[:n_train], codes[n_train:], factors[n_train:]


@pytest.mark.parametrize("continuous", [False, True])
@pytest.mark.parametrize(
    "seed, n, d, sizes", [(0, 1500, 5, (3, 6, 10)), (1, 600, 3, (2, 4)), (2, 90, 4, (5, 3, 2))]
)
def test_sap_equals_reference(seed, n, d, sizes, continuous):
    train_codes, train_factors, test_codes, test_factors = _split(
        *_sample(seed, n, d, sizes), 2 * n // 3
    )
    ours = sap(train_codes, train_factors, test_codes, test_factors, continuous)
    expected = compute_sap(
        train_codes.T, train_factors.T, test_codes.T, test_factors.T, continuous
    )["SAP_score"]
    assert abs(ours["SAP_score"] - expected) < 1e-10
    assert ours["params"] == {
        "continuous_factors": continuous,
        "num_train": 2 * n // 3,
        "num_test": n - 2 * n // 3,
    }


def _identity_factors(n, seed):
    """The reference tests' IdentityObservationsData: 10 factors uniform on 1..10."""
    return np.random.RandomState(seed).randint(1, 11, size=(n, 10))


def test_sap_of_identity_codes_is_near_one():
    train, test = _identity_factors(3000, 0), _identity_factors(3000, 1)
    score = sap(train.astype(float), train, test.astype(float), test, continuous_factors=True)
    assert 0.9 <= score["SAP_score"] <= 1.0


def test_sap_of_zero_and_random_codes_is_near_zero():
    train, test = _identity_factors(3000, 0), _identity_factors(3000, 1)
    zeros = sap(np.zeros((3000, 10)), train, np.zeros((3000, 10)), test, True)
    assert zeros["SAP_score"] == 0.0
    rs = np.random.RandomState(2)
    random = sap(rs.randn(3000, 10), train, rs.randn(3000, 10), test, True)
    assert 0.0 <= random["SAP_score"] <= 0.2


def test_sap_of_duplicated_latent_is_near_zero():
    train, test = _identity_factors(3000, 0), _identity_factors(3000, 1)
    double = np.hstack([train, train]).astype(float), np.hstack([test, test]).astype(float)
    assert 0.0 <= sap(double[0], train, double[1], test, True)["SAP_score"] <= 0.2


def test_discrete_sap_ranks_identity_above_random_codes():
    train, test = _identity_factors(1000, 0)[:, :3], _identity_factors(1000, 1)[:, :3]
    good = sap(train.astype(float), train, test.astype(float), test)["SAP_score"]
    rs = np.random.RandomState(3)
    bad = sap(rs.randn(1000, 3), train, rs.randn(1000, 3), test)["SAP_score"]
    assert good > 0.15 and 0.0 <= bad < 0.05


def test_sap_is_invariant_to_permuting_and_scaling_codes_and_relabelling_classes():
    codes, factors = _sample(4, 900, 4, (3, 5))
    train_codes, train_factors, test_codes, test_factors = _split(codes, factors, 600)
    base = sap(train_codes, train_factors, test_codes, test_factors)["SAP_score"]
    order = np.random.RandomState(0).permutation(4)
    permuted = sap(train_codes[:, order], train_factors, test_codes[:, order], test_factors)
    assert permuted["SAP_score"] == pytest.approx(base, abs=1e-12)
    continuous = sap(train_codes, train_factors, test_codes, test_factors, True)["SAP_score"]
    scaled = sap(3.7 * train_codes, train_factors, 3.7 * test_codes, test_factors, True)
    assert scaled["SAP_score"] == pytest.approx(continuous, abs=1e-12)
    relabel = [np.array([2, 0, 1]), np.array([4, 1, 3, 0, 2])]

    def apply(f):
        return np.stack([relabel[k][f[:, k]] for k in range(2)], axis=1)

    relabelled = sap(train_codes, apply(train_factors), test_codes, apply(test_factors))
    assert relabelled["SAP_score"] == pytest.approx(base, abs=1e-12)


def test_sap_scores_constant_codes_and_leaves_single_valued_factors_out():
    codes, factors = _sample(5, 900, 3, (3, 4))
    codes[:, 1] = 0.3
    train_codes, train_factors, test_codes, test_factors = _split(codes, factors, 600)
    for continuous in (False, True):
        expected = compute_sap(
            train_codes.T, train_factors.T, test_codes.T, test_factors.T, continuous
        )["SAP_score"]
        ours = sap(train_codes, train_factors, test_codes, test_factors, continuous)
        assert ours["SAP_score"] == pytest.approx(expected, abs=1e-10)
        constant = np.full((600, 1), 7), np.full((300, 1), 7)
        with pytest.warns(UserWarning, match=r"factors \[2\]"):
            padded = sap(
                train_codes,
                np.hstack([train_factors, constant[0]]),
                test_codes,
                np.hstack([test_factors, constant[1]]),
                continuous,
            )
        assert padded["SAP_score"] == pytest.approx(expected, abs=1e-15)


def test_sap_with_one_code_is_its_best_score():
    factors = np.tile(np.arange(2), 200).reshape(-1, 1)
    codes = factors + 0.01 * np.random.RandomState(0).randn(400, 1)
    assert sap(codes, factors, codes, factors)["SAP_score"] == 1.0


def test_sap_rejects_non_finite_codes_and_mismatched_shapes():
    codes, factors = _sample(6, 200, 3, (4,))
    with pytest.raises(UntwineError, match="rows"):
        sap(codes, factors[:100], codes, factors)
    with pytest.raises(UntwineError, match="columns"):
        sap(codes, factors, codes[:, :2], factors)
    codes[5, 0] = np.inf
    with pytest.raises(UntwineError, match="NaN or infinite"):
        sap(codes, factors, codes, factors)
