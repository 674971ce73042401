import numpy as np
import pytest
import torch

from untwine.data import load_dataset
from untwine.errors import UntwineError
from untwine.metrics import mcc
from untwine.models.spectral import SpectralICA, default_neighbors, min_neighbors


@pytest.fixture(scope="module")
def blob2d_fit():
    ds = load_dataset("blob2d")
    model = SpectralICA(2, pca_components=20, n_samples=600)
    codes = model.fit_transform(ds)
    return ds, model, codes


def test_recovers_blob2d_latents_up_to_permutation_and_sign(blob2d_fit):
    _, model, codes = blob2d_fit
    assert codes.shape == (600, 2)
    assert mcc(codes, model.fit_latents_)["mcc"] > 0.97


def test_transform_on_training_points_reproduces_fit_transform(blob2d_fit):
    ds, model, codes = blob2d_fit
    again = model.transform(ds.render_latents(model.fit_latents_))
    scale = codes.std(0)
    assert np.abs(again - codes).max(0).max() < 0.05 * scale.min()


def test_unseen_images_get_codes_that_track_their_latents(blob2d_fit):
    ds, model, _ = blob2d_fit
    z = ds.sample_latents(200, np.random.RandomState(7))
    assert mcc(model.transform(ds.render_latents(z)), z)["mcc"] > 0.95


def test_represent_takes_float32_images_and_returns_float32_codes(blob2d_fit):
    ds, model, _ = blob2d_fit
    x = torch.from_numpy(ds.render_latents(np.full((3, 2), 0.5)))
    out = model.represent(x)
    assert out.dtype == torch.float32 and out.shape == (3, 2)


def test_flat_and_image_inputs_give_the_same_codes():
    ds = load_dataset("blob2d")
    x = ds.render_latents(ds.sample_latents(200, np.random.RandomState(0)))
    a = SpectralICA(2).fit_transform(x)
    b = SpectralICA(2).fit_transform(x.reshape(200, -1))
    np.testing.assert_allclose(a, b)


def test_neighbour_defaults_exceed_the_hessian_minimum():
    assert min_neighbors(2) == 6 and min_neighbors(3) == 10
    assert all(default_neighbors(d) > d * (d + 3) / 2 for d in range(1, 8))


def test_too_few_or_too_many_neighbours_raise():
    x = np.random.RandomState(0).normal(size=(30, 5))
    with pytest.raises(UntwineError, match="too small"):
        SpectralICA(2, n_neighbors=5).fit(x)
    with pytest.raises(UntwineError, match="smaller than the number of points"):
        SpectralICA(2, n_neighbors=30).fit(x)
    with pytest.raises(UntwineError, match="not fitted"):
        SpectralICA(2).transform(x)
    with pytest.raises(UntwineError, match="shape"):
        SpectralICA(2).fit(np.zeros(10))


def test_represent_modes_agree_because_the_embedding_is_deterministic(blob2d_fit):
    ds, model, _ = blob2d_fit
    x = torch.from_numpy(ds.render_latents(np.full((2, 2), 0.3)))
    assert torch.equal(model.represent(x, mode="sampled"), model.represent(x))
    with pytest.raises(UntwineError, match="mode"):
        model.represent(x, mode="median")
