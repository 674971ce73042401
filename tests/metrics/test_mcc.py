import numpy as np
import pytest

from untwine.errors import UntwineError
from untwine.metrics.mcc import mcc


def _uniform(n=4000, k=2, seed=0):
    return np.random.RandomState(seed).uniform(-1, 1, size=(n, k))


def test_identity_gives_one():
    z = _uniform()
    assert mcc(z, z)["mcc"] == pytest.approx(1.0)


def test_permuted_sign_flipped_scaled_latents_give_one_and_the_matching():
    z = _uniform(k=3)
    codes = np.stack([-2 * z[:, 2] + 5, z[:, 0], 0.1 * z[:, 1]], axis=1)
    out = mcc(codes, z)
    assert out["mcc"] == pytest.approx(1.0)
    assert sorted(out["matching"]) == [(0, 2), (1, 0), (2, 1)]


def test_45_degree_rotation_of_uniform_latents_gives_one_over_sqrt2():
    z = _uniform(n=20000)
    rot = np.array([[1, -1], [1, 1]]) / np.sqrt(2)
    assert mcc(z @ rot.T, z)["mcc"] == pytest.approx(1 / np.sqrt(2), abs=0.01)


def test_more_codes_than_latents_matches_the_best_ones():
    z = _uniform()
    noise = np.random.RandomState(1).normal(size=(len(z), 3))
    out = mcc(np.concatenate([noise, z[:, ::-1]], axis=1), z)
    assert out["mcc"] == pytest.approx(1.0)
    assert len(out["matching"]) == 2


def test_constant_code_correlates_zero():
    z = _uniform()
    codes = np.stack([z[:, 0], np.ones(len(z))], axis=1)
    assert mcc(codes, z)["mcc"] == pytest.approx(0.5, abs=0.02)


def test_spearman_ignores_a_monotone_warp_pearson_does_not():
    z = np.random.RandomState(0).uniform(0, 1, size=(20000, 1))
    assert mcc(z**3, z, correlation="spearman")["mcc"] == pytest.approx(1.0)
    assert mcc(z**3, z)["mcc"] == pytest.approx(0.9165, abs=0.01)


def test_nan_codes_raise():
    z = _uniform()
    bad = z.copy()
    bad[3, 0] = np.nan
    with pytest.raises(UntwineError, match="NaN"):
        mcc(bad, z)


def test_row_mismatch_and_unknown_correlation_raise():
    z = _uniform()
    with pytest.raises(UntwineError):
        mcc(z[:-1], z)
    with pytest.raises(UntwineError, match="correlation"):
        mcc(z, z, correlation="kendall")
