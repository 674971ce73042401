import numpy as np
import pytest

from untwine.data import load_dataset
from untwine.data.manifolds import latent_metric
from untwine.errors import UntwineError


def _interior(ds, n=60, seed=0):
    z = ds.sample_latents(n, np.random.RandomState(seed))
    return 0.02 * ds.latent_ranges + 0.96 * z


def _metric_summary(ds):
    g = latent_metric(ds, _interior(ds))
    diag = np.diagonal(g, axis1=1, axis2=2)
    c = diag.mean()
    off = g - diag[:, :, None] * np.eye(g.shape[1])
    return diag / c, np.abs(off).max() / c


@pytest.mark.parametrize("name", ["blob2d", "blob3d"])
def test_isometric_manifolds_have_jtj_equal_c_identity_everywhere(name):
    ratios, off = _metric_summary(load_dataset(name))
    assert np.abs(ratios - 1).max() < 0.02
    assert off < 0.01


def test_warped_control_is_not_isometric():
    ratios, _ = _metric_summary(load_dataset("blob2d_warped"))
    assert ratios.max() / ratios.min() > 100


def test_grid_images_render_the_factor_values_exactly():
    ds = load_dataset("blob3d")
    f = ds.sample_factors(5, np.random.RandomState(1))
    np.testing.assert_array_equal(ds.images_numpy(f), ds.render_latents(ds.space.factor_values(f)))


def test_latents_are_uniform_in_the_box_and_images_in_unit_range():
    ds = load_dataset("blob3d")
    z = ds.sample_latents(4000, np.random.RandomState(0))
    assert (z >= 0).all() and (z <= ds.latent_ranges).all()
    np.testing.assert_allclose(z.mean(0), ds.latent_ranges / 2, rtol=0.05)
    x = ds.render_latents(z[:50])
    assert x.shape == (50, 1, 32, 32) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 1


def test_width_latent_extent_matches_closed_form_speeds():
    # Continuous blob: translation speed sqrt(pi/2) per pixel, width speed sqrt(2 pi) per pixel
    # of sigma, so a width range of 2 px over a 10 px position range gives 2*2/10 = 0.4.
    ds = load_dataset("blob3d")
    assert ds.latent_ranges[:2] == pytest.approx([1.0, 1.0])
    assert ds.latent_ranges[2] == pytest.approx(0.4, abs=0.01)


def test_factor_grid_and_names():
    ds = load_dataset("blob2d", steps=16)
    assert ds.factor_names == ("x", "y") and ds.factor_sizes == (16, 16)
    assert ds.factor_values[0][[0, -1]] == pytest.approx([0.0, 1.0])
    with pytest.raises(UntwineError, match="latents"):
        ds.render_latents(np.zeros((3, 3)))
