"""One Gaussian-encoder VAE with pluggable regularisers: β-VAE, AnnealedVAE, β-TCVAE, DIP-VAE-I/II.

Defaults are the reference study's (Locatello et al. 2019, disentanglement_lib): 10 latents,
the "dlib" architecture, Bernoulli reconstruction on logits. The objective is
``recon + regulariser``; the KL term is analytic against N(0, I).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from untwine.errors import UntwineError
from untwine.models import regularisers as R
from untwine.models.base import Model, register_model
from untwine.nets.conv import ARCHITECTURES, Decoder, Encoder, check_image_shape

Terms = dict[str, torch.Tensor]
Regulariser = Callable[[Any, "Latents", int], tuple[torch.Tensor, Terms]]


def check_choice(model: str, field: str, value: Any, allowed: tuple) -> None:
    """Raise UntwineError unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise UntwineError(
            f"{model}: {field} must be one of {', '.join(map(str, allowed))}; got {value!r}"
        )


def check_number(
    model: str, field: str, value: Any, low: float, *, integer: bool = False, strict: bool = False
) -> None:
    """Raise UntwineError unless ``value`` is a number ≥ ``low`` (> with ``strict``)."""
    kinds = (int,) if integer else (int, float)
    ok = isinstance(value, kinds) and not isinstance(value, bool)
    ok = ok and (value > low if strict else value >= low)
    if not ok:
        kind = "an integer" if integer else "a number"
        bound = f"> {low}" if strict else f"≥ {low}"
        raise UntwineError(f"{model}: {field} must be {kind} {bound}; got {value!r}")


@dataclass
class VAEConfig:
    """Fields every VAE baseline shares.

    latents: code size D. architecture: "dlib" (the study's) or "burgess".
    reconstruction: "bernoulli" (sigmoid cross-entropy on logits) or "gaussian" (squared error).
    """

    model: ClassVar[str] = "vae"
    latents: int = 10
    architecture: str = "dlib"
    reconstruction: str = "bernoulli"

    def __post_init__(self) -> None:
        check_number(self.model, "latents", self.latents, 1, integer=True)
        check_choice(self.model, "architecture", self.architecture, ARCHITECTURES)
        check_choice(self.model, "reconstruction", self.reconstruction, R.RECONSTRUCTIONS)


@dataclass
class BetaVAEConfig(VAEConfig):
    """β-VAE (Higgins et al. 2017): recon + β·KL. The study sweeps β ∈ {1, 2, 4, 6, 8, 16};
    the default β = 4 is the value Higgins et al. used on dSprites."""

    model: ClassVar[str] = "betavae"

    beta: float = 4.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number(self.model, "beta", self.beta, 0)


@dataclass
class AnnealedVAEConfig(VAEConfig):
    """AnnealedVAE (Burgess et al. 2018): recon + γ·|KL − C(t)|, C(t) = min(c_max, c_max·t/T).
    The study fixes γ = 1000, T = 100,000 and sweeps c_max ∈ {5, 10, 25, 50, 75, 100}."""

    model: ClassVar[str] = "annealedvae"

    gamma: float = 1000.0
    c_max: float = 25.0
    iteration_threshold: int = 100_000

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number(self.model, "gamma", self.gamma, 0)
        check_number(self.model, "c_max", self.c_max, 0)
        check_number(self.model, "iteration_threshold", self.iteration_threshold, 1, integer=True)


@dataclass
class BetaTCVAEConfig(VAEConfig):
    """β-TCVAE (Chen et al. 2018): recon + KL + (β − 1)·TC. The study sweeps
    β ∈ {1, 2, 4, 6, 8, 10}. estimator: "mws" (the study's) or "mss". dataset_size: N in the
    estimators' log(N·B); the training loop sets it to len(dataset) when left None."""

    model: ClassVar[str] = "betatcvae"

    beta: float = 6.0
    estimator: str = "mws"
    dataset_size: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number(self.model, "beta", self.beta, 0)
        check_choice(self.model, "estimator", self.estimator, R.TC_ESTIMATORS)
        if self.dataset_size is not None:
            check_number(self.model, "dataset_size", self.dataset_size, 2, integer=True)


