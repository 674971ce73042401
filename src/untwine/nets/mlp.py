"""Plain MLPs: a generic builder and FactorVAE's discriminator."""

from __future__ import annotations

from itertools import pairwise

from torch import nn


def mlp(
    sizes: list[int], activation: type[nn.Module] | None = None, **activation_kwargs: float
) -> nn.Sequential:
    """Dense layers ``sizes[i] -> sizes[i+1]``, ``activation`` between them (not after the last)."""
    activation = activation or nn.ReLU
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(pairwise(sizes)):
        layers.append(nn.Linear(d_in, d_out))
        if i < len(sizes) - 2:
            layers.append(activation(**activation_kwargs))
    return nn.Sequential(*layers)


def factorvae_discriminator(latents: int, hidden: int = 1000, depth: int = 6) -> nn.Sequential:
    """Kim & Mnih (2018)'s discriminator: ``depth`` × (dense ``hidden``, leaky ReLU 0.2) → 2 logits.

    Logit 0 scores "a sample of q(z)", logit 1 "a sample of the product of its marginals".
    """
    return mlp([latents] + [hidden] * depth + [2], nn.LeakyReLU, negative_slope=0.2)
