"""The DDPM noise schedule and its update rules, kept apart from the noise-predicting network.

As diffusers splits a scheduler from its UNet: :class:`NoiseSchedule` holds β_t, α_t = 1 − β_t and
ᾱ_t = Π_{s≤t} α_s for t = 0..T−1 and offers the closed forms a diffusion model needs
(Ho et al. 2020, Song et al. 2021):

- forward noising  q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I)
- x̂_0 from a noise prediction  x̂_0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t
- the DDPM posterior  q(x_{t−1} | x_t, x_0) = N(c0_t x_0 + ct_t x_t, β̃_t I), with
  c0_t = β_t √ᾱ_{t−1} / (1 − ᾱ_t), ct_t = √α_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t),
  β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t)
- the deterministic DDIM step (η = 0) from t to an earlier s:
  x_s = √ᾱ_s x̂_0 + √(1 − ᾱ_s) ε̂
- PDAE / DisDiff's mean-shift coefficient k_t = −√α_t (1 − ᾱ_{t−1}) / √(1 − ᾱ_t): adding k_t·g to
  ε̂ shifts the reverse-step mean by the gradient field g (Zhang et al. 2022, Yang et al. 2023).

ᾱ_{−1} = 1 by convention (so β̃_0 = 0 and k_0 = 0). Tables are computed in float64 and stored in
float32; per-sample lookups broadcast over the trailing dimensions of x.
"""

from __future__ import annotations

import torch

from untwine.errors import UntwineError

SCHEDULES = ("linear", "uniform")


def make_betas(
    kind: str = "linear", steps: int = 1000, start: float = 0.0015, end: float = 0.0155
) -> torch.Tensor:
    """β_1..β_T in float64.

    ``linear`` is latent diffusion's (and DisDiff's) schedule: linear in √β,
    β_t = (√start + t/(T−1) (√end − √start))²; ``uniform`` is Ho et al.'s linear-in-β.
    """
    if kind not in SCHEDULES:
        raise UntwineError(f"schedule must be one of {', '.join(SCHEDULES)}; got {kind!r}")
    if steps < 2 or not 0 < start <= end < 1:
        raise UntwineError(
            f"schedule needs steps ≥ 2 and 0 < start ≤ end < 1; got {steps}, {start}, {end}"
        )
    if kind == "linear":
        return torch.linspace(start**0.5, end**0.5, steps, dtype=torch.float64) ** 2
    return torch.linspace(start, end, steps, dtype=torch.float64)


class NoiseSchedule:
    """β_t, ᾱ_t and the update rules of a T-step DDPM (t is 0-based: 0..T−1)."""

    def __init__(
        self,
        kind: str = "linear",
        steps: int = 1000,
        start: float = 0.0015,
        end: float = 0.0155,
    ) -> None:
        betas = make_betas(kind, steps, start, end)
        alphas = 1 - betas
        bar = torch.cumprod(alphas, 0)
        bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), bar[:-1]])
        self.steps = steps
        self.betas = betas.float()
        self.alphas = alphas.float()
        self.alphas_cumprod = bar.float()
        self.alphas_cumprod_prev = bar_prev.float()
        self.sqrt_bar = bar.sqrt().float()
        self.sqrt_one_minus_bar = (1 - bar).sqrt().float()
        self.posterior_variance = (betas * (1 - bar_prev) / (1 - bar)).float()
        self.posterior_coef_x0 = (betas * bar_prev.sqrt() / (1 - bar)).float()
        self.posterior_coef_xt = (alphas.sqrt() * (1 - bar_prev) / (1 - bar)).float()
        self.shift_coef = (-alphas.sqrt() * (1 - bar_prev) / (1 - bar).sqrt()).float()

    @staticmethod
    def at(table: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Per-sample lookup table[t] shaped (n, 1, …, 1) to broadcast against ``like`` (n, …)."""
        values = table.to(like.device)[t.to(like.device).long()]
        return values.view(-1, *([1] * (like.dim() - 1))).to(like.dtype)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """A sample of q(x_t | x_0): √ᾱ_t x_0 + √(1 − ᾱ_t) ε."""
        scale, sigma = self.at(self.sqrt_bar, t, x0), self.at(self.sqrt_one_minus_bar, t, x0)
        return scale * x0 + sigma * noise

    def predict_x0(self, xt: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x̂_0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t."""
        return (xt - self.at(self.sqrt_one_minus_bar, t, xt) * eps) / self.at(
            self.sqrt_bar, t, xt
        )

    def predict_eps(self, xt: torch.Tensor, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """ε̂ = (x_t − √ᾱ_t x̂_0) / √(1 − ᾱ_t), the inverse of :meth:`predict_x0`."""
        return (xt - self.at(self.sqrt_bar, t, xt) * x0) / self.at(self.sqrt_one_minus_bar, t, xt)

    def posterior(
        self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of q(x_{t−1} | x_t, x_0) (the variance broadcast as (n, 1, …))."""
        mean = (
            self.at(self.posterior_coef_x0, t, xt) * x0
            + self.at(self.posterior_coef_xt, t, xt) * xt
        )
        return mean, self.at(self.posterior_variance, t, xt)

    def ddpm_step(
        self,
        xt: torch.Tensor,
        eps: torch.Tensor,
        t: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Ancestral sample of x_{t−1} from the posterior at x̂_0(ε̂) (no noise where t = 0)."""
        mean, var = self.posterior(self.predict_x0(xt, eps, t), xt, t)
        noise = torch.randn(xt.shape, generator=generator, device=xt.device, dtype=xt.dtype)
        return mean + var.sqrt() * noise

    def ddim_step(
        self, xt: torch.Tensor, eps: torch.Tensor, t: torch.Tensor, s: torch.Tensor
    ) -> torch.Tensor:
        """Deterministic DDIM (η = 0) from step t to step s (s = −1 for x_0):
        x_s = √ᾱ_s x̂_0 + √(1 − ᾱ_s) ε̂, with ᾱ_{−1} = 1. With s > t the same rule is DDIM
        inversion, so a step there and back with the same ε̂ returns x_t."""
        x0 = self.predict_x0(xt, eps, t)
        s = s.to(xt.device).long()
        bar = self.alphas_cumprod.to(xt.device)
        bar_s = torch.where(s >= 0, bar[s.clamp_min(0)], torch.ones_like(bar[0]))
        bar_s = bar_s.view(-1, *([1] * (xt.dim() - 1))).to(xt.dtype)
        return bar_s.sqrt() * x0 + (1 - bar_s).sqrt() * eps

    def ddim_timesteps(self, count: int) -> list[int]:
        """``count`` evenly spaced steps from T−1 down to 0 (DDIM's sub-sequence)."""
        if not 1 <= count <= self.steps:
            raise UntwineError(f"DDIM steps must be in 1..{self.steps}; got {count}")
        return [int(v) for v in torch.linspace(self.steps - 1, 0, count).round().tolist()]