@dataclass
class DIPVAEConfig(VAEConfig):
    """DIP-VAE (Kumar et al. 2018): recon + KL + λ_od Σ offdiag(C)² + λ_d Σ (diag(C) − 1)²,
    with λ_d = lambda_d_factor·λ_od. The study sweeps λ_od ∈ {1, 2, 5, 10, 20, 50}."""

    lambda_od: float = 10.0
    lambda_d_factor: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number(self.model, "lambda_od", self.lambda_od, 0)
        check_number(self.model, "lambda_d_factor", self.lambda_d_factor, 0)


@dataclass
class DIPVAE1Config(DIPVAEConfig):
    """DIP-VAE-I: C = Cov[μ(x)], λ_d = 10·λ_od."""

    model: ClassVar[str] = "dipvae1"


@dataclass
class DIPVAE2Config(DIPVAEConfig):
    """DIP-VAE-II: C = Cov[z] = E[diag σ²] + Cov[μ], λ_d = λ_od."""

    model: ClassVar[str] = "dipvae2"

    lambda_d_factor: float = 1.0


@dataclass
class Latents:
    """Encoder outputs and one reparameterised sample for a batch."""

    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    kl: torch.Tensor  # (n, D) analytic KL per sample and latent


class VAE(Model):
    """Gaussian-encoder VAE on (C, 64, 64) images; ``regulariser`` gives the model its name.

    ``decode(z)`` returns logits for every reconstruction kind (the Gaussian loss compares
    ``sigmoid(logits)`` with the image), so ``decode_images`` and ``reconstruct`` are in [0, 1].
    """

    def __init__(
        self, config: VAEConfig, image_shape: tuple[int, int, int], regulariser: Regulariser
    ):
        super().__init__()
        channels = check_image_shape(image_shape)
        self.config = config
        self.image_shape = (channels, 64, 64)
        self.regulariser = regulariser
        self.encoder = Encoder(channels, config.latents, config.architecture)
        self.decoder = Decoder(channels, config.latents, config.architecture)

    def prepare(self, dataset: Any) -> None:
        """Fill a ``dataset_size`` left unset (β-TCVAE's N) from the dataset."""
        if getattr(self.config, "dataset_size", 0) is None:
            self.config = dataclasses.replace(self.config, dataset_size=len(dataset))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z | x), each (n, D)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder logits (n, C, 64, 64); ``sigmoid`` of them is the image."""
        return self.decoder(z)

    def latents(self, x: torch.Tensor) -> Latents:
        """Encode, sample and compute the per-latent KL of a batch."""
        mu, logvar = self.encode(x)
        return Latents(mu, logvar, R.sample_gaussian(mu, logvar), R.gaussian_kl(mu, logvar))

    def vae_terms(self, x: torch.Tensor, step: int) -> tuple[torch.Tensor, Terms, Latents]:
        """The objective recon + regulariser, its logged terms and the batch's latents."""
        lat = self.latents(x)
        recon = R.reconstruction_loss(x, self.decode(lat.z), self.config.reconstruction)
        reg, terms = self.regulariser(self.config, lat, step)
        logged = {"recon": recon, "kl": lat.kl.sum(1).mean(), **terms}
        return recon + reg, {k: v.detach() for k, v in logged.items()}, lat

    def loss(self, batch: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """``{"loss": objective, "recon", "kl", <regulariser terms>}`` (logged terms detached)."""
        objective, logged, _ = self.vae_terms(batch, step)
        return {"loss": objective, **logged}

    @torch.no_grad()
    def represent(self, x: torch.Tensor, mode: str = "mean") -> torch.Tensor:
        """Codes for metrics: the encoder mean ("mean") or one posterior sample ("sampled")."""
        check_choice("represent", "mode", mode, ("mean", "sampled"))
        mu, logvar = self.encode(x)
        return mu if mode == "mean" else R.sample_gaussian(mu, logvar)

    @torch.no_grad()
    def decode_images(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] for codes z (traversals)."""
        return torch.sigmoid(self.decode(z))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] decoded from the encoder mean."""
        return self.decode_images(self.encode(x)[0])

    @torch.no_grad()
    def kl_per_latent(self, x: torch.Tensor) -> torch.Tensor:
        """Mean KL of each latent over the batch, (D,): orders latents by how much they carry."""
        return R.gaussian_kl(*self.encode(x)).mean(0)


def beta_regulariser(config: BetaVAEConfig, lat: Latents, step: int) -> tuple[torch.Tensor, Terms]:
    """β · KL."""
    return config.beta * lat.kl.sum(1).mean(), {}


def annealed_regulariser(
    config: AnnealedVAEConfig, lat: Latents, step: int
) -> tuple[torch.Tensor, Terms]:
    """γ · |KL − C(step)|; logs the capacity C."""
    c = R.annealed_capacity(config.c_max, step, config.iteration_threshold)
    kl = lat.kl.sum(1).mean()
    return config.gamma * (kl - c).abs(), {"capacity": torch.tensor(c, device=kl.device)}


def tc_regulariser(config: BetaTCVAEConfig, lat: Latents, step: int) -> tuple[torch.Tensor, Terms]:
    """KL + (β − 1) · TC; logs TC with its log(N·B) constant."""
    if config.dataset_size is None:
        raise UntwineError(
            "betatcvae needs dataset_size (N in the TC estimator): set it to len(dataset), "
            "e.g. --set dataset_size=737280; VAE.prepare(dataset) fills it in when left unset"
        )
    tc = R.total_correlation(lat.z, lat.mu, lat.logvar, config.dataset_size, config.estimator)
    return lat.kl.sum(1).mean() + (config.beta - 1.0) * tc, {"tc": tc}


def dip_regulariser(kind: str) -> Regulariser:
    """KL + λ_od·offdiag + λ_d·diag penalties on Cov[μ] ("i") or Cov[z] ("ii"); logs both."""

    def regularise(config: DIPVAEConfig, lat: Latents, step: int) -> tuple[torch.Tensor, Terms]:
        od, d = R.dip_penalties(R.dip_covariance(lat.mu, lat.logvar, kind))
        lambda_d = config.lambda_d_factor * config.lambda_od
        reg = lat.kl.sum(1).mean() + config.lambda_od * od + lambda_d * d
        return reg, {"dip_od": od, "dip_d": d}

    return regularise


@register_model("betavae", BetaVAEConfig, "β-VAE: recon + β·KL (Higgins et al. 2017)")
def build_betavae(config: BetaVAEConfig, image_shape: tuple[int, int, int]) -> VAE:
    """β-VAE on (C, 64, 64) images."""
    return VAE(config, image_shape, beta_regulariser)


@register_model(
    "annealedvae",
    AnnealedVAEConfig,
    "AnnealedVAE: recon + γ·|KL − C(t)|, capacity annealed (Burgess et al. 2018)",
)
def build_annealedvae(config: AnnealedVAEConfig, image_shape: tuple[int, int, int]) -> VAE:
    """AnnealedVAE on (C, 64, 64) images."""
    return VAE(config, image_shape, annealed_regulariser)


@register_model(
    "betatcvae",
    BetaTCVAEConfig,
    "β-TCVAE: recon + KL + (β − 1)·TC, minibatch TC estimate (Chen et al. 2018)",
)
def build_betatcvae(config: BetaTCVAEConfig, image_shape: tuple[int, int, int]) -> VAE:
    """β-TCVAE on (C, 64, 64) images."""
    return VAE(config, image_shape, tc_regulariser)


@register_model(
    "dipvae1",
    DIPVAE1Config,
    "DIP-VAE-I: recon + KL + moments of Cov[μ] pushed to I (Kumar et al. 2018)",
)
def build_dipvae1(config: DIPVAE1Config, image_shape: tuple[int, int, int]) -> VAE:
    """DIP-VAE-I on (C, 64, 64) images."""
    return VAE(config, image_shape, dip_regulariser("i"))


@register_model(
    "dipvae2",
    DIPVAE2Config,
    "DIP-VAE-II: recon + KL + moments of Cov[z] pushed to I (Kumar et al. 2018)",
)
def build_dipvae2(config: DIPVAE2Config, image_shape: tuple[int, int, int]) -> VAE:
    """DIP-VAE-II on (C, 64, 64) images."""
    return VAE(config, image_shape, dip_regulariser("ii"))
