import numpy as np
import pytest
import torch

from untwine.errors import UntwineError
from untwine.models.autoencoder import (
    AEConfig,
    IRMAEConfig,
    IsometricAEConfig,
    SmallAutoencoder,
    SmallVAEConfig,
    exact_isometry_penalty,
    isometry_penalty,
    neighbour_isometry_penalty,
)
from untwine.models.base import MODELS

SHAPE = (1, 32, 32)


@pytest.mark.parametrize(
    ("config", "keys"),
    [
        (AEConfig(), {"loss", "recon"}),
        (IRMAEConfig(), {"loss", "recon"}),
        (SmallVAEConfig(), {"loss", "recon", "kl"}),
        (IsometricAEConfig(), {"loss", "recon", "isometry", "isometry_scale"}),
    ],
)
def test_each_variant_gives_codes_images_and_its_loss_terms(config, keys):
    torch.manual_seed(0)
    model = SmallAutoencoder(config, SHAPE)
    x = torch.rand(8, *SHAPE)
    out = model.loss(x, 0)
    assert set(out) == keys and torch.isfinite(out["loss"])
    assert model.represent(x).shape == (8, config.latents)
    assert model.decode(model.represent(x)).shape == (8, *SHAPE)


def test_irmae_has_eight_bias_free_square_layers():
    model = SmallAutoencoder(IRMAEConfig(), SHAPE)
    layers = list(model.linear)
    assert len(layers) == 8
    assert all(layer.bias is None and layer.weight.shape == (16, 16) for layer in layers)


def test_penalty_is_zero_for_a_scaled_orthonormal_decoder():
    q, _ = torch.linalg.qr(torch.randn(50, 3, generator=torch.Generator().manual_seed(0)))
    pen, scale = isometry_penalty(lambda z: 2.0 * z @ q.T, torch.randn(16, 3), projections=4)
    assert pen.item() == pytest.approx(0.0, abs=1e-10)
    assert scale.item() == pytest.approx(4.0, rel=1e-5)


def test_penalty_is_positive_and_scale_invariant_for_a_stretching_decoder():
    w = torch.diag(torch.tensor([1.0, 3.0]))
    torch.manual_seed(0)
    a, _ = isometry_penalty(lambda z: z @ w, torch.zeros(2000, 2))
    torch.manual_seed(0)
    b, _ = isometry_penalty(lambda z: 10 * z @ w, torch.zeros(2000, 2))
    # JᵀJ = diag(1, 9), c = 5: ‖JᵀJ − cI‖²_F / c² = 32 / 25.
    assert a.item() == pytest.approx(32 / 25, rel=0.15)
    assert b.item() == pytest.approx(a.item(), rel=1e-4)


def test_exact_penalty_is_the_frobenius_norm_without_sampling():
    q, _ = torch.linalg.qr(torch.randn(50, 3, generator=torch.Generator().manual_seed(0)))
    pen, scale = exact_isometry_penalty(lambda z: 2.0 * z @ q.T, torch.randn(16, 3))
    assert pen.item() == pytest.approx(0.0, abs=1e-10)
    assert scale.item() == pytest.approx(4.0, rel=1e-5)
    w = torch.diag(torch.tensor([1.0, 3.0]))
    pen, scale = exact_isometry_penalty(lambda z: z @ w, torch.randn(5, 2))
    # JᵀJ = diag(1, 9), c = 5: (1/5 − 1)² + (9/5 − 1)² = 32/25 exactly, at every point.
    assert pen.item() == pytest.approx(32 / 25, rel=1e-5)
    assert scale.item() == pytest.approx(5.0, rel=1e-5)


