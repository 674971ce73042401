"""First stages of a latent diffusion model: images <-> the space the DPM runs in.

:class:`ConvAutoencoder` is a small deterministic conv autoencoder (the CPU-sized stand-in for
latent diffusion's VQ-GAN): (C, S, S) images in [0, 1] -> a (latent_channels, S/2^k, S/2^k) grid,
trained by squared error alone. :class:`PixelSpace` is the identity on the images rescaled to
[-1, 1], for diffusion in pixel space.

Both keep a ``scale`` buffer: latents are ``scale · encoder(x)``, and the diffusion model's
stage sets scale = 1 / std(encoder(x)) over a batch when it starts, so the DPM sees unit-variance
latents as Rombach et al. 2022 (and DisDiff's reference) do. The buffer is saved with the model.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from untwine.errors import UntwineError


class FirstStage(nn.Module):
    """images (n, C, S, S) in [0, 1] <-> latents (n, *latent_shape) of about unit variance."""

    latent_shape: tuple[int, int, int]

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("scale", torch.ones(()))

    def encode_raw(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def to_latent(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode_raw(x) * self.scale

    def to_image(self, z: torch.Tensor) -> torch.Tensor:
        """Images (unclamped; ≈[0, 1]) of latents z."""
        return self.decode_raw(z / self.scale)

    @torch.no_grad()
    def fit_scale(self, x: torch.Tensor) -> float:
        """Set scale = 1 / std of the raw latents of x; returns it."""
        std = self.encode_raw(x).float().std().clamp_min(1e-8)
        self.scale.fill_(1.0 / std.item())
        return float(self.scale)


class PixelSpace(FirstStage):
    """The identity first stage: latents are the images mapped to [-1, 1]."""

    def __init__(self, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.latent_shape = tuple(int(s) for s in image_shape)

    def encode_raw(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * x - 1

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        return (z + 1) / 2

    @torch.no_grad()
    def fit_scale(self, x: torch.Tensor) -> float:
        """Pixel space keeps scale 1 (the images are already in [-1, 1])."""
        return float(self.scale)


class ConvAutoencoder(FirstStage):
    """Deterministic conv AE: ``downsamples`` stride-2 levels, channels width·(1, 2, 2, …).

    Encoder: per level a 4×4 stride-2 conv, followed (from the second level on) by a 3×3 conv,
    SiLU after each, then a 1×1 conv to ``latent_channels``. The decoder mirrors it with 4×4
    stride-2 transposed convs; the last one outputs the C image channels with no non-linearity
    (images are targets in [0, 1] for a squared error).
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        latent_channels: int = 4,
        width: int = 32,
        downsamples: int = 3,
    ) -> None:
        super().__init__()
        channels, height, side = (int(s) for s in image_shape)
        if height != side or side % 2**downsamples or downsamples < 1:
            raise UntwineError(
                f"the conv autoencoder needs square images with sides divisible by "
                f"2^{downsamples}; got {tuple(image_shape)}"
            )
        widths = [width] + [2 * width] * (downsamples - 1)  # channels after each level
        enc: list[nn.Module] = []
        c_in = channels
        for level, c_out in enumerate(widths):
            enc += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.SiLU()]
            if level:  # refine at S/4 and below only: full-resolution convs dominate the cost
                enc += [nn.Conv2d(c_out, c_out, 3, padding=1), nn.SiLU()]
            c_in = c_out
        enc.append(nn.Conv2d(c_in, latent_channels, 1))
        dec: list[nn.Module] = [nn.Conv2d(latent_channels, c_in, 3, padding=1), nn.SiLU()]
        for level in reversed(range(downsamples)):
            c_out = widths[level - 1] if level else channels
            if level:
                dec += [nn.Conv2d(c_in, c_in, 3, padding=1), nn.SiLU()]
            dec.append(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1))
            if level:
                dec.append(nn.SiLU())
            c_in = c_out
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)
        grid = side // 2**downsamples
        self.latent_shape = (latent_channels, grid, grid)

    def encode_raw(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the reconstruction, per pixel."""
        return F.mse_loss(self.decode_raw(self.encode_raw(x)), x)
