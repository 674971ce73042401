import numpy as np
import pytest
import torch

from untwine.data import load_dataset
from untwine.errors import UntwineError
from untwine.metrics import mcc
from untwine.metrics.isometry import isometry
from untwine.models.spectral import (
    SpectralICA,
    candidate_neighbors,
    default_neighbors,
    isometric_fit,
    min_neighbors,
)


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


def test_auto_neighbours_avoid_a_folded_embedding_without_labels():
    # blob3d, 500 points, seed 4: k = 10 folds the embedding (MCC 0.34, LI 0.64).
    ds = load_dataset("blob3d")
    z = ds.sample_latents(500, np.random.RandomState(4))
    x = ds.render_latents(z)
    folded = SpectralICA(3, n_neighbors=10, random_state=4).fit(x)
    auto = SpectralICA(3, random_state=4)
    codes = auto.fit_transform(x)
    assert folded.isometry_score_ < 0.8
    assert set(auto.neighbor_scores_) == set(candidate_neighbors(3, 500)) == {16, 24, 32}
    assert auto.isometry_score_ == max(auto.neighbor_scores_.values()) > 0.95
    assert mcc(codes, z)["mcc"] > 0.97


def test_isometric_fit_score_equals_the_metric_on_scaled_codes():
    rng = np.random.RandomState(0)
    z = rng.uniform(size=(300, 2))
    rotation = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    data = np.concatenate([z, np.zeros((300, 3))], axis=1) @ rotation
    codes = z * [2.0, 0.5]
    scales, score = isometric_fit(codes, data)
    np.testing.assert_allclose(scales, [0.5, 2.0], rtol=1e-6)
    assert score == pytest.approx(isometry(codes * scales, data)["isometry"]) == pytest.approx(1.0)


def test_bad_neighbour_option_is_refused():
    with pytest.raises(UntwineError, match="'auto'"):
        SpectralICA(2, n_neighbors="best").fit(np.random.RandomState(0).normal(size=(50, 4)))
