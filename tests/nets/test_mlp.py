import torch
from torch import nn

from untwine.nets.mlp import factorvae_discriminator, mlp


def test_mlp_has_no_activation_after_the_last_layer():
    net = mlp([3, 5, 2])
    assert [type(m) for m in net] == [nn.Linear, nn.ReLU, nn.Linear]
    assert net(torch.randn(4, 3)).shape == (4, 2)


def test_discriminator_is_six_leaky_layers_of_1000_to_two_logits():
    net = factorvae_discriminator(10)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    leaky = [m for m in net if isinstance(m, nn.LeakyReLU)]
    assert [(m.in_features, m.out_features) for m in linears] == [(10, 1000)] + [
        (1000, 1000)
    ] * 5 + [(1000, 2)]
    assert len(leaky) == 6 and all(m.negative_slope == 0.2 for m in leaky)
    assert sum(p.numel() for p in net.parameters()) == 10 * 1000 + 1000 + 5 * 1_001_000 + 2002
    assert net(torch.randn(3, 10)).shape == (3, 2)


def test_leaky_slope_scales_negative_inputs_by_0_2():
    net = mlp([1, 1, 1], nn.LeakyReLU, negative_slope=0.2)
    with torch.no_grad():
        for layer in (net[0], net[2]):
            layer.weight.fill_(1.0)
            layer.bias.zero_()
    assert net(torch.tensor([[-5.0], [3.0]])).flatten().tolist() == [-1.0, 3.0]
