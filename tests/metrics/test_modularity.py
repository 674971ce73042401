import numpy as np
import pytest
from dlib_reference import compute_modularity_explicitness
from dlib_reference import modularity as reference_modularity

from untwine.errors import UntwineError
from untwine.metrics import modularity_explicitness
from untwine.metrics.modularity import modularity

KEYS = ("modularity_score", "explicitness_score_train", "explicitness_score_test")


def _sample(seed, n, d, sizes, noise=0.3):
    """Factors uniform over the grid and codes that mix them linearly, plus noise."""
    rs = np.random.RandomState(seed)
    factors = np.stack([rs.randint(0, s, n) for s in sizes], axis=1)
    mixing = rs.randn(len(sizes), d) * (rs.rand(len(sizes), d) < 0.5)
    codes = (factors / np.array(sizes)) @ mixing + noise * rs.randn(n, d)
    return codes, factors


def _split(codes, factors, n_train):
    return codes[:n_train], factors[:n_train], codes[n_train:], factors[n_train:]


def test_modularity_of_diagonal_mi_is_one():
    assert modularity(np.diag(5.0 * np.ones(5))) == pytest.approx(1.0, abs=1e-15)


def test_modularity_of_diagonal_with_empty_codes_is_two_thirds():
    assert modularity(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])) == pytest.approx(2 / 3)


def test_modularity_of_zero_mi_is_zero():
    assert modularity(np.zeros((10, 10))) == 0.0


def test_modularity_of_redundant_codes_and_missed_factors_is_one():
    diagonal = np.diag(5.0 * np.ones(5))
    assert modularity(np.vstack([diagonal, diagonal])) == pytest.approx(1.0, abs=1e-15)
    assert modularity(diagonal[:2, :]) == pytest.approx(1.0, abs=1e-15)


def test_modularity_of_one_code_for_two_factors_is_one_minus_one_ninth():
    diagonal = np.diag(5.0 * np.ones(5))
    assert modularity(np.hstack([diagonal, diagonal])) == pytest.approx(1 - 1 / 9, abs=1e-15)


def test_modularity_with_one_factor_is_one_for_informative_codes():
    assert modularity(np.array([[0.5], [0.0], [2.0]])) == pytest.approx(2 / 3, abs=1e-15)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_modularity_equals_reference_on_random_matrices():
    rs = np.random.RandomState(0)
    for shape in [(10, 5), (3, 7), (1, 2)]:
        mi = rs.rand(*shape) ** 3
        mi[0, :] = 0.0
        assert modularity(mi) == pytest.approx(reference_modularity(mi), abs=1e-14)


