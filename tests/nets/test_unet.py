"""The small UNet: shapes, the input/output split, FiLM conditioning, zero-initialised output."""

import math

import pytest
import torch

from untwine.errors import UntwineError
from untwine.nets.unet import ResBlock, UNet, timestep_embedding


def test_timestep_embedding_by_hand():
    emb = timestep_embedding(torch.tensor([0, 3]), 4, max_period=100.0)
    # half = 2, f = [1, 100^(-1/2)] = [1, 0.1]
    expected = [
        [1.0, 1.0, 0.0, 0.0],
        [math.cos(3), math.cos(0.3), math.sin(3), math.sin(0.3)],
    ]
    assert torch.allclose(emb, torch.tensor(expected), atol=1e-6)


@pytest.mark.parametrize("mults,blocks,side", [((1, 2), 1, 8), ((1, 2, 2), 2, 16)])
def test_unet_predicts_the_input_shape(mults, blocks, side):
    torch.manual_seed(0)
    net = UNet(4, width=16, mults=mults, blocks=blocks)
    x = torch.randn(2, 4, side, side)
    out = net(x, torch.tensor([0, 999]))
    assert out.shape == x.shape
    emb, h, skips = net.features(x, torch.tensor([0, 999]))
    assert len(skips) == 1 + len(mults) * blocks + len(mults) - 1
    assert h.shape[-1] == side // 2 ** (len(mults) - 1)
    assert torch.equal(net.output_half(h, skips, emb), out)


def test_time_conditioning_changes_the_prediction():
    torch.manual_seed(0)
    net = UNet(3, width=8)
    x = torch.randn(1, 3, 8, 8)
    assert not torch.allclose(net(x, torch.tensor([10])), net(x, torch.tensor([900])))


def test_zero_initialised_output_half_is_the_zero_map_but_trainable():
    torch.manual_seed(0)
    net = UNet(4, width=8)
    head = net.make_output_half(cond_dim=5, zero_out=True)
    x = torch.randn(3, 4, 8, 8)
    emb, h, skips = net.features(x, torch.tensor([1, 2, 3]))
    out = head(h, skips, emb, torch.randn(3, 5))
    assert torch.equal(out, torch.zeros_like(out))
    (head(h, skips, emb, torch.randn(3, 5)) * torch.randn_like(out)).sum().backward()
    assert head.conv_out.weight.grad.abs().sum() > 0


def test_resblock_film_from_cond_is_used():
    torch.manual_seed(0)
    block = ResBlock(8, 8, emb_dim=4, cond_dim=3)
    x, emb = torch.randn(2, 8, 4, 4), torch.randn(2, 4)
    a = block(x, emb, torch.zeros(2, 3))
    b = block(x, emb, torch.ones(2, 3))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="conditioning"):
        block(x, emb)


def test_bad_unet_width_is_a_user_error():
    with pytest.raises(UntwineError, match="width"):
        UNet(3, width=12)
