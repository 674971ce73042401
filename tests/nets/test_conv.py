import pytest
import torch
import torch.nn.functional as F
from torch import nn

from untwine.errors import UntwineError
from untwine.nets.conv import Decoder, Encoder, check_image_shape


def _shapes_after(module: nn.Module, kind: type, x: torch.Tensor) -> list[tuple[int, ...]]:
    shapes = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape[1:])))
        for m in module.modules()
        if isinstance(m, kind)
    ]
    module(x)
    for h in hooks:
        h.remove()
    return shapes


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("channels", [1, 3])
def test_dlib_shapes_match_reference_table(channels):
    enc, dec = Encoder(channels, 10, "dlib"), Decoder(channels, 10, "dlib")
    x = torch.rand(2, channels, 64, 64)
    assert _shapes_after(enc, nn.Conv2d, x) == [(32, 32, 32), (32, 16, 16), (64, 8, 8), (64, 4, 4)]
    assert [c.kernel_size for c in enc.modules() if isinstance(c, nn.Conv2d)] == [
        (4, 4),
        (4, 4),
        (2, 2),
        (2, 2),
    ]
    mu, logvar = enc(x)
    assert mu.shape == logvar.shape == (2, 10)
    assert _shapes_after(dec, nn.ConvTranspose2d, mu) == [
        (64, 8, 8),
        (32, 16, 16),
        (32, 32, 32),
        (channels, 64, 64),
    ]
    assert _shapes_after(dec, nn.Linear, mu) == [(256,), (1024,)]


@pytest.mark.parametrize("channels", [1, 3])
def test_burgess_shapes_are_four_32_channel_convs_and_two_dense_256(channels):
    enc, dec = Encoder(channels, 7, "burgess"), Decoder(channels, 7, "burgess")
    x = torch.rand(2, channels, 64, 64)
    assert _shapes_after(enc, nn.Conv2d, x) == [(32, 32, 32), (32, 16, 16), (32, 8, 8), (32, 4, 4)]
    assert _shapes_after(enc, nn.Linear, x) == [(256,), (256,), (14,)]
    z = torch.randn(2, 7)
    assert _shapes_after(dec, nn.Linear, z) == [(256,), (256,), (512,)]
    assert dec(z).shape == (2, channels, 64, 64)


def test_dlib_parameter_counts_match_hand_count():
    # encoder: conv(1→32,4×4), conv(32→32,4×4), conv(32→64,2×2), conv(64→64,2×2),
    # dense 1024→256, dense 256→2·10
    enc = 16 * 32 + 32 + 16 * 32 * 32 + 32 + 4 * 32 * 64 + 64 + 4 * 64 * 64 + 64
    enc += 1024 * 256 + 256 + 256 * 20 + 20
    # decoder: dense 10→256, 256→1024, convT 64→64, 64→32, 32→32, 32→1 (4×4)
    dec = 10 * 256 + 256 + 256 * 1024 + 1024
    dec += 16 * 64 * 64 + 64 + 16 * 64 * 32 + 32 + 16 * 32 * 32 + 32 + 16 * 32 + 1
    assert (enc, dec) == (309_204, 381_313)
    assert _n_params(Encoder(1, 10, "dlib")) == enc
    assert _n_params(Decoder(1, 10, "dlib")) == dec
    assert _n_params(Encoder(3, 10, "dlib")) == enc + 2 * 16 * 32
    assert _n_params(Decoder(3, 10, "dlib")) == dec + 2 * (16 * 32 + 1)


def test_burgess_parameter_counts_match_hand_count():
    enc = 16 * 32 + 32 + 3 * (16 * 32 * 32 + 32) + 512 * 256 + 256 + 256 * 256 + 256 + 256 * 20 + 20
    dec = 10 * 256 + 256 + 256 * 256 + 256 + 256 * 512 + 512 + 3 * (16 * 32 * 32 + 32) + 16 * 32 + 1
    assert (enc, dec) == (252_052, 249_953)
    assert _n_params(Encoder(1, 10, "burgess")) == enc
    assert _n_params(Decoder(1, 10, "burgess")) == dec


def _tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


@pytest.mark.parametrize("architecture", ["dlib", "burgess"])
def test_conv_padding_equals_tensorflow_same(architecture):
    size = 64
    for conv in (m for m in Encoder(1, 10, architecture).modules() if isinstance(m, nn.Conv2d)):
        before, after = _tf_same_padding(size, conv.kernel_size[0], conv.stride[0])
        assert conv.padding == (before, before) and before == after
        size //= 2


def test_transposed_conv_is_the_adjoint_of_the_same_padded_conv():
    # TF's conv2d_transpose(padding="same") is the gradient of conv2d(padding="same").
    torch.manual_seed(0)
    dec = Decoder(1, 10, "dlib")
    for convt, size in zip(
        [m for m in dec.modules() if isinstance(m, nn.ConvTranspose2d)], [4, 8, 16, 32], strict=True
    ):
        x = torch.randn(1, convt.in_channels, size, size, dtype=torch.float64)
        y = torch.randn(1, convt.out_channels, 2 * size, 2 * size, dtype=torch.float64)
        w = convt.weight.detach().double()
        before, after = _tf_same_padding(2 * size, 4, 2)
        conv_y = F.conv2d(F.pad(y, (before, after, before, after)), w, stride=2)
        convt_x = F.conv_transpose2d(x, w, stride=2, padding=convt.padding)
        assert torch.allclose((conv_y * x).sum(), (convt_x * y).sum())


@pytest.mark.parametrize("shape", [(1, 32, 32), (2, 64, 64), (64, 64, 3), (1, 64)])
def test_unsupported_image_shape_raises_with_the_fix(shape):
    with pytest.raises(UntwineError, match="64"):
        check_image_shape(shape)


def test_unknown_architecture_raises():
    with pytest.raises(UntwineError, match="dlib, burgess"):
        Encoder(1, 10, "resnet")