@pytest.mark.parametrize(
    "seed, n, d, sizes, num_bins",
    [(0, 1500, 6, (3, 6, 10), 20), (1, 400, 3, (2, 4), 20), (2, 300, 8, (5, 3), 9)],
)
def test_modularity_explicitness_equals_reference(seed, n, d, sizes, num_bins):
    split = _split(*_sample(seed, n, d, sizes), 2 * n // 3)
    # every test class must also occur in training, or the reference misaligns its columns
    assert all(
        set(np.unique(split[3][:, k])) == set(np.unique(split[1][:, k])) for k in range(len(sizes))
    )
    ours = modularity_explicitness(*split, num_bins=num_bins)
    expected = compute_modularity_explicitness(*(a.T for a in split), num_bins=num_bins)
    for key in KEYS:
        assert abs(ours[key] - expected[key]) < 1e-8, key
    assert ours["params"] == {
        "num_bins": num_bins,
        "num_train": 2 * n // 3,
        "num_test": n - 2 * n // 3,
    }


def _identity_factors(n, seed, num=5):
    """The reference tests' IdentityObservationsData (10 values per factor), fewer factors."""
    return np.random.RandomState(seed).randint(1, 11, size=(n, num))


def test_identity_and_duplicated_codes_are_modular_and_explicit():
    train, test = _identity_factors(2000, 0), _identity_factors(1000, 1)
    scores = modularity_explicitness(train.astype(float), train, test.astype(float), test)
    assert 0.9 <= scores["modularity_score"] <= 1.0
    assert scores["explicitness_score_test"] >= 0.9
    double = modularity_explicitness(
        np.hstack([train, train]).astype(float), train, np.hstack([test, test]).astype(float), test
    )
    assert 0.9 <= double["modularity_score"] <= 1.0


def test_random_codes_are_not_explicit():
    train, test = _identity_factors(2000, 0), _identity_factors(1000, 1)
    rs = np.random.RandomState(2)
    scores = modularity_explicitness(rs.randn(2000, 5), train, rs.randn(1000, 5), test)
    assert abs(scores["explicitness_score_test"] - 0.5) < 0.05


def test_modularity_explicitness_invariances():
    codes, factors = _sample(3, 900, 4, (3, 5))
    train_codes, train_factors, test_codes, test_factors = _split(codes, factors, 600)
    base = modularity_explicitness(train_codes, train_factors, test_codes, test_factors)
    order = np.random.RandomState(0).permutation(4)
    variants = [
        (train_codes[:, order], train_factors, test_codes[:, order], test_factors),
        (4.0 * train_codes, train_factors, 4.0 * test_codes, test_factors),
    ]
    relabel = [np.array([2, 0, 1]), np.array([4, 1, 3, 0, 2])]

    def apply(f):
        return np.stack([relabel[k][f[:, k]] for k in range(2)], axis=1)

    variants.append((train_codes, apply(train_factors), test_codes, apply(test_factors)))
    for variant in variants:
        scores = modularity_explicitness(*variant)
        assert scores["modularity_score"] == pytest.approx(base["modularity_score"], abs=1e-12)
        for key in KEYS[1:]:
            assert scores[key] == pytest.approx(base[key], abs=1e-5)


def test_constant_code_is_centred_not_divided_by_zero():
    codes, factors = _sample(4, 900, 3, (3, 4))
    codes[:, 1] = 0.0
    scores = modularity_explicitness(*_split(codes, factors, 600))
    without = modularity_explicitness(*_split(codes[:, [0, 2]], factors, 600))
    assert all(np.isfinite(scores[key]) for key in KEYS)
    for key in KEYS[1:]:
        assert scores[key] == pytest.approx(without[key], abs=1e-4)


def test_single_valued_factor_is_left_out_of_explicitness():
    codes, factors = _sample(5, 900, 3, (3, 4))
    base = modularity_explicitness(*_split(codes, factors, 600))
    padded = np.hstack([factors, np.full((900, 1), 1)])
    with pytest.warns(UserWarning, match=r"factors \[2\]"):
        scores = modularity_explicitness(*_split(codes, padded, 600))
    for key in KEYS[1:]:
        assert scores[key] == pytest.approx(base[key], abs=1e-15)


def test_class_missing_from_test_set_is_left_out_of_test_auc():
    codes, factors = _sample(6, 900, 3, (4,))
    train_codes, train_factors, test_codes, test_factors = _split(codes, factors, 600)
    keep = test_factors[:, 0] != 2
    scores = modularity_explicitness(
        train_codes, train_factors, test_codes[keep], test_factors[keep]
    )
    assert 0.5 < scores["explicitness_score_test"] <= 1.0


def test_modularity_explicitness_rejects_bad_inputs():
    codes, factors = _sample(7, 300, 3, (4,))
    with pytest.raises(UntwineError, match="rows"):
        modularity_explicitness(codes, factors[:10], codes, factors)
    with pytest.raises(UntwineError, match="columns"):
        modularity_explicitness(codes, factors, codes[:, :2], factors)
    codes[0, 0] = np.nan
    with pytest.raises(UntwineError, match="NaN or infinite"):
        modularity_explicitness(codes, factors, codes, factors)
