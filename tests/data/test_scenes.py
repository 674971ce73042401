import numpy as np
import pytest

from untwine.data import load_dataset
from untwine.data.manifolds import latent_metric
from untwine.data.scenes import palette, scene_manifold
from untwine.errors import UntwineError


@pytest.fixture(scope="module")
def scene2d():
    return load_dataset("scene2d")


def _relative_metric_error(ds, n=12, eps=0.03):
    z = 0.05 * ds.latent_ranges + 0.9 * ds.sample_latents(n, np.random.RandomState(1))
    g = latent_metric(ds, z, eps=eps)
    c = np.diagonal(g, axis1=1, axis2=2).mean()
    return np.linalg.norm(g / c - np.eye(ds.latent_dim), axis=(1, 2)) / np.sqrt(ds.latent_dim)


def test_palette_has_constant_norm_and_speed():
    h = np.linspace(0, 1, 50)
    norms = np.linalg.norm(palette(h), axis=1)
    speeds = np.linalg.norm(np.diff(palette(h), axis=0), axis=1)
    assert np.ptp(norms) < 1e-12 and np.ptp(speeds) < 1e-12


def test_scene2d_is_nearly_isometric_and_the_warped_control_is_not(scene2d):
    # Measured: median ‖JᵀJ/c − I‖_F/√d ≈ 0.09 for scene2d (supersampling noise at eps = 0.03).
    assert np.median(_relative_metric_error(scene2d)) < 0.2
    warped = load_dataset("scenewarped")
    assert np.median(_relative_metric_error(warped)) > 0.4


def test_scene_images_are_rgb_unit_range_and_move_with_every_latent(scene2d):
    z = scene2d.sample_latents(4, np.random.RandomState(0))
    x = scene2d.render_latents(z)
    assert x.shape == (4, 3, 32, 32) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 1
    for k in range(2):
        step = np.zeros_like(z)
        step[:, k] = 0.2 * scene2d.latent_ranges[k]
        assert np.abs(scene2d.render_latents(z + step) - x).mean() > 1e-3


def test_unknown_scene_factor_is_refused():
    with pytest.raises(UntwineError, match="unknown scene factors"):
        scene_manifold("bad", ("camera_roll",))