def test_neighbour_penalty_compares_code_and_image_distances():
    x, x_pair = torch.rand(6, 1, 4, 4), torch.rand(6, 1, 4, 4)
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=torch.Generator().manual_seed(1)))
    code = lambda im: 3.0 * im.flatten(1) @ q  # noqa: E731 (an isometry up to the scale 3)
    pen, scale = neighbour_isometry_penalty(code(x), code(x_pair), x, x_pair)
    assert pen.item() == pytest.approx(0.0, abs=1e-10)
    assert scale.item() == pytest.approx(3.0, rel=1e-5)
    # Two pairs whose code distances are 1× and 2× their image distances: s = 1.5 (equal dx),
    # penalty ((1/1.5 − 1)² + (2/1.5 − 1)²) / 2 = 1/9.
    z, z_pair = torch.zeros(2, 1), torch.tensor([[1.0], [2.0]])
    xs, xs_pair = torch.zeros(2, 1), torch.ones(2, 1)
    pen, scale = neighbour_isometry_penalty(z, z_pair, xs, xs_pair)
    assert scale.item() == pytest.approx(1.5) and pen.item() == pytest.approx(1 / 9, rel=1e-5)


def test_neighbours_form_trains_on_pairs_of_nearest_images(tmp_path):
    from untwine.experiments.isometry import in_memory_dataset

    rng = np.random.RandomState(0)
    x = np.zeros((40, *SHAPE), dtype=np.float32)
    x[:, :, 10:20, 10:20] = np.sort(rng.rand(40))[:, None, None, None]
    model = SmallAutoencoder(IsometricAEConfig(isometry_form="neighbours", isometry_neighbors=2),
                             SHAPE)
    model.prepare(in_memory_dataset("squares", x))
    # Intensities sorted: image i's two nearest are among i−2 … i+2.
    assert np.abs(model._neighbours - np.arange(40)[:, None]).max() <= 2
    (stage,) = model.stages()
    images, pairs = stage.batches(8, rng)
    assert images.shape == pairs.shape == (8, *SHAPE)
    assert set(model.loss((images, pairs), 0)) == {"loss", "recon", "isometry", "isometry_scale"}
    with pytest.raises(UntwineError, match="neighbours"):
        model.prepare(in_memory_dataset("two", x[:2]))


def test_warmup_ramps_the_penalty_weight():
    torch.manual_seed(0)
    cfg = IsometricAEConfig(isometry_form="exact", isometry_warmup=10)
    model = SmallAutoencoder(cfg, SHAPE)
    x = torch.rand(8, *SHAPE)
    for step, ramp in ((0, 0.1), (4, 0.5), (30, 1.0)):
        out = model.loss(x, step)
        expected = out["recon"] + ramp * cfg.isometry_weight * out["isometry"]
        assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_the_one_loop_lowers_the_loss_on_an_in_memory_dataset(tmp_path):
    from untwine import runs
    from untwine.config import make_run_config
    from untwine.experiments.isometry import in_memory_dataset
    from untwine.models.base import representer
    from untwine.train import train

    torch.manual_seed(0)
    x = np.zeros((64, *SHAPE), dtype=np.float32)
    x[:, :, 10:20, 10:20] = np.random.RandomState(0).rand(64, 1, 1, 1)
    config = make_run_config(
        "isoae",
        {"train.steps": 12, "train.batch_size": 32, "train.lr": 1e-3, "train.log_every": 2,
         "train.metrics": "none", "train.device": "cpu"},
    )
    result = train(config, tmp_path, quiet=True, dataset=in_memory_dataset("squares", x))
    log = runs.read_log(tmp_path)
    assert log[-1]["loss"] < log[0]["loss"]
    codes = representer(result.model)(x)
    assert codes.shape == (64, 2) and codes.dtype == np.float64


def test_registered_and_validated():
    assert {"ae", "irmae", "smallvae", "isoae"} <= set(MODELS)
    with pytest.raises(UntwineError, match="latents"):
        AEConfig(latents=0)
    with pytest.raises(UntwineError, match="≥ 0"):
        AEConfig(beta=-1.0)
    with pytest.raises(UntwineError, match="isometry_form"):
        AEConfig(isometry_form="sampled")
    with pytest.raises(UntwineError, match="isometry_warmup"):
        AEConfig(isometry_warmup=-1)
