"""DisDiff's loss terms as pure functions of tensors (Yang et al., NeurIPS 2023).

Notation: x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε; ε_θ the frozen model's prediction; g_c the field of
unit c; z (n, N, D) the encoder's codes of the clean image; c (n,) the unit drawn per sample.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def reconstruction_loss(
    eps_frozen: torch.Tensor, field_sum: torch.Tensor, shift: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """L_r = mean |ε_θ + k_t · Σ_c g_c − ε| (L1, as the reference's ``loss_type: l1``).

    ``shift`` is k_t = −√α_t (1 − ᾱ_{t−1}) / √(1 − ᾱ_t) per sample, broadcastable to ε: adding
    k_t·S to ε̂ moves the mean of the reverse step by S (PDAE's mean shift).
    """
    return (eps_frozen + shift * field_sum - noise).abs().mean()


def disentangle_logits(
    z_hat: torch.Tensor, z_hat_c: torch.Tensor, z: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Invariant and variant logits over units, each (n, N).

    a_k = ‖ẑ_k − ẑ^c_k‖ (how far unit k moved when only g_c was applied);
    b_k = ‖ẑ_k − sg(z_k)‖ − ‖ẑ^c_k − sg(z_k)‖ (how much closer unit k got to the image's own
    code). ẑ, ẑ^c are the frozen encoder's codes of x̂_0 and x̂_0^c.
    """
    z = z.detach()
    invariant = (z_hat - z_hat_c).norm(dim=-1)
    variant = (z_hat - z).norm(dim=-1) - (z_hat_c - z).norm(dim=-1)
    return invariant, variant


def dynamic_weight(x0: torch.Tensor, x0_c: torch.Tensor) -> torch.Tensor:
    """w = mean over elements of (x̂_0 − x̂_0^c)², per sample, without gradient: samples whose
    field barely changed the prediction count little (the reference's ``dis_loss_type: Z``
    measures it on latents)."""
    return (x0 - x0_c).detach().square().flatten(1).mean(1)


def disentangle_loss(
    z_hat: torch.Tensor,
    z_hat_c: torch.Tensor,
    z: torch.Tensor,
    c: torch.Tensor,
    weight: torch.Tensor,
    scale: float,
) -> dict[str, torch.Tensor]:
    """L_dis = mean_i λ · w_i · (CE(a_i, c_i) + CE(b_i, c_i)), and its two terms' batch means.

    CE is softmax cross-entropy with the logits of :func:`disentangle_logits`, target c.
    """
    invariant, variant = disentangle_logits(z_hat, z_hat_c, z)
    l_in = F.cross_entropy(invariant, c, reduction="none")
    l_va = F.cross_entropy(variant, c, reduction="none")
    total = (scale * weight * (l_in + l_va)).mean()
    return {"loss": total, "invariant": l_in.mean(), "variant": l_va.mean()}
