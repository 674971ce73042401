"""A tiny Gaussian VAE on an 8×8 factor grid, so training-loop tests run in seconds.

``register()`` adds ``MODELS["tiny"]`` and ``DATASETS["tinygrid"]`` (through ``monkeypatch``
when given, so tests leave the registries as they found them); subprocess tests call it directly.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from untwine.data.base import GridDataset
from untwine.data.factors import FactorSpace
from untwine.data.registry import DATASETS, DatasetEntry
from untwine.errors import UntwineError
from untwine.models.base import MODELS, ExtraOptimiser, Model, ModelEntry


@dataclass
class TinyConfig:
    latents: int = 3
    beta: float = 1.0
    nan_at: int = -1
    """From this 0-based step on the loss is NaN (for the divergence test); -1 never."""
    delay: float = 0.0
    """Seconds to sleep per step, so a subprocess can be signalled mid-run."""
    signal_at: int = -1
    """At this 0-based step the model sends itself SIGTERM (a signal during a step); -1 never."""
    critic: bool = False
    """Add a small critic with its own optimiser (the ExtraOptimiser path)."""
    dataset_size: int | None = None

    def __post_init__(self) -> None:
        if self.beta < 0:
            raise UntwineError(f"tiny: beta must be ≥ 0; got {self.beta}")


class TinyVAE(Model):
    def __init__(self, config: TinyConfig, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.config, self.image_shape = config, image_shape
        pixels = int(np.prod(image_shape))
        self.enc = nn.Linear(pixels, 2 * config.latents)
        self.dec = nn.Linear(config.latents, pixels)
        self.critic = nn.Linear(config.latents, 1) if config.critic else None

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.enc(x.flatten(1)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec(z).view(-1, *self.image_shape)

    def loss(self, batch: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        if self.config.delay:
            time.sleep(self.config.delay)
        if step == self.config.signal_at:
            os.kill(os.getpid(), signal.SIGTERM)
        mu, logvar = self.encode(batch)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        recon = nn.functional.binary_cross_entropy_with_logits(
            self.decode(z), batch, reduction="sum"
        ) / len(batch)
        kl = (0.5 * (mu**2 + logvar.exp() - logvar - 1)).sum(1).mean()
        loss = recon + self.config.beta * kl
        if 0 <= self.config.nan_at <= step:
            loss = loss * float("nan")
        out = {"loss": loss, "recon": recon.detach(), "kl": kl.detach()}
        if self.critic is not None:
            out["loss"] = loss + 0.1 * self.critic(z).mean()
            out["critic"] = (self.critic(z.detach()) ** 2).mean()
        return out

    def extra_optimisers(self) -> list[ExtraOptimiser]:
        if self.critic is None:
            return []
        return [ExtraOptimiser("critic", list(self.critic.parameters()), _sgd)]

    @torch.no_grad()
    def represent(self, x: torch.Tensor, mode: str = "mean") -> torch.Tensor:
        mu, logvar = self.encode(x)
        return mu if mode == "mean" else mu + torch.randn_like(mu) * (0.5 * logvar).exp()

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode(self.encode(x)[0]))

    @torch.no_grad()
    def kl_per_latent(self, x: torch.Tensor) -> torch.Tensor:
        mu, logvar = self.encode(x)
        return (0.5 * (mu**2 + logvar.exp() - logvar - 1)).mean(0)


def _sgd(params: list[nn.Parameter]) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=0.05, momentum=0.5)


def tiny_grid() -> GridDataset:
    """32 images (1, 8, 8): a 2×2 or 3×3 square at one of 4×4 positions."""
    space = FactorSpace.from_sizes(("shape", "x", "y"), (2, 4, 4))

    def render(factors: np.ndarray) -> np.ndarray:
        out = np.zeros((len(factors), 1, 8, 8), dtype=np.float32)
        for i, (shape, x, y) in enumerate(factors):
            side = 2 + shape
            out[i, 0, y + 1 : y + 1 + side, x + 1 : x + 1 + side] = 1.0
        return out

    return GridDataset("tinygrid", space, (1, 8, 8), render)


def register(monkeypatch=None) -> None:
    """Make ``tiny`` and ``tinygrid`` known to the registries."""
    model = ModelEntry("tiny", TinyConfig, TinyVAE, "tiny test VAE")
    data = DatasetEntry("tinygrid", twin=tiny_grid)
    if monkeypatch is None:
        MODELS["tiny"], DATASETS["tinygrid"] = model, data
    else:
        monkeypatch.setitem(MODELS, "tiny", model)
        monkeypatch.setitem(DATASETS, "tinygrid", data)
