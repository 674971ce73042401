"""A tiny Gaussian VAE and a two-stage toy on an 8×8 factor grid, so training-loop tests run
in seconds.

``register()`` adds ``MODELS["tiny"]``, ``MODELS["twostage"]`` and ``DATASETS["tinygrid"]``
(through ``monkeypatch`` when given, so tests leave the registries as they found them);
subprocess tests call it directly.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from untwine.config import RunConfig, make_run_config
from untwine.data.base import GridDataset
from untwine.data.factors import FactorSpace
from untwine.data.registry import DATASETS, DatasetEntry
from untwine.errors import UntwineError
from untwine.models.base import MODELS, ExtraOptimiser, Model, ModelEntry, Stage


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
    """Make ``tiny``, ``twostage`` and ``tinygrid`` known to the registries."""
    models = {
        "tiny": ModelEntry("tiny", TinyConfig, TinyVAE, "tiny test VAE"),
        "twostage": ModelEntry("twostage", TwoStageConfig, TwoStage, "two-stage toy"),
    }
    data = DatasetEntry("tinygrid", twin=tiny_grid)
    if monkeypatch is None:
        MODELS.update(models)
        DATASETS["tinygrid"] = data
    else:
        for name, entry in models.items():
            monkeypatch.setitem(MODELS, name, entry)
        monkeypatch.setitem(DATASETS, "tinygrid", data)


@dataclass
class TwoStageConfig:
    """A two-stage toy: "distil" fits an encoder to a frozen teacher, then "decode" trains a
    decoder with its own optimiser, lr warm-up, indexed batches and a scale fitted at its start."""

    latents: int = 3
    distil_steps: int | None = None
    signal_at: str = ""
    """"STAGE:STEP": at that 0-based step of that stage the model sends itself SIGTERM."""


class TwoStage(Model):
    frozen = ("teacher",)

    def __init__(self, config: TwoStageConfig, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.config, self.image_shape = config, image_shape
        pixels = int(np.prod(image_shape))
        self.teacher = nn.Linear(pixels, config.latents).requires_grad_(False)
        self.enc = nn.Linear(pixels, config.latents)
        self.dec = nn.Linear(config.latents, pixels)
        self.register_buffer("scale", torch.ones(()))
        self.pool = torch.zeros(0)

    def prepare(self, dataset) -> None:
        """Load the "pre-trained" teacher (fixed weights) and the pool of indexed images."""
        weights = torch.randn(self.teacher.weight.shape, generator=torch.Generator().manual_seed(9))
        with torch.no_grad():
            self.teacher.weight.copy_(weights)
            self.teacher.bias.zero_()
        every = np.stack(np.unravel_index(np.arange(len(dataset)), dataset.factor_sizes), 1)
        self.pool = dataset.images(every)

    def stages(self) -> list[Stage]:
        return [
            Stage("distil", self.distil_loss, lambda: list(self.enc.parameters()),
                  steps=self.config.distil_steps),
            Stage("decode", self.decode_loss, lambda: list(self.dec.parameters()),
                  optimiser=lambda params, tc: torch.optim.SGD(params, lr=tc.lr, momentum=0.9),
                  lr_lambda=lambda step: min(1.0, (step + 1) / 5),
                  batches=self.indexed_batches, begin=self.fit_scale),
        ]

    def _maybe_signal(self, stage: str, step: int) -> None:
        if self.config.signal_at == f"{stage}:{step}":
            os.kill(os.getpid(), signal.SIGTERM)

    def distil_loss(self, batch: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        self._maybe_signal("distil", step)
        x = batch.flatten(1) + 0.05 * torch.randn_like(batch.flatten(1))
        mse = ((self.enc(x) - self.teacher(x)) ** 2).mean()
        return {"loss": mse, "distil_mse": mse.detach()}

    def indexed_batches(self, n: int, rng: np.random.RandomState) -> tuple[torch.Tensor, ...]:
        index = rng.randint(len(self.pool), size=n)
        return self.pool[index], torch.from_numpy(index)

    @torch.no_grad()
    def fit_scale(self, dataset) -> None:
        self.scale.fill_(1.0 / self.enc(self.pool.flatten(1)).std())

    def decode_loss(self, batch: tuple, step: int) -> dict[str, torch.Tensor]:
        self._maybe_signal("decode", step)
        images, index = batch
        z = self.enc(images.flatten(1)).detach() * self.scale
        z = z + 0.1 * torch.randn_like(z)
        recon = nn.functional.binary_cross_entropy_with_logits(self.dec(z), images.flatten(1))
        return {"loss": recon, "recon": recon.detach(), "mean_index": index.double().mean()}

    @torch.no_grad()
    def represent(self, x: torch.Tensor, mode: str = "mean") -> torch.Tensor:
        return self.enc(x.flatten(1)) * self.scale

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.dec(z / self.scale)).view(-1, *self.image_shape)


def tiny_config(steps: int = 200, sets=(), **train) -> RunConfig:
    """A run config of ``tiny`` on ``tinygrid``: batch 8, lr 1e-2, a log row every 10 steps,
    a checkpoint every 50 (``train`` overrides any train field), no metrics, CPU."""
    options = {
        "data.name": "tinygrid",
        "train.steps": steps,
        "train.batch_size": 8,
        "train.lr": 1e-2,
        "train.log_every": 10,
        "train.checkpoint_every": 50,
        "train.metrics": "none",
        "train.device": "cpu",
    }
    options.update({f"train.{k}": v for k, v in train.items()})
    return make_run_config("tiny", options, list(sets))


def weights(run_dir) -> dict[str, torch.Tensor]:
    """The final weights of a run folder."""
    from safetensors.torch import load_file

    from untwine import runs

    return load_file(run_dir / runs.WEIGHTS)


def assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """Two state dicts hold the same keys and bit-equal tensors."""
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
