"""DisDiff's encoder, orthogonal factor-index embedding and field decoder."""

import pytest
import torch

from untwine.errors import UntwineError
from untwine.nets.disdiff import FactorEncoder, FieldDecoder, OrthogonalEmbedding
from untwine.nets.unet import UNet


def test_factor_encoder_gives_units_by_dims():
    enc = FactorEncoder((3, 64, 64), units=6, dims=32, width=16)
    assert enc(torch.rand(2, 3, 64, 64)).shape == (2, 6, 32)
    with pytest.raises(UntwineError, match="power-of-two"):
        FactorEncoder((3, 48, 48), 2, 2)


def test_orthogonal_embedding_is_orthogonal():
    torch.manual_seed(0)
    p = OrthogonalEmbedding(16)()
    assert torch.allclose(p @ p.T, torch.eye(16), atol=1e-5)


def _decoder(units=3, dims=4):
    torch.manual_seed(0)
    unet = UNet(4, width=8)
    return unet, FieldDecoder(unet, units, dims)


def test_fields_start_at_zero():
    unet, dec = _decoder()
    x, t = torch.randn(2, 4, 8, 8), torch.tensor([5, 700])
    fields = dec(*unet.features(x, t), torch.randn(2, 3, 4))
    assert fields.shape == (2, 3, 4, 8, 8)
    assert torch.equal(fields, torch.zeros_like(fields))


def test_batched_fields_equal_one_pass_per_unit_and_depend_only_on_their_own_unit():
    unet, dec = _decoder()
    torch.nn.init.normal_(dec.body.conv_out.weight)  # leave the zero start
    x, t = torch.randn(2, 4, 8, 8), torch.tensor([5, 700])
    emb, h, skips = unet.features(x, t)
    z = torch.randn(2, 3, 4)
    fields = dec(emb, h, skips, z)
    index = dec.index_embed(dec.index_rows())
    for c in range(3):
        one = dec.body(h, skips, emb + index[c], dec.z_embed(z[:, c]))
        assert torch.allclose(fields[:, c], one, atol=1e-5)
    z2 = z.clone()
    z2[:, 1] += 1.0
    moved = (dec(emb, h, skips, z2) - fields).abs().flatten(2).amax(2)
    assert moved[:, 1].min() > 1e-3 and moved[:, [0, 2]].max() == 0
