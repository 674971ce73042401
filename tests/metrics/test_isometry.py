import numpy as np
import pytest

from untwine.errors import UntwineError
from untwine.metrics.isometry import isometry


def _uniform(n=1500, k=2, seed=0):
    return np.random.RandomState(seed).uniform(0, 1, size=(n, k))


def test_rotation_shift_and_global_scale_score_one():
    z = _uniform()
    t = 0.7
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    out = isometry(3.0 * z @ rot.T + 4.0, z)
    assert out["isometry"] == pytest.approx(1.0)
    assert out["scale"] == pytest.approx(1 / 3.0)


def test_isometric_embedding_in_more_dimensions_scores_one():
    z = _uniform()
    q, _ = np.linalg.qr(np.random.RandomState(2).normal(size=(10, 2)))
    assert isometry(z, z @ q.T)["isometry"] == pytest.approx(1.0)


def test_strong_warp_scores_clearly_less():
    z = _uniform()
    warped = np.stack([np.expm1(5 * z[:, 0]), z[:, 1]], axis=1)
    assert isometry(warped, z)["isometry"] < 0.6


def test_per_axis_rescaling_is_not_an_isometry():
    z = _uniform()
    score = isometry(z * np.array([1.0, 4.0]), z)["isometry"]
    assert 0.2 < score < 0.8


def test_constant_code_scores_zero():
    z = _uniform()
    assert isometry(np.ones((len(z), 2)), z)["isometry"] == 0.0


def test_images_are_flattened_as_reference():
    z = _uniform(n=300)
    images = np.zeros((300, 1, 2, 2))
    images[:, 0, 0, :] = z
    assert isometry(z, images, n_neighbors=5)["isometry"] == pytest.approx(1.0)


def test_bad_inputs_raise():
    z = _uniform(n=50)
    bad = z.copy()
    bad[0, 0] = np.inf
    with pytest.raises(UntwineError):
        isometry(bad, z)
    with pytest.raises(UntwineError, match="n_neighbors"):
        isometry(z, z, n_neighbors=50)
    with pytest.raises(UntwineError, match="coincide"):
        isometry(z, np.zeros((50, 2)))
