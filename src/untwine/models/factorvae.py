"""FactorVAE (Kim & Mnih 2018): recon + KL + γ·TC, TC from a discriminator with its own optimiser.

The discriminator tells samples of q(z) (class 0) from samples of the product of its marginals
(class 1, each latent permuted across a batch). ``loss`` returns the VAE objective as ``"loss"``
and the discriminator's cross-entropy as ``"discriminator_loss"``, computed on detached codes,
so the training loop's sequence (zero main grads, backward ``loss``, zero discriminator grads,
backward ``discriminator_loss``, step both) updates each network only from its own loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from untwine.errors import UntwineError
from untwine.models import regularisers as R
from untwine.models.base import ExtraOptimiser, register_model
from untwine.models.vae import VAE, Latents, Terms, VAEConfig, check_choice, check_number
from untwine.nets.mlp import factorvae_discriminator

SHUFFLES = ("second_batch", "same_batch")


@dataclass
class FactorVAEConfig(VAEConfig):
    """FactorVAE. The study sweeps γ ∈ {10, 20, 30, 40, 50, 100}. The discriminator trains with
    Adam(disc_lr, (disc_beta1, disc_beta2)). shuffle: "second_batch" (the paper: permute the
    codes of a second batch, so each step reads 2 × batch_size images) or "same_batch"
    (disentanglement_lib: permute the codes of the batch itself)."""

    model: ClassVar[str] = "factorvae"
    gamma: float = 10.0
    disc_lr: float = 1e-4
    disc_beta1: float = 0.5
    disc_beta2: float = 0.9
    shuffle: str = "second_batch"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number(self.model, "gamma", self.gamma, 0)
        check_number(self.model, "disc_lr", self.disc_lr, 0, strict=True)
        for field in ("disc_beta1", "disc_beta2"):
            value = getattr(self, field)
            check_number(self.model, field, value, 0)
            if value >= 1:
                raise UntwineError(f"{self.model}: {field} must be in [0, 1); got {value!r}")
        check_choice(self.model, "shuffle", self.shuffle, SHUFFLES)


def kl_regulariser(config: FactorVAEConfig, lat: Latents, step: int) -> tuple[torch.Tensor, Terms]:
    """KL only; the γ·TC term needs the discriminator and is added in ``FactorVAE.loss``."""
    return lat.kl.sum(1).mean(), {}


class FactorVAE(VAE):
    """A :class:`VAE` plus ``discriminator`` (6 × (dense 1000, leaky ReLU 0.2) → 2 logits)."""

    def __init__(self, config: FactorVAEConfig, image_shape: tuple[int, int, int]):
        super().__init__(config, image_shape, kl_regulariser)
        self.discriminator = factorvae_discriminator(config.latents)
        self.second_batch = config.shuffle == "second_batch"

    def images_per_step(self, batch_size: int) -> int:
        """Two batches with the paper's shuffle (the second only feeds the discriminator)."""
        return 2 * batch_size if self.second_batch else batch_size

    def loss(self, batch: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """``"loss"`` = recon + KL + γ·TC on the first half of the batch (all of it with
        shuffle="same_batch"); ``"discriminator_loss"`` on detached codes of both halves."""
        if self.second_batch:
            if len(batch) < 2 or len(batch) % 2:
                raise UntwineError(
                    f"factorvae with shuffle='second_batch' needs an even batch of 2 × batch_size "
                    f"images (images_per_step); got {len(batch)}"
                )
            x, x_other = batch.chunk(2)
        else:
            x, x_other = batch, None
        vae_loss, logged, lat = self.vae_terms(x, step)
        tc = R.discriminator_tc(self.discriminator(lat.z))
        if x_other is None:
            other = lat.z.detach()
        else:
            with torch.no_grad():
                other = R.sample_gaussian(*self.encode(x_other))
        z_joint = lat.z.detach()
        logits_joint = self.discriminator(z_joint)
        logits_perm = self.discriminator(R.permute_dims(other))
        disc = R.discriminator_loss(logits_joint, logits_perm)
        accuracy = 0.5 * (
            (logits_joint.argmax(1) == 0).float().mean()
            + (logits_perm.argmax(1) == 1).float().mean()
        )
        return {
            "loss": vae_loss + self.config.gamma * tc,
            **logged,
            "tc": tc.detach(),
            "discriminator_loss": disc,
            "discriminator_accuracy": accuracy.detach(),
        }

    def extra_optimisers(self) -> list[ExtraOptimiser]:
        """The discriminator's Adam, stepped on ``losses["discriminator_loss"]``."""
        cfg = self.config
        return [
            ExtraOptimiser(
                "discriminator_loss",
                list(self.discriminator.parameters()),
                make=lambda params: torch.optim.Adam(
                    params, lr=cfg.disc_lr, betas=(cfg.disc_beta1, cfg.disc_beta2)
                ),
            )
        ]


@register_model(
    "factorvae",
    FactorVAEConfig,
    "FactorVAE: recon + KL + γ·TC, TC by a discriminator (Kim & Mnih 2018)",
)
def build_factorvae(config: FactorVAEConfig, image_shape: tuple[int, int, int]) -> FactorVAE:
    """FactorVAE on (C, 64, 64) images."""
    return FactorVAE(config, image_shape)
