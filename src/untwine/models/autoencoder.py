"""Deep baselines of the spectral experiment: conv AE, IRMAE, VAE, and the local-isometry AE.

One small conv autoencoder (``nets.small``) with three options (Horan et al. 2021's baselines):
``linear_layers`` bias-free d×d linear layers after the encoder (IRMAE, Jing et al. 2020),
``variational`` with ``beta`` (VAE), and ``isometry_weight`` (the local-isometry regulariser:
a stochastic penalty on ‖J_Dᵀ J_D − c·I‖²_F of the decoder). FastICA on the codes happens
after training, in the experiment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from untwine.errors import UntwineError
from untwine.models.base import Model, register_model
from untwine.models.regularisers import gaussian_kl, sample_gaussian
from untwine.nets.small import SmallDecoder, SmallEncoder


@dataclass
class AEConfig:
    """Small conv autoencoder with squared-error reconstruction (sum over pixels).

    latents: code size. width: conv channels. linear_layers: IRMAE's bias-free linear layers
    between encoder and decoder. variational/beta: Gaussian encoder and β·KL to N(0, I).
    isometry_weight: weight λ of the local-isometry penalty (0 = off); isometry_points: codes
    per batch it is estimated at (each with ``isometry_projections`` random projection pairs).
    """

    model: ClassVar[str] = "ae"
    latents: int = 2
    width: int = 32
    linear_layers: int = 0
    variational: bool = False
    beta: float = 0.0
    isometry_weight: float = 0.0
    isometry_points: int = 32
    isometry_projections: int = 2

    def __post_init__(self) -> None:
        for field in ("latents", "width", "isometry_points", "isometry_projections"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UntwineError(
                    f"{self.model}: {field} must be a positive integer; got {value!r}"
                )
        if isinstance(self.linear_layers, bool) or not isinstance(self.linear_layers, int):
            raise UntwineError(f"{self.model}: linear_layers must be an integer ≥ 0")
        if self.linear_layers < 0 or self.beta < 0 or self.isometry_weight < 0:
            raise UntwineError(
                f"{self.model}: linear_layers, beta and isometry_weight must be ≥ 0; got "
                f"{self.linear_layers}, {self.beta}, {self.isometry_weight}"
            )


@dataclass
class IRMAEConfig(AEConfig):
    """IRMAE (Jing et al. 2020): l = 8 bias-free linear layers over a 16-D code.

    The linear layers start orthogonal: with PyTorch's default init the 8-layer product shrinks
    the code ~80-fold (0.58 per layer) and training stalls."""

    model: ClassVar[str] = "irmae"
    latents: int = 16
    linear_layers: int = 8


@dataclass
class SmallVAEConfig(AEConfig):
    """VAE with β = 0.1 on the small nets (Horan et al.'s VAE baseline)."""

    model: ClassVar[str] = "smallvae"
    variational: bool = True
    beta: float = 0.1


@dataclass
class IsometricAEConfig(AEConfig):
    """Autoencoder with the local-isometry penalty on its decoder (λ = 10, one projection pair)."""

    model: ClassVar[str] = "isoae"
    isometry_weight: float = 10.0
    isometry_projections: int = 1


def isometry_penalty(
    decode: nn.Module, z: torch.Tensor, projections: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stochastic ‖JᵀJ − c·I‖²_F / c² of ``decode`` at codes z, and the global scale c.

    Hutchinson-style: for independent Gaussian u, v, E[(uᵀAv)²] = ‖A‖²_F, and with A = JᵀJ − c·I,
    uᵀAv = (Ju)·(Jv) − c·u·v; Ju, Jv come from one forward-mode ``torch.func.jvp``. c is the
    batch's mean squared speed Σ‖Ju‖² / Σ‖u‖² (≈ tr(JᵀJ)/d): one scale shared by all points,
    fitted, not learned. Dividing by c² makes the penalty invariant to rescaling the codes.
    """
    points = z.repeat(2 * projections, 1)
    tangents = torch.randn_like(points)
    _, jt = torch.func.jvp(decode, (points,), (tangents,))
    jt = jt.flatten(1)
    half = len(points) // 2
    scale = (jt**2).sum() / (tangents**2).sum()
    cross = (jt[:half] * jt[half:]).sum(1)
    dots = (tangents[:half] * tangents[half:]).sum(1)
    return ((cross - scale * dots) ** 2).mean() / scale.clamp_min(1e-8) ** 2, scale


class SmallAutoencoder(Model):
    """Conv AE / IRMAE / VAE / local-isometry AE on small (C, S, S) images, S divisible by 8."""

    def __init__(self, config: AEConfig, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.config = config
        outputs = 2 * config.latents if config.variational else config.latents
        self.encoder = SmallEncoder(image_shape, outputs, config.width)
        self.linear = nn.Sequential(
            *[
                nn.Linear(config.latents, config.latents, bias=False)
                for _ in range(config.linear_layers)
            ]
        )
        self.decoder = SmallDecoder(image_shape, config.latents, config.width)
        for layer in self.linear:
            nn.init.orthogonal_(layer.weight)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(code mean, log-variance or None) of images x."""
        h = self.encoder(x)
        if self.config.variational:
            mu, logvar = h.chunk(2, dim=1)
            return mu, logvar
        return self.linear(h), None

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images from codes: a linear output (no sigmoid, whose saturation at the blank
        background stalls training on sparse blob images)."""
        return self.decoder(z)

    def represent(self, x: torch.Tensor, mode: str = "mean") -> torch.Tensor:
        if mode not in ("mean", "sampled"):
            raise UntwineError(f"represent mode must be 'mean' or 'sampled'; got {mode!r}")
        mu, logvar = self.encode(x)
        if mode == "sampled" and logvar is not None:
            return sample_gaussian(mu, logvar)
        return mu

    @torch.no_grad()
    def kl_per_latent(self, x: torch.Tensor) -> torch.Tensor:
        """Mean KL per latent for the VAE; the code variance for the deterministic AEs."""
        mu, logvar = self.encode(x)
        return mu.var(0) if logvar is None else gaussian_kl(mu, logvar).mean(0)

    def loss(self, batch: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        cfg = self.config
        mu, logvar = self.encode(batch)
        z = mu if logvar is None else sample_gaussian(mu, logvar)
        recon = ((self.decode(z) - batch) ** 2).flatten(1).sum(1).mean()
        out = {"recon": recon}
        total = recon
        if logvar is not None:
            out["kl"] = gaussian_kl(mu, logvar).sum(1).mean()
            total = total + cfg.beta * out["kl"]
        if cfg.isometry_weight > 0:
            codes = z[: cfg.isometry_points].detach()
            out["isometry"], out["isometry_scale"] = isometry_penalty(
                self.decode, codes, cfg.isometry_projections
            )
            total = total + cfg.isometry_weight * out["isometry"]
        out["loss"] = total
        return out


def _build(config: AEConfig, image_shape: tuple[int, int, int]) -> SmallAutoencoder:
    return SmallAutoencoder(config, image_shape)


register_model("ae", AEConfig, "Conv autoencoder, squared error (small images)")(_build)
register_model("irmae", IRMAEConfig, "IRMAE: AE + 8 bias-free linear layers (Jing et al. 2020)")(
    _build
)
register_model("smallvae", SmallVAEConfig, "VAE with β = 0.1 on the small nets")(_build)
register_model("isoae", IsometricAEConfig, "AE + local-isometry penalty on the decoder Jacobian")(
    _build
)
