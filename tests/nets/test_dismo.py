import pytest
import torch

from untwine.nets.dismo import DisMo, RandomFeatures, normalise_content


def test_normalised_content_has_zero_mean_and_unit_variance_per_image():
    c = torch.randn(5, 8) * 7 + 3
    hat = normalise_content(c)
    assert torch.allclose(hat.mean(1), torch.zeros(5), atol=1e-5)
    assert torch.allclose(hat.var(1, unbiased=False), torch.ones(5), atol=1e-4)
    # the shared distribution forgets each code's offset and scale
    assert torch.allclose(normalise_content(3 * c + 1), hat, atol=1e-4)
    assert torch.allclose(normalise_content(torch.tensor([[1.0, 3.0]])),
                          torch.tensor([[-1.0, 1.0]]), atol=1e-4)


def test_dismo_is_the_affine_transform_of_normalised_content_by_style():
    module = DisMo(content_dim=2, style_dim=1, hidden=4)
    last = module.affine[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([1.0, -0.5, 0.25, 2.0]))  # Δγ = (1, -0.5), β = (0.25, 2)
    c, s = torch.tensor([[1.0, 3.0]]), torch.randn(1, 1)
    gamma, beta = module.gamma_beta(s)
    assert gamma.tolist() == [[2.0, 0.5]] and beta.tolist() == [[0.25, 2.0]]
    # ĉ = (-1, 1): h = (2 · -1 + 0.25, 0.5 · 1 + 2)
    assert module(c, s).tolist()[0] == pytest.approx([-1.75, 2.5], abs=1e-4)
    raw = DisMo(2, 1, hidden=4, normalise=False)
    raw.load_state_dict(module.state_dict())
    assert raw(c, s).tolist()[0] == pytest.approx([2.25, 3.5], abs=1e-4)


def test_style_changes_the_output_only_through_gamma_and_beta():
    torch.manual_seed(0)
    module = DisMo(4, 3)
    c, s1, s2 = torch.randn(6, 4), torch.randn(6, 3), torch.randn(6, 3)
    g1, b1 = module.gamma_beta(s1)
    g2, b2 = module.gamma_beta(s2)
    h1, h2 = module(c, s1), module(c, s2)
    # h2 is h1 mapped by the affine transform that turns (γ1, β1) into (γ2, β2)
    assert torch.allclose((h1 - b1) / g1 * g2 + b2, h2, atol=1e-4)


def test_random_features_are_fixed_by_the_seed_and_untrainable():
    a, b = RandomFeatures(3, seed=5), RandomFeatures(3, seed=5)
    assert list(a.parameters()) == []
    assert torch.equal(a.weight0, b.weight0)
    assert not torch.equal(a.weight0, RandomFeatures(3).weight0)
    x = torch.rand(2, 3, 64, 64)
    assert [f.shape[1:] for f in a(x)] == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]
    assert a.distance(x, x) == 0
    assert a.distance(x, x.flip(-1)) > 0
