"""The noise schedule against its closed forms."""

import math

import pytest
import torch

from untwine.errors import UntwineError
from untwine.models.diffusion import NoiseSchedule, make_betas


def test_linear_schedule_is_linear_in_sqrt_beta_with_reference_ends():
    betas = make_betas("linear", 1000, 0.0015, 0.0155)
    assert betas[0].item() == pytest.approx(0.0015, rel=1e-12)
    assert betas[-1].item() == pytest.approx(0.0155, rel=1e-12)
    steps = betas.sqrt().diff()
    assert torch.allclose(steps, steps[0].expand_as(steps), atol=1e-14)


def test_alphas_cumprod_is_the_product_of_one_minus_beta():
    s = NoiseSchedule("uniform", 10, 0.01, 0.1)
    betas = [0.01 + i * 0.01 for i in range(10)]
    for t in range(10):
        assert s.alphas_cumprod[t].item() == pytest.approx(math.prod(1 - b for b in betas[: t + 1]))
    assert s.alphas_cumprod_prev[0].item() == 1.0
    assert s.posterior_variance[0].item() == 0.0
    assert s.shift_coef[0].item() == 0.0


def test_add_noise_matches_the_forward_marginal():
    s = NoiseSchedule(steps=1000)
    x0, eps = torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4)
    t = torch.tensor([0, 500, 999])
    xt = s.add_noise(x0, eps, t)
    for i in range(3):
        bar = s.alphas_cumprod[t[i]]
        assert torch.allclose(xt[i], bar.sqrt() * x0[i] + (1 - bar).sqrt() * eps[i], atol=1e-6)
    assert torch.allclose(s.predict_x0(xt, eps, t), x0, atol=1e-4)
    assert torch.allclose(s.predict_eps(xt, x0, t), eps, atol=1e-4)


def test_posterior_mean_and_variance_by_hand():
    s = NoiseSchedule("uniform", 3, 0.1, 0.3)
    # β = 0.1, 0.2, 0.3; α = 0.9, 0.8, 0.7; ᾱ = 0.9, 0.72, 0.504
    x0, xt = torch.full((1, 1), 2.0), torch.full((1, 1), -1.0)
    mean, var = s.posterior(x0, xt, torch.tensor([2]))
    c0 = 0.3 * math.sqrt(0.72) / (1 - 0.504)
    ct = math.sqrt(0.7) * (1 - 0.72) / (1 - 0.504)
    assert mean.item() == pytest.approx(c0 * 2 - ct, rel=1e-6)
    assert var.item() == pytest.approx(0.3 * (1 - 0.72) / (1 - 0.504), rel=1e-6)
    # PDAE/DisDiff mean-shift coefficient at t = 2
    assert s.shift_coef[2].item() == pytest.approx(
        -math.sqrt(0.7) * (1 - 0.72) / math.sqrt(1 - 0.504), rel=1e-6
    )


def test_posterior_is_gaussian_product_of_forward_and_prior():
    """q(x_{t−1}|x_t,x_0) ∝ q(x_t|x_{t−1}) q(x_{t−1}|x_0): its precision is the sum of the two."""
    s = NoiseSchedule(steps=1000)
    t = 400
    a, bar_prev = s.alphas[t].double(), s.alphas_cumprod_prev[t].double()
    precision = a / (1 - a) + 1 / (1 - bar_prev)
    assert s.posterior_variance[t].item() == pytest.approx(1 / precision.item(), rel=1e-5)


def test_ddim_step_inverts_its_forward_step():
    s = NoiseSchedule(steps=1000)
    x = torch.randn(4, 3, 8, 8)
    eps = torch.randn_like(x)
    t, u = torch.full((4,), 100), torch.full((4,), 300)
    there = s.ddim_step(x, eps, t, u)
    back = s.ddim_step(there, eps, u, t)
    assert torch.allclose(back, x, atol=1e-5)
    # to x_0 (s = −1) gives x̂_0 exactly
    x0 = torch.randn_like(x)
    xt = s.add_noise(x0, eps, u)
    assert torch.allclose(s.ddim_step(xt, eps, u, torch.full((4,), -1)), x0, atol=1e-4)


def test_ddpm_step_at_t0_is_the_x0_prediction():
    s = NoiseSchedule(steps=1000)
    xt, eps = torch.randn(2, 3), torch.randn(2, 3)
    t = torch.zeros(2, dtype=torch.long)
    assert torch.allclose(s.ddpm_step(xt, eps, t), s.predict_x0(xt, eps, t), atol=1e-6)


def test_ddim_timesteps_span_the_schedule_descending():
    s = NoiseSchedule(steps=1000)
    steps = s.ddim_timesteps(5)
    assert steps[0] == 999 and steps[-1] == 0 and steps == sorted(steps, reverse=True)
    assert s.ddim_timesteps(1) == [999]
    with pytest.raises(UntwineError):
        s.ddim_timesteps(0)


def test_bad_schedule_is_a_user_error():
    with pytest.raises(UntwineError, match="schedule"):
        NoiseSchedule("cosine")
