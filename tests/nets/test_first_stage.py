"""First stages: latent shapes, the unit-variance scale, pixel space."""

import pytest
import torch

from untwine.errors import UntwineError
from untwine.nets.first_stage import ConvAutoencoder, PixelSpace


def test_conv_autoencoder_maps_64_images_to_a_4x8x8_grid_and_back():
    torch.manual_seed(0)
    ae = ConvAutoencoder((3, 64, 64), latent_channels=4, width=16, downsamples=3)
    x = torch.rand(2, 3, 64, 64)
    z = ae.to_latent(x)
    assert z.shape == (2, 4, 8, 8) == (2, *ae.latent_shape)
    assert ae.to_image(z).shape == x.shape


def test_fit_scale_gives_unit_variance_latents_and_leaves_reconstruction_unchanged():
    torch.manual_seed(0)
    ae = ConvAutoencoder((3, 32, 32), width=8, downsamples=2)
    x = torch.rand(16, 3, 32, 32)
    before = ae.to_image(ae.to_latent(x))
    scale = ae.fit_scale(x)
    assert scale == pytest.approx(1 / ae.encode_raw(x).std().item(), rel=1e-5)
    assert ae.to_latent(x).std().item() == pytest.approx(1.0, rel=1e-4)
    assert torch.allclose(ae.to_image(ae.to_latent(x)), before, atol=1e-5)
    assert "scale" in ae.state_dict()


def test_conv_autoencoder_learns_to_reconstruct():
    torch.manual_seed(0)
    ae = ConvAutoencoder((3, 16, 16), width=8, downsamples=1)
    x = torch.rand(8, 3, 16, 16)
    opt = torch.optim.Adam(ae.parameters(), lr=3e-3)
    first = ae.loss(x).item()
    for _ in range(60):
        opt.zero_grad()
        loss = ae.loss(x)
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_pixel_space_is_the_identity_on_minus_one_one():
    x = torch.rand(2, 3, 8, 8)
    px = PixelSpace((3, 8, 8))
    assert torch.equal(px.to_latent(x), 2 * x - 1)
    assert torch.allclose(px.to_image(px.to_latent(x)), x)
    assert px.fit_scale(x) == 1.0 and px.latent_shape == (3, 8, 8)


def test_bad_image_side_is_a_user_error():
    with pytest.raises(UntwineError, match="divisible"):
        ConvAutoencoder((3, 20, 20), downsamples=3)
