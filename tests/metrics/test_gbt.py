"""The presorted gradient boosting engine against scikit-learn's GradientBoostingClassifier."""

import numba.core.caching
import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from untwine.errors import UntwineError
from untwine.metrics.gbt import ExactGradientBoosting, _compiled, _pairwise_sum


def _codes(num_classes, n=600, d=5, seed=0):
    rs = np.random.RandomState(seed)
    y = rs.randint(num_classes, size=n)
    x = np.outer(y, rs.randn(d)) / num_classes + 0.3 * rs.randn(n, d)
    return x, y


@pytest.mark.parametrize("num_classes", [2, 5])
def test_trees_leaf_values_and_importances_equal_sklearn_bit_for_bit(num_classes):
    x, y = _codes(num_classes)
    theirs = GradientBoostingClassifier(n_estimators=15, random_state=0).fit(x, y)
    ours = ExactGradientBoosting(n_estimators=15, random_state=0).fit(x, y)
    for stage in range(15):
        for k in range(theirs.estimators_.shape[1]):
            tree = theirs.estimators_[stage, k].tree_
            m = tree.node_count
            assert ours.node_count_[stage, k] == m
            np.testing.assert_array_equal(ours._feature[stage, k, :m], tree.feature)
            np.testing.assert_array_equal(ours._threshold[stage, k, :m], tree.threshold)
            leaves = tree.children_left < 0
            np.testing.assert_array_equal(
                ours._value[stage, k, :m][leaves], tree.value[:, 0, 0][leaves]
            )
    np.testing.assert_array_equal(ours.feature_importances_, theirs.feature_importances_)
    x_test, _ = _codes(num_classes, n=200, seed=1)
    np.testing.assert_array_equal(
        ours.decision_function(x_test), theirs.decision_function(x_test).reshape(len(x_test), -1)
    )
    np.testing.assert_array_equal(ours.predict(x_test), theirs.predict(x_test))
    np.testing.assert_array_equal(ours.predict_train(), theirs.predict(x))


def test_one_class_is_refused():
    with pytest.raises(UntwineError, match="two classes"):
        ExactGradientBoosting().fit(np.ones((5, 2)), np.zeros(5))


@pytest.mark.parametrize("max_depth", [1, 4])
def test_other_depths_equal_sklearn_bit_for_bit(max_depth):
    # Depth 1 partitions nothing; depth 4 writes children through three levels of sorted lists.
    x, y = _codes(4, n=500, d=6, seed=2)
    theirs = GradientBoostingClassifier(n_estimators=8, max_depth=max_depth, random_state=3)
    theirs.fit(x, y)
    ours = ExactGradientBoosting(n_estimators=8, max_depth=max_depth, random_state=3).fit(x, y)
    np.testing.assert_array_equal(ours.feature_importances_, theirs.feature_importances_)
    np.testing.assert_array_equal(ours.train_raw_, theirs.decision_function(x))
    # Prediction descends max_depth levels for every sample, leaves being their own children.
    x_test, _ = _codes(4, n=200, d=6, seed=5)
    np.testing.assert_array_equal(ours.decision_function(x_test), theirs.decision_function(x_test))


def test_codes_closer_than_the_split_threshold_equal_sklearn_bit_for_bit():
    # Neighbouring values 1 ulp apart (6e-8 at 0.5) are too close to split between, 3 ulps are
    # not: the flagged entries of the sorted lists are where the scans must read values.
    rs = np.random.RandomState(4)
    n, d = 500, 4
    y = rs.randint(3, size=n)
    ulp = np.spacing(np.float32(0.5))
    x = np.empty((n, d), dtype=np.float32)
    for j in range(d):
        levels = np.cumsum(rs.choice([1, 1, 3, 5], size=n))
        rank = np.argsort(np.argsort(y + 0.8 * rs.randn(n)))
        x[:, j] = np.float32(0.5) + (levels[rank] * ulp).astype(np.float32)
    sorted_x = np.sort(x, axis=0)
    assert np.mean(np.diff(sorted_x, axis=0) <= np.float32(1e-7)) > 0.4
    theirs = GradientBoostingClassifier(n_estimators=10, random_state=0).fit(x, y)
    ours = ExactGradientBoosting(n_estimators=10, random_state=0).fit(x, y)
    for stage in range(10):
        for k in range(3):
            tree = theirs.estimators_[stage, k].tree_
            m = tree.node_count
            np.testing.assert_array_equal(ours._threshold[stage, k, :m], tree.threshold)
    np.testing.assert_array_equal(ours.feature_importances_, theirs.feature_importances_)
    np.testing.assert_array_equal(ours.train_raw_, theirs.decision_function(x))


def test_pairwise_sum_equals_numpys_bit_for_bit():
    # Leaf values are means; NumPy sums blocks of up to 128 with 8 accumulators and splits
    # longer runs in halves. Values over 16 orders of magnitude make every rounding show.
    rs = np.random.RandomState(0)
    for n in [*range(0, 140), 255, 256, 257, 1000, 1031, 4097, 10000, 70001]:
        a = rs.randn(n + 3) * 10.0 ** rs.uniform(-8, 8, size=n + 3)
        assert _pairwise_sum(a, 3, n) == np.add.reduce(a[3:]), n


def test_compiles_where_numba_can_write_no_cache(monkeypatch):
    # numba raises at decoration when cache=True finds no writable location (read-only
    # install and home); the engine must still import and run, compiling in each process.
    monkeypatch.setattr(numba.core.caching.CacheImpl, "_locator_classes", [])
    monkeypatch.setattr(numba.core.config, "CACHE_LOCATOR_CLASSES", "")
    with pytest.raises(RuntimeError, match="no locator"):
        numba.njit(cache=True)(lambda a, b: a + b)
    add = _compiled(lambda a, b: a + b)
    assert add(2, 3) == 5
