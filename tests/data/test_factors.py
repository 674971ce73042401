import numpy as np
import pytest

from untwine.data.factors import FactorSpace
from untwine.errors import UntwineError

SPACE = FactorSpace.from_sizes(["a", "b", "c"], [3, 4, 5])


def test_index_round_trip_over_random_indices_and_corners():
    rng = np.random.RandomState(0)
    idx = np.concatenate([rng.randint(0, len(SPACE), 500), [0, len(SPACE) - 1]])
    assert np.array_equal(SPACE.factors_to_index(SPACE.index_to_factors(idx)), idx)
    corners = np.array(np.meshgrid([0, 2], [0, 3], [0, 4], indexing="ij")).reshape(3, -1).T
    assert np.array_equal(SPACE.index_to_factors(SPACE.factors_to_index(corners)), corners)


def test_c_order_last_factor_fastest():
    assert SPACE.index_to_factors([0, 1, 5, 20]).tolist() == [
        [0, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0]
    ]
    assert len(SPACE) == 60


def test_sample_factors_matches_reference_draw_order():
    rng = np.random.RandomState(7)
    got = SPACE.sample_factors(6, rng)
    ref_rng = np.random.RandomState(7)
    expected = np.stack([ref_rng.randint(s, size=6) for s in (3, 4, 5)], axis=1)
    assert np.array_equal(got, expected)


def test_sample_factors_is_uniform_over_each_factor():
    counts = np.bincount(SPACE.sample_factors(50_000, np.random.RandomState(0))[:, 2], minlength=5)
    assert np.allclose(counts / 50_000, 0.2, atol=0.01)


def test_factor_values_lookup():
    space = FactorSpace.from_sizes(["x", "y"], [2, 3], [[0.5, 1.0], [10, 20, 30]])
    assert space.factor_values(np.array([[1, 2], [0, 0]])).tolist() == [[1.0, 30.0], [0.5, 10.0]]


@pytest.mark.parametrize(
    "bad",
    [np.zeros((2, 2), int), np.array([[0, 0, 5]]), np.array([[-1, 0, 0]]), np.array([[0.5, 0, 0]])],
)
def test_bad_factors_raise_clear_errors(bad):
    with pytest.raises(UntwineError):
        SPACE.check_factors(bad)


def test_index_out_of_range_raises():
    with pytest.raises(UntwineError, match="out of range"):
        SPACE.index_to_factors([60])


def test_mismatched_values_raise():
    with pytest.raises(UntwineError, match="size 2 but 3 values"):
        FactorSpace.from_sizes(["x"], [2], [[1, 2, 3]])
