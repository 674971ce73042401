"""ProtoVAE (Patil, Evanusa & JaJa 2023): a VAE whose latents a prototypical network tells apart.

Stated by the paper (arXiv 2305.09092 / ICLR 2023 submission 4IaQ99pSbg5; only the abstracts,
the TL;DR and the introduction could be read, no code is public):

- a VAE plus a *prototypical network* (deep metric learning) trained by *self-supervision*;
- the authors *intervene* on the latent space during training so that each latent dimension
  transforms the data *uniquely and consistently*; the network constrains the map from
  representation space to data space accordingly;
- an *isometric* inductive bias (TL;DR: "isometric inductive biases"; the thesis abstract:
  "local isometry ... by self-supervised metric learning");
- no prior knowledge of the data, including the number of factors.

Our reconstruction (every choice below is a :class:`ProtoVAEConfig` field):

- the VAE is the study's (dlib conv net, Bernoulli likelihood) with ``recon + β·KL``;
- intervention: per sample one *active* latent k (see below) is shifted by δ ~ U[δ_min, δ_max]
  (positive, so a latent's displacement has one direction, not two); x̂ = D(z), x̂' = D(z');
- the prototypical network P is a conv net on images; the embedding of an intervention is the
  displacement e = P(x̂') − P(x̂); the batch is one episode (first half support, second half
  query, every active latent in both), prototypes c_k are the support means of each latent's
  displacement directions ê = e/‖e‖ (Snell et al. 2017), and ``L_proto`` is the cross-entropy
  of softmax_k(−α‖ê − c_k‖²) against the intervened latent, α = ``proto_scale``
  (:func:`interventions.prototypical_loss`). Directions, not e itself: a fresh P moves by
  ~1e-4, which left softmax_k(−‖e − c_k‖²) uniform and L_proto stuck at ln K;
- ``L_iso`` = squared coefficient of variation of ‖e‖/δ over the batch: one displacement per
  unit of δ for every latent and sample (:func:`interventions.isometry_loss`);
- both terms reach P, the decoder and (through z) the encoder;
  loss = recon + β·KL + λ_proto·L_proto + λ_iso·L_iso;
- inactive latents: a latent whose KL to the prior (an exponential moving average over training
  batches, a buffer) is below ``active_kl`` nats carries nothing, so intervening on it cannot
  move the image; it is left out of the episode. At the end of training the KL per latent is
  measured on ``count_images`` dataset images; the number of latents above ``active_kl`` is the
  discovered number of factors (``extra_metrics()["discovered_factors"]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from untwine.errors import UntwineError
from untwine.models import interventions as I
from untwine.models import regularisers as R
from untwine.models.base import register_model
from untwine.models.vae import VAE, Latents, Terms, VAEConfig, check_number
from untwine.nets.conv import ConvEmbedder


@dataclass
class ProtoVAEConfig(VAEConfig):
    """ProtoVAE. Every field past the VAE's is our reconstruction (see the module docstring).

    beta: weight of the KL. proto_weight, iso_weight: λ_proto, λ_iso. proto_scale: α in the
    logits −α‖ê − c_k‖² over unit displacement directions ê; squared distances between unit
    vectors lie in [0, 4], so α sets how confident P can become (on the shapes3d twin α = 1
    stalled at L_proto ≈ 0.9–1.2, α = 30 reconstructed ~1 % worse, α = 10 reached ≈ 0.01 by
    step 600). delta_min, delta_max: range of the shift δ. embed_dim: size of P's embedding.
    active_kl: nats of KL below which a latent counts as inactive. kl_decay: weight of each
    batch in the moving average of the KL. count_images: images measured at the end of
    training to count active latents.
    """

    model: ClassVar[str] = "protovae"

    beta: float = 4.0
    proto_weight: float = 10.0
    iso_weight: float = 1.0
    proto_scale: float = 10.0
    delta_min: float = 0.5
    delta_max: float = 2.0
    embed_dim: int = 32
    active_kl: float = 0.1
    kl_decay: float = 0.01
    count_images: int = 2000

    def __post_init__(self) -> None:
        super().__post_init__()
        for field in ("beta", "proto_weight", "iso_weight", "active_kl"):
            check_number(self.model, field, getattr(self, field), 0)
        check_number(self.model, "delta_min", self.delta_min, 0, strict=True)
        check_number(self.model, "proto_scale", self.proto_scale, 0, strict=True)
        if not (isinstance(self.delta_max, int | float) and self.delta_max >= self.delta_min):
            raise UntwineError(
                f"protovae: delta_max must be a number ≥ delta_min ({self.delta_min}); "
                f"got {self.delta_max!r}"
            )
        check_number(self.model, "embed_dim", self.embed_dim, 1, integer=True)
        check_number(self.model, "count_images", self.count_images, 1, integer=True)
        check_number(self.model, "kl_decay", self.kl_decay, 0, strict=True)
        if self.kl_decay > 1:
            raise UntwineError(f"protovae: kl_decay must be in (0, 1]; got {self.kl_decay!r}")


def _no_regulariser(config: ProtoVAEConfig, lat: Latents, step: int) -> tuple[torch.Tensor, Terms]:
    """β·KL; the prototype and isometry terms are added in ``ProtoVAE.loss``."""
    return config.beta * lat.kl.sum(1).mean(), {}


class ProtoVAE(VAE):
    """A :class:`VAE` plus ``prototypes`` (P, a :class:`ConvEmbedder`) and the KL buffer."""

    def __init__(self, config: ProtoVAEConfig, image_shape: tuple[int, int, int]):
        super().__init__(config, image_shape, _no_regulariser)
        self.prototypes = ConvEmbedder(self.image_shape[0], config.embed_dim, config.architecture)
        self.register_buffer("latent_kl", torch.zeros(config.latents))

    def loss(self, batch: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """recon + β·KL + λ_proto·L_proto + λ_iso·L_iso; logs each term, P's accuracy and the
        number of active latents."""
        cfg = self.config
        lat = self.latents(batch)
        logits = self.decode(lat.z)
        recon = R.reconstruction_loss(batch, logits, cfg.reconstruction)
        kl = lat.kl.sum(1).mean()
        with torch.no_grad():
            self.latent_kl.lerp_(lat.kl.mean(0), cfg.kl_decay)
        proto, iso, accuracy = self.intervention_terms(lat.z, logits)
        objective = recon + cfg.beta * kl + cfg.proto_weight * proto + cfg.iso_weight * iso
        return {
            "loss": objective,
            "recon": recon.detach(),
            "kl": kl.detach(),
            "proto": proto.detach(),
            "iso": iso.detach(),
            "proto_accuracy": accuracy,
            "active_latents": self.active_latents().sum().to(recon.dtype),
        }

    def intervention_terms(
        self, z: torch.Tensor, logits: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(L_proto, L_iso, accuracy) of one episode of shifts on the active latents of z.

        L_proto classifies the unit directions of the displacements, L_iso compares their
        lengths. With fewer than two active latents there is nothing to tell apart: all three
        are 0.
        """
        active = self.episode_latents(len(z))
        if len(active) < 2:
            zero = z.new_zeros(())
            return zero, zero, zero
        e, delta, labels, support = self.episode(z, logits, active)
        direction = F.normalize(e, dim=1)
        proto, accuracy = I.prototypical_loss(
            direction[support],
            labels[support],
            direction[~support],
            labels[~support],
            len(active),
            self.config.proto_scale,
        )
        return proto, I.isometry_loss(e, delta), accuracy

    def episode_latents(self, batch_size: int) -> torch.Tensor:
        """The active latents, or a random ⌊batch_size/2⌋ of them so each fits in both halves."""
        active = self.active_latents().nonzero().flatten()
        half = batch_size // 2
        if len(active) > half:
            active = active[torch.randperm(len(active), device=active.device)[:half]]
        return active

    def episode(
        self, z: torch.Tensor, logits: torch.Tensor, latents: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(e, δ, labels, support mask): shift row i of z on ``latents[labels[i]]`` by δ_i.

        e = P(σ(D(z'))) − P(σ(logits)) (n, embed_dim) is the displacement the shift causes in
        P's embedding; labels index ``latents``; support marks the first half of the batch.
        """
        labels, support = I.episode_labels(len(z), len(latents))
        labels, support = labels.to(z.device), support.to(z.device)
        cfg = self.config
        delta = cfg.delta_min + (cfg.delta_max - cfg.delta_min) * torch.rand(
            len(z), device=z.device, dtype=z.dtype
        )
        shifted = I.intervene(z, latents[labels], delta, "shift")
        e = self.prototypes(torch.sigmoid(self.decode(shifted))) - self.prototypes(
            torch.sigmoid(logits)
        )
        return e, delta, labels, support

    def active_latents(self) -> torch.Tensor:
        """Latents whose KL to the prior exceeds ``active_kl`` nats: bool (D,)."""
        return self.latent_kl > self.config.active_kl

    @torch.no_grad()
    def measure_latent_kl(self, dataset: Any, seed: int = 0) -> torch.Tensor:
        """Mean KL per latent over ``count_images`` images drawn with RandomState(seed): (D,)."""
        rng = np.random.RandomState(seed)
        device = self.latent_kl.device
        total = torch.zeros_like(self.latent_kl)
        n = self.config.count_images
        for start in range(0, n, 500):
            x = dataset.images(dataset.sample_factors(min(500, n - start), rng)).to(device)
            total += R.gaussian_kl(*self.encode(x)).sum(0)
        return total / n

    def finish(self, dataset: Any) -> None:
        """Replace the training average of the KL by its value on ``count_images`` images."""
        was_training = self.training
        self.eval()
        self.latent_kl.copy_(self.measure_latent_kl(dataset))
        self.train(was_training)

    def extra_metrics(self, dataset: Any, seed: int) -> dict[str, Any]:
        """``discovered_factors`` (latents with KL > active_kl) and the KL of each latent."""
        return {
            "discovered_factors": int(self.active_latents().sum()),
            "latent_kl": [round(float(v), 4) for v in self.latent_kl],
            "active_kl": self.config.active_kl,
        }


@register_model(
    "protovae",
    ProtoVAEConfig,
    "ProtoVAE: recon + β·KL + prototypical-network loss on latent interventions "
    "(Patil et al. 2023)",
)
def build_protovae(config: ProtoVAEConfig, image_shape: tuple[int, int, int]) -> ProtoVAE:
    """ProtoVAE on (C, 64, 64) images."""
    return ProtoVAE(config, image_shape)
