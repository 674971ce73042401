"""DOT-VAE (Patil, Evanusa & JaJa 2022): disentangle one factor at a time into a disentangled space.

Stated by the paper's earlier full text ("Disentangling One Factor at a Time", OAT; section
numbers are its own) and the arXiv DOT-VAE abstract (2210.10920); no code is public:

- the code is split into z (entangled, nuisance; N(0, I) prior) and d = (d_1 … d_K) (the
  disentangled space, one scalar per factor, N(0, 1) each); K is not given but bounded: K_max
  dims are allocated (§3.3). One conv encoder with two heads, one decoder p(x | d, z) (§3.3);
  the architecture is Kim & Mnih's / Locatello et al.'s (§4.1);
- pre-training: a plain VAE on z alone, every d switched off (§3.4.1, eq. 4);
- step 1 (wake, real data): recon + β·KL(q(z|x)) + Σ_i γ_i·KL(q(d_i|x)), γ_i ∈ {0, 1} the mask
  of switched-on dims; γ_1 = 1 first, more are switched on "as training proceeds"; β rises
  linearly so information moves from z into d (§3.4.2, eq. 5);
- step 2 (sleep, generated data): encode x → (d, z); pick k uniformly among the switched-on
  dims; resample d_k ~ N(0, 1); decode x̂; re-encode; train encoder and decoder to recover the
  whole intervened code (d and z) from x̂ (eq. 6); plus a GAN term with a discriminator on x̂
  keeping generated images on the data manifold (§3.4.2; the arXiv abstract does not mention
  the GAN);
- steps 1 and 2 alternate; the number of factors is found by the method (§1.3).

Our reconstruction (every choice is a :class:`DOTVAEConfig` field):

- the heads share every layer but the last linear one; sizes ``entangled`` (z) and ``latents``
  (K_max); d dims switched off are zeroed at the decoder input. Eq. 5 gives them no KL term
  (γ_i = 0), which leaves their encoder outputs free: nothing trains them, and their KL grows
  with the shared layers (dSprites twin, 600 steps: a never-switched-on dim at 0.7 nats), so a
  dim switched on late starts with KL it did not earn and was kept after two windows while its
  KL fell (0.5 → 0.2 nats). We hold switched-off dims at the prior instead: their KL enters the
  loss with weight ``off_kl_weight`` (default 1; 0 is eq. 5 as written). Their codes reach
  nothing else, so at the optimum they sit at the prior and contribute 0, as eq. 5's absent
  dims do, and a dim starts empty when it is switched on;
- each training step does one wake and one sleep term on the same batch and sums them (the
  same number of each as strict alternation, one optimiser step);
- β rises linearly from ``beta_start`` to ``beta_end`` over ``beta_ramp_steps`` after
  pre-training (``pretrain_steps``), and stays at ``beta_start`` during pre-training;
- sleep targets are the encoder means (detached); recovery is squared error on the re-encoded
  means of z and the switched-on d (``consistency="mse"``) or their Gaussian NLL (``"nll"``),
  weighted by ``consistency_weight``; the GAN term is the non-saturating generator loss,
  weighted by ``adv_weight`` (0 drops the discriminator), with the discriminator a conv net
  trained by its own Adam(``disc_lr``, (0.5, 0.9)) on real x against x̂;
- the schedule (:class:`~untwine.models.one_at_a_time.OneAtATime`): after pre-training d_1 is
  switched on; every ``window`` steps the newest dim's KL (a moving average, a buffer) is
  compared with its value one window earlier; once it changed by at most ``plateau_tol`` of
  itself (or ``active_kl``), or after ``max_windows`` windows, the dim is judged: with KL ≥
  ``active_kl`` nats it is kept and the next dim is switched on; below, it carries nothing z
  could not, so it is switched off again and no more dims are tried. ``discovered_factors`` =
  switched-on dims with KL ≥ active_kl; the step each dim was switched on is in
  ``extra_metrics()["switch_steps"]``. A dim is only dropped once β has finished rising (before
  that z has not been pushed to give information up, so an empty new dim waits), and, with
  ``drop_needs_active_code`` (default), only while the rest of the code carries information:
  every kept d dim at ≥ ``active_kl`` nats (before any is kept: z's total KL, a moving average
  like d's), and, unless ``drop_while_rising``, only once its KL has stopped rising (it rose by
  at most ``plateau_tol`` of max(KL, ``active_kl``) over the last window: it "stays" empty;
  ``max_windows`` then only forces a keep). Without these guards the dSprites twin's runs
  stopped at 1–2 dims: as β rose the whole code collapsed (600 steps, seed 0: at step 300,
  when drops became allowed, z held 0.15 nats and the two kept d dims 0.06 and 0.05), the dim
  on trial was dropped for being as empty as everything else, and from step
  ~380 the kept dims grew to 2.5 and 2.0 nats and z back to 5 nats at β = 8, information no
  new dim was offered; with the first guard alone (and off dims held at the prior, above), d_2
  was dropped at step 395 at 0.095 nats as the model left the collapse, and was at 0.19 five
  steps later. With them (dSprites twin, ``schedule_budget`` = steps): no seed's schedule
  finished in 600 steps (7, 6, 3 dims on); at 2,000 steps every dim was kept, all 10 (z still
  held ~5.5 nats at β = 8, and each new dim took 0.3–0.6 of it; README). The defaults are
  paper-scale, ``schedule_budget`` sizes the schedule to a short run
  (:func:`~untwine.models.one_at_a_time.budget_schedule`);
- ``represent`` gives the means of d, switched-off dims zeroed (``codes="disentangled"``), or
  [d, z] (``codes="all"``); ``decode_images`` of a d code decodes it with z = 0 (the prior mean).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
import torch

from untwine.errors import UntwineError
from untwine.models import interventions as I
from untwine.models import regularisers as R
from untwine.models.base import ExtraOptimiser, Model, register_model
from untwine.models.one_at_a_time import BUDGET_FIELDS, OneAtATime, budget_schedule
from untwine.models.vae import VAEConfig, check_choice, check_number
from untwine.nets.conv import ConvEmbedder, Decoder, Encoder, check_image_shape

CODES = ("disentangled", "all")


@dataclass
class DOTVAEConfig(VAEConfig):
    """DOT-VAE. ``latents`` is K_max, the size of the disentangled space d (what metrics see).

    Reconstructed fields (see the module docstring): entangled (size of z), pretrain_steps,
    beta_start, beta_end, beta_ramp_steps, window, plateau_tol, max_windows, active_kl,
    kl_decay, drop_needs_active_code, drop_while_rising, off_kl_weight, consistency (mse | nll),
    consistency_weight, adv_weight, disc_lr, codes ("disentangled" | "all"), count_images. The
    paper states no schedule and no stopping rule at all; ``drop_needs_active_code`` = False
    restores our rule without the collapse guard (an empty new dim is dropped whatever the rest
    of the code holds), ``drop_while_rising`` = True lets a dim be dropped on a KL still rising,
    ``off_kl_weight`` = 0 is eq. 5's literal masking (switched-off dims carry no KL term).

    The schedule defaults are paper-scale (300k-step runs). ``schedule_budget`` = N > 0 sizes
    the schedule to an N-step run instead (:func:`one_at_a_time.budget_schedule`: pre-training
    N/10, β rising until N/2, two windows per dim at most: every dim judged by 0.82·N unless
    one waits for β): it sets pretrain_steps, beta_ramp_steps, window, max_windows and
    kl_decay, which must then be left at their defaults (or already equal the derived values,
    as in a saved config.json).
    """

    model: ClassVar[str] = "dotvae"

    entangled: int = 10
    pretrain_steps: int = 10_000
    beta_start: float = 1.0
    beta_end: float = 8.0
    beta_ramp_steps: int = 100_000
    window: int = 5_000
    plateau_tol: float = 0.05
    max_windows: int = 4
    active_kl: float = 0.1
    kl_decay: float = 0.01
    drop_needs_active_code: bool = True
    drop_while_rising: bool = False
    off_kl_weight: float = 1.0
    consistency: str = "mse"
    consistency_weight: float = 1.0
    adv_weight: float = 1.0
    disc_lr: float = 1e-4
    codes: str = "disentangled"
    count_images: int = 2000
    schedule_budget: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        m = self.model
        check_number(m, "schedule_budget", self.schedule_budget, 0, integer=True)
        if self.schedule_budget > 0:
            self._apply_budget()
        check_number(m, "entangled", self.entangled, 1, integer=True)
        for field in ("pretrain_steps", "beta_ramp_steps"):
            check_number(m, field, getattr(self, field), 0, integer=True)
        for field in ("window", "max_windows", "count_images"):
            check_number(m, field, getattr(self, field), 1, integer=True)
        for field in (
            "beta_start",
            "beta_end",
            "plateau_tol",
            "active_kl",
            "off_kl_weight",
            "consistency_weight",
            "adv_weight",
        ):
            check_number(m, field, getattr(self, field), 0)
        check_number(m, "disc_lr", self.disc_lr, 0, strict=True)
        check_number(m, "kl_decay", self.kl_decay, 0, strict=True)
        if self.kl_decay > 1:
            raise UntwineError(f"{m}: kl_decay must be in (0, 1]; got {self.kl_decay!r}")
        check_choice(m, "consistency", self.consistency, I.CONSISTENCIES)
        check_choice(m, "codes", self.codes, CODES)

    def _apply_budget(self) -> None:
        derived = budget_schedule(self.schedule_budget, self.latents)
        defaults = {f.name: f.default for f in fields(self)}
        for name in BUDGET_FIELDS:
            value = getattr(self, name)
            if value != defaults[name] and value != derived[name]:
                raise UntwineError(
                    f"dotvae: schedule_budget sets {name} (to {derived[name]}); "
                    f"drop one of schedule_budget and {name}={value}"
                )
            setattr(self, name, derived[name])


class DOTVAE(Model):
    """Encoder to (d, z), decoder of [γ ⊙ d, z], the :class:`OneAtATime` schedule and (with
    ``adv_weight`` > 0) a real/fake ``discriminator``."""

    def __init__(self, config: DOTVAEConfig, image_shape: tuple[int, int, int]):
        super().__init__()
        channels = check_image_shape(image_shape)
        self.config = config
        self.image_shape = (channels, 64, 64)
        k, e = config.latents, config.entangled
        self.encoder = Encoder(channels, k + e, config.architecture)
        self.decoder = Decoder(channels, k + e, config.architecture)
        self.schedule = OneAtATime(
            k,
            config.pretrain_steps,
            config.window,
            config.plateau_tol,
            config.max_windows,
            config.active_kl,
            config.kl_decay,
            drop_from=config.pretrain_steps + config.beta_ramp_steps,
            drop_needs_active_code=config.drop_needs_active_code,
            drop_while_rising=config.drop_while_rising,
        )
        self.discriminator = (
            ConvEmbedder(channels, 1, config.architecture) if config.adv_weight > 0 else None
        )

    # -- codes ---------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(d, z | x), each (n, K + E): the K d dims first."""
        return self.encoder(x)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Decoder logits of [d, z] codes (n, K + E), switched-off d dims zeroed."""
        gate = torch.cat([self.schedule.mask, self.schedule.mask.new_ones(self.config.entangled)])
        return self.decoder(code * gate)

    def beta(self, step: int) -> float:
        """β on KL(q(z | x)): beta_start in pre-training, then rising linearly to beta_end."""
        cfg = self.config
        return I.linear_ramp(
            cfg.beta_start, cfg.beta_end, step, cfg.pretrain_steps, cfg.beta_ramp_steps
        )

    # -- objective -----------------------------------------------------------------------------
    def loss(self, batch: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """Wake (ELBO with the switched-on d, switched-off d held at the prior) + sleep (recover
        an intervened code) + GAN term; then the schedule observes this batch's KL of d and z
        and may switch a dim on or off."""
        cfg, k = self.config, self.config.latents
        mask = self.schedule.mask.clone()
        # -- wake: real data, KL of z weighted by β(step), KL of d by the mask γ
        mu, logvar = self.encode(batch)
        kl = R.gaussian_kl(mu, logvar)
        logits = self.decode(R.sample_gaussian(mu, logvar))
        recon = R.reconstruction_loss(batch, logits, cfg.reconstruction)
        kl_z = kl[:, k:].sum(1).mean()
        kl_d = I.masked_kl(kl[:, :k], mask)
        kl_off = I.masked_kl(kl[:, :k], 1.0 - mask)  # switched-off d dims, held at the prior
        beta = self.beta(step)
        wake = recon + beta * kl_z + kl_d + cfg.off_kl_weight * kl_off
        # -- sleep: generated data from one resampled switched-on d dim
        consistency, generator, fake = self.sleep_terms(mu.detach(), mask)
        objective = wake + cfg.consistency_weight * consistency + cfg.adv_weight * generator
        out = {
            "loss": objective,
            "recon": recon.detach(),
            "kl_z": kl_z.detach(),
            "kl_d": kl_d.detach(),
            "kl_off": kl_off.detach(),
            "beta": torch.tensor(beta, device=batch.device),
            "consistency": consistency.detach(),
            "generator": generator.detach(),
            "switched_on": mask.sum(),
        }
        if self.discriminator is not None:
            out["discriminator_loss"] = self.discriminator_loss(batch, fake)
        # -- schedule: observe, then decide for the next step
        self.schedule.observe(kl[:, :k].detach().mean(0), kl_z.detach())
        self.schedule.update(step)
        return out

    def sleep_terms(
        self, mu: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(consistency, generator loss, generated images) of one intervention per sample.

        The target code is the encoder mean with switched-off d zeroed; d_k (k uniform among
        the switched-on dims) is resampled from N(0, 1); the re-encoding must recover z and the
        switched-on d. Zeros and no images before any d dim is on.
        """
        cfg, k = self.config, self.config.latents
        on = mask.nonzero().flatten()
        zero = mu.new_zeros(())
        if len(on) == 0:
            return zero, zero, None
        gate = torch.cat([mask, mask.new_ones(cfg.entangled)])
        target = mu * gate
        dims = on[torch.randint(len(on), (len(mu),), device=mu.device)]
        code = I.intervene(target, dims, torch.randn(len(mu), device=mu.device), "set")
        fake = torch.sigmoid(self.decode(code))
        mu_hat, logvar_hat = self.encode(fake)
        kept = torch.cat([on, torch.arange(k, k + cfg.entangled, device=mu.device)])
        consistency = I.code_consistency(
            code[:, kept], mu_hat[:, kept], logvar_hat[:, kept], cfg.consistency
        )
        generator = (
            zero if self.discriminator is None else I.generator_loss(self.discriminator(fake))
        )
        return consistency, generator, fake

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor | None) -> torch.Tensor:
        """The discriminator's GAN loss on real x vs detached x̂; before any x̂ exists, a zero
        that still reaches its parameters (so its optimiser steps with zero gradients)."""
        if fake is None:
            return sum(p.sum() for p in self.discriminator.parameters()) * 0.0
        return I.gan_discriminator_loss(self.discriminator(real), self.discriminator(fake.detach()))

    def extra_optimisers(self) -> list[ExtraOptimiser]:
        """The discriminator's Adam(disc_lr, (0.5, 0.9)) on ``losses["discriminator_loss"]``."""
        if self.discriminator is None:
            return []
        lr = self.config.disc_lr
        return [
            ExtraOptimiser(
                "discriminator_loss",
                list(self.discriminator.parameters()),
                make=lambda params: torch.optim.Adam(params, lr=lr, betas=(0.5, 0.9)),
            )
        ]

    # -- representation and pictures -------------------------------------------------------------
    @torch.no_grad()
    def represent(self, x: torch.Tensor, mode: str = "mean") -> torch.Tensor:
        """Means (or one sample) of d, switched-off dims zeroed; [d, z] with codes="all"."""
        check_choice("represent", "mode", mode, ("mean", "sampled"))
        mu, logvar = self.encode(x)
        code = mu if mode == "mean" else R.sample_gaussian(mu, logvar)
        code = torch.cat(
            [code[:, : self.config.latents] * self.schedule.mask, code[:, self.config.latents :]], 1
        )
        return code if self.config.codes == "all" else code[:, : self.config.latents]

    def _full(self, codes: torch.Tensor) -> torch.Tensor:
        if codes.shape[1] == self.config.latents:
            return torch.cat([codes, codes.new_zeros(len(codes), self.config.entangled)], 1)
        return codes

    @torch.no_grad()
    def decode_images(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] of represent()-shaped codes (z = 0 when only d is given)."""
        return torch.sigmoid(self.decode(self._full(z)))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] decoded from the full mean code [d, z]."""
        return torch.sigmoid(self.decode(self.encode(x)[0]))

    @torch.no_grad()
    def kl_per_latent(self, x: torch.Tensor) -> torch.Tensor:
        """Mean KL of each represented latent over x (switched-off d dims: 0)."""
        kl = R.gaussian_kl(*self.encode(x)).mean(0)
        kl = torch.cat([kl[: self.config.latents] * self.schedule.mask, kl[self.config.latents :]])
        return kl if self.config.codes == "all" else kl[: self.config.latents]

    def active_latents(self) -> torch.Tensor:
        """d dims switched on and carrying ≥ active_kl nats (z dims count as active)."""
        d = self.schedule.discovered()
        if self.config.codes == "all":
            return torch.cat(
                [d, torch.ones(self.config.entangled, dtype=torch.bool, device=d.device)]
            )
        return d

    @torch.no_grad()
    def finish(self, dataset: Any) -> None:
        """Replace the training average of d's KL by its value on ``count_images`` images."""
        was_training = self.training
        self.eval()
        rng = np.random.RandomState(0)
        n, k = self.config.count_images, self.config.latents
        total = torch.zeros_like(self.schedule.kl)
        for start in range(0, n, 500):
            x = dataset.images(dataset.sample_factors(min(500, n - start), rng))
            x = x.to(self.schedule.kl.device)
            total += R.gaussian_kl(*self.encode(x))[:, :k].sum(0)
        self.schedule.kl.copy_(total / n)
        self.train(was_training)

    def extra_metrics(self, dataset: Any, seed: int) -> dict[str, Any]:
        """``discovered_factors``, the step each d dim was switched on (−1 never), whether the
        schedule stopped, the KL of each d dim and z's total KL (the training average)."""
        s = self.schedule
        return {
            "discovered_factors": int(s.discovered().sum()),
            "switch_steps": [int(v) for v in s.switch_step],
            "stopped": bool(s.done),
            "d_kl": [round(float(v), 4) for v in s.kl],
            "z_kl": round(float(s.kl_z), 4),
            "active_kl": self.config.active_kl,
        }


@register_model(
    "dotvae",
    DOTVAEConfig,
    "DOT-VAE: entangled z + disentangled d switched on one dim at a time, wake-sleep with "
    "interventions (Patil et al. 2022)",
)
def build_dotvae(config: DOTVAEConfig, image_shape: tuple[int, int, int]) -> DOTVAE:
    """DOT-VAE on (C, 64, 64) images."""
    return DOTVAE(config, image_shape)
