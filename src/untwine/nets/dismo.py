"""C-S DisMo's building blocks: the content/style module and a fixed random perceptual network.

**DisMo** (Ren, Yang, Wang & Zeng 2021, "Rethinking Content and Style: Exploring Bias for
Unsupervised Disentanglement"). Stated: every image's content embedding is drawn from one shared
distribution and its style embedding customises that distribution by an affine transform. Our
reconstruction (the paper's code is not public)::

    ĉ = (c − mean_j c_j) / sqrt(var_j c_j + ε)     per vector, over its Dc dims: the shared
                                                    distribution (zero mean, unit variance)
    (Δγ, β) = MLP(s);  γ = 1 + Δγ                  style -> affine parameters, identity at Δγ = 0
    h = γ ⊙ ĉ + β                                   the generator's input

**Random perceptual features**: no pretrained VGG can be downloaded here, so the perceptual term
compares the activations of a small conv net with fixed random weights (seeded, never trained,
stored as buffers so optimisers never see them). Random conv features still respond to local
structure that a pixel loss averages out (Ulyanov et al. 2018, "Deep Image Prior", and the
random-network texture results of He, Wang & Hopcroft 2016).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from untwine.nets.mlp import mlp


def normalise_content(c: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Each row to zero mean and unit (biased) variance over its dims: ĉ = (c − μ) / √(σ² + ε)."""
    mu = c.mean(dim=1, keepdim=True)
    var = c.var(dim=1, unbiased=False, keepdim=True)
    return (c - mu) / torch.sqrt(var + eps)


class DisMo(nn.Module):
    """h = (1 + Δγ(s)) ⊙ normalise(c) + β(s); ``normalise=False`` skips the normalisation."""

    def __init__(self, content_dim: int, style_dim: int, hidden: int = 256,
                 normalise: bool = True) -> None:
        super().__init__()
        self.content_dim = content_dim
        self.normalise = normalise
        self.affine = mlp([style_dim, hidden, 2 * content_dim])

    def gamma_beta(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The affine parameters (γ, β), each (n, Dc), of style codes s."""
        delta, beta = self.affine(s).chunk(2, dim=1)
        return 1 + delta, beta

    def content(self, c: torch.Tensor) -> torch.Tensor:
        """The content in the shared distribution (ĉ), or c itself without normalisation."""
        return normalise_content(c) if self.normalise else c

    def forward(self, c: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.gamma_beta(s)
        return gamma * self.content(c) + beta


class RandomFeatures(nn.Module):
    """A conv net with fixed random weights whose activations define a perceptual distance.

    Three 4×4 stride-2 convs (16, 32, 64 channels) with ReLU; He-normal weights drawn from
    ``torch.Generator().manual_seed(seed)``, so the network is the same in every run and never
    leaves the buffers (no gradients, not in any optimiser).
    """

    def __init__(self, channels: int, widths: tuple[int, ...] = (16, 32, 64), seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        c_in = channels
        for i, c_out in enumerate(widths):
            fan_in = c_in * 16
            weight = torch.randn(c_out, c_in, 4, 4, generator=gen) * (2.0 / fan_in) ** 0.5
            self.register_buffer(f"weight{i}", weight)
            c_in = c_out
        self.depth = len(widths)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i in range(self.depth):
            x = F.relu(F.conv2d(x, getattr(self, f"weight{i}"), stride=2, padding=1))
            feats.append(x)
        return feats

    def distance(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Σ_layers mean |φ_l(x) − φ_l(y)|, a scalar."""
        return sum(F.l1_loss(a, b) for a, b in zip(self(x), self(y), strict=True))
