"""A latent diffusion model (DDPM, ε-prediction) to be frozen under DisDiff.

Two stages through the one training loop (Rombach et al. 2022's recipe, shrunk):

1. ``autoencoder``: a deterministic conv autoencoder (``nets.first_stage``), squared error;
   skipped with ``first_stage=pixel`` (diffusion on the images scaled to [-1, 1]).
2. ``dpm``: the autoencoder frozen; at the stage's start the latent scale is fitted
   (1 / std of the latents of 1,024 images, a saved buffer); then a UNet learns ε-prediction with
   the L1 loss mean |ε_θ(√ᾱ_t z_0 + √(1 − ᾱ_t) ε, t) − ε|, t ~ U{0..T−1}, as DisDiff's reference.

``size`` picks the CPU-sized nets (4×8×8 latents, a 2-level UNet of width 32) or the paper's
(3×16×16 latents, a 4-level UNet of width 64 with 2 blocks per level; the reference's attention
layers are not reproduced), and the stage lengths (cpu: 1,000 + 3,000 steps; ``--steps N`` sets
both). Any size field set explicitly wins over the size's default.
``draw`` writes samples.png: DDIM (η = 0) samples from noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from untwine.errors import UntwineError
from untwine.models.base import Model, Stage, register_model
from untwine.models.diffusion import NoiseSchedule
from untwine.nets.first_stage import ConvAutoencoder, FirstStage, PixelSpace
from untwine.nets.unet import UNet

SIZES: dict[str, dict[str, Any]] = {
    "cpu": {
        "latent_channels": 4,
        "ae_width": 32,
        "ae_downsamples": 3,
        "unet_width": 32,
        "unet_mults": (1, 2),
        "unet_blocks": 1,
        "ae_steps": 1000,
        "dpm_steps": 3000,
    },
    "paper": {
        "latent_channels": 3,
        "ae_width": 64,
        "ae_downsamples": 2,
        "unet_width": 64,
        "unet_mults": (1, 2, 4, 4),
        "unet_blocks": 2,
        "ae_steps": 50_000,
        "dpm_steps": 100_000,
    },
}
SCALE_IMAGES = 1024


@dataclass
class DDPMConfig:
    """Latent DDPM. size: ``cpu`` or ``paper`` defaults for the fields left at None.

    first_stage: ``ae`` (conv autoencoder) or ``pixel``. latent_channels / ae_width /
    ae_downsamples: the autoencoder (latent side = image side / 2^ae_downsamples).
    unet_width / unet_mults / unet_blocks: the UNet. timesteps, schedule, beta_start, beta_end:
    the noise schedule (the reference's T = 1000, linear in √β from 0.0015 to 0.0155).
    loss: ``l1`` (the reference's) or ``l2`` on ε. ae_lr / dpm_lr: Adam learning rates of the two
    stages. ae_steps / dpm_steps: the stages' lengths (cpu: 1,000 / 3,000, about 5 + 6 min
    here; paper: 50,000 / 100,000, our choice for a GPU: the reference states none);
    ``--steps N`` sets both. sample_steps: DDIM steps for pictures.
    """

    model: ClassVar[str] = "ddpm"
    stage_steps: ClassVar[tuple[str, ...]] = ("ae_steps", "dpm_steps")
    size: Literal["cpu", "paper"] = "cpu"
    first_stage: Literal["ae", "pixel"] = "ae"
    latent_channels: int | None = None
    ae_width: int | None = None
    ae_downsamples: int | None = None
    unet_width: int | None = None
    unet_mults: tuple[int, ...] | None = None
    unet_blocks: int | None = None
    timesteps: int = 1000
    schedule: Literal["linear", "uniform"] = "linear"
    beta_start: float = 0.0015
    beta_end: float = 0.0155
    loss: Literal["l1", "l2"] = "l1"
    ae_lr: float = 1e-3
    dpm_lr: float = 2e-4
    ae_steps: int | None = None
    dpm_steps: int | None = None
    sample_steps: int = 50

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise UntwineError(f"ddpm: size must be cpu or paper; got {self.size!r}")
        for name in ("ae_lr", "dpm_lr"):
            if not getattr(self, name) > 0:
                raise UntwineError(f"ddpm: {name} must be positive; got {getattr(self, name)}")
        if self.sample_steps < 1:
            raise UntwineError(f"ddpm: sample_steps must be ≥ 1; got {self.sample_steps}")
        for name in self.stage_steps:
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise UntwineError(f"ddpm: {name} must be ≥ 1; got {getattr(self, name)}")

    def get(self, name: str) -> Any:
        """A size-dependent field: the value set, else the size's default."""
        value = getattr(self, name)
        return SIZES[self.size][name] if value is None else value


class DDPM(Model):
    """First stage + UNet + noise schedule; ``has_codes`` is False (nothing to score)."""

    has_codes = False

    def __init__(self, config: DDPMConfig, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.config = config
        self.image_shape = tuple(int(s) for s in image_shape)
        self.first_stage: FirstStage
        if config.first_stage == "pixel":
            self.first_stage = PixelSpace(self.image_shape)
        else:
            self.first_stage = ConvAutoencoder(
                self.image_shape,
                config.get("latent_channels"),
                config.get("ae_width"),
                config.get("ae_downsamples"),
            )
        latent = self.first_stage.latent_shape
        mults = tuple(config.get("unet_mults"))
        if latent[1] % 2 ** (len(mults) - 1):
            raise UntwineError(
                f"ddpm: a {len(mults)}-level UNet needs a latent side divisible by "
                f"{2 ** (len(mults) - 1)}; the latent grid is {latent}"
            )
        self.unet = UNet(latent[0], config.get("unet_width"), mults, config.get("unet_blocks"))
        self.schedule = NoiseSchedule(
            config.schedule, config.timesteps, config.beta_start, config.beta_end
        )

    # -- training ------------------------------------------------------------------------------
    def stages(self) -> list[Stage]:
        dpm = Stage(
            "dpm",
            self.dpm_loss,
            parameters=lambda: list(self.unet.parameters()),
            steps=self.config.get("dpm_steps"),
            optimiser=lambda params, tc: torch.optim.Adam(params, lr=self.config.dpm_lr),
            begin=self.fit_latent_scale,
        )
        if self.config.first_stage == "pixel":
            return [dpm]
        ae = Stage(
            "autoencoder",
            self.autoencoder_loss,
            parameters=lambda: list(self.first_stage.parameters()),
            steps=self.config.get("ae_steps"),
            optimiser=lambda params, tc: torch.optim.Adam(params, lr=self.config.ae_lr),
        )
        return [ae, dpm]

    def autoencoder_loss(self, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        loss = self.first_stage.loss(x)
        return {"loss": loss, "reconstruction": loss.detach()}

    def fit_latent_scale(self, dataset: Any) -> None:
        """Scale latents to unit variance over 1,024 images (fixed draw, so resumes agree)."""
        x = dataset.images(dataset.sample_factors(SCALE_IMAGES, np.random.RandomState(0)))
        device = self.first_stage.scale.device
        self.first_stage.fit_scale(x.to(device))

    def dpm_loss(self, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            z0 = self.first_stage.to_latent(x)
        t = torch.randint(0, self.schedule.steps, (len(x),), device=x.device)
        noise = torch.randn_like(z0)
        error = self.unet(self.schedule.add_noise(z0, noise, t), t) - noise
        loss = error.abs().mean() if self.config.loss == "l1" else error.square().mean()
        return {"loss": loss, "dpm": loss.detach()}

    # -- sampling ------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self, n: int, steps: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """n images in [0, 1]: DDIM (η = 0) from N(0, I) latents in ``steps`` steps."""
        device = self.first_stage.scale.device
        z = torch.randn(n, *self.first_stage.latent_shape, generator=generator).to(device)
        return self.first_stage.to_image(self.ddim(z, lambda x, t: self.unet(x, t), steps))

    def ddim(self, z: torch.Tensor, eps: Any, steps: int | None = None) -> torch.Tensor:
        """Run DDIM (η = 0) from x_{T−1} = z to x_0 with the noise predictor ``eps(x, t)``."""
        times = self.schedule.ddim_timesteps(steps or self.config.sample_steps)
        for i, t in enumerate(times):
            after = times[i + 1] if i + 1 < len(times) else -1
            tt = torch.full((len(z),), t, device=z.device, dtype=torch.long)
            z = self.schedule.ddim_step(z, eps(z, tt), tt, torch.full_like(tt, after))
        return z

    def draw(self, dataset: Any, run_dir: Path, seed: int) -> list[Path]:
        from untwine.viz.diffusion import samples_grid

        images = self.sample(32, generator=torch.Generator().manual_seed(seed)).cpu().numpy()
        title = f"{dataset.name}: DDIM samples ({self.config.sample_steps} steps)"
        return [samples_grid(images, Path(run_dir) / "samples.png", title)]

    def represent(self, x: torch.Tensor, mode: str = "mean") -> torch.Tensor:
        raise UntwineError("ddpm has no codes to score; train disdiff on top of it")


@register_model("ddpm", DDPMConfig, "latent DDPM (autoencoder, then ε-prediction UNet)")
def build_ddpm(config: DDPMConfig, image_shape: tuple[int, int, int]) -> nn.Module:
    return DDPM(config, image_shape)
