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

import numpy as np
import torch
from torch import nn

from untwine.errors import UntwineError
from untwine.models.base import Model, Stage, register_model
from untwine.models.regularisers import gaussian_kl, sample_gaussian
from untwine.nets.small import SmallDecoder, SmallEncoder


@dataclass
class AEConfig:
    """Small conv autoencoder with squared-error reconstruction (sum over pixels).

    latents: code size. width: conv channels. linear_layers: IRMAE's bias-free linear layers
    between encoder and decoder. variational/beta: Gaussian encoder and β·KL to N(0, I).
    isometry_weight: weight λ of the local-isometry penalty (0 = off); isometry_points: codes
    per batch it is estimated at; isometry_form: "hutchinson" (decoder JᵀJ from
    ``isometry_projections`` random projection pairs per code), "exact" (the decoder's full d×d
    JᵀJ from d basis directions) or "neighbours" (encoder codes against the data metric on
    pairs of each image and one of its ``isometry_neighbors`` nearest training images);
    isometry_warmup: steps over which λ ramps linearly from 0 (0 = full weight from the start).
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
    isometry_form: str = "hutchinson"
    isometry_neighbors: int = 10
    isometry_warmup: int = 0

    def __post_init__(self) -> None:
        if self.isometry_form not in ISOMETRY_FORMS:
            raise UntwineError(
                f"{self.model}: isometry_form must be one of {ISOMETRY_FORMS}; "
                f"got {self.isometry_form!r}"
            )
        warmup = self.isometry_warmup
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise UntwineError(
                f"{self.model}: isometry_warmup must be an integer ≥ 0; got {warmup!r}"
            )
        for field in ("latents", "width", "isometry_points", "isometry_projections",
                      "isometry_neighbors"):
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


ISOMETRY_FORMS = ("hutchinson", "exact", "neighbours")
MAX_NEIGHBOUR_IMAGES = 20_000
"""The "neighbours" form keeps a k-NN table of every training image: a few thousand is its size."""


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
    """Autoencoder with the local-isometry penalty (λ = 10) on k-NN image pairs ("neighbours").

    Chosen by measurement (blob3d, N = 1500, 288 steps of 64, seeds 0 and 1; MCC after FastICA,
    plain-penalty LI in brackets): the decoder penalty ‖JᵀJ/c − I‖²_F, Hutchinson with one
    pair, λ = 10 from step 0: 0.59 / 0.83 (LI 0.80 / 0.88); exact JᵀJ: 0.79 / 0.83; exact with
    λ ramped over the first half: 0.81 / 0.83; exact, λ = 100, ramped: 0.80 / 0.84 — every
    decoder form drove its penalty to 0.01–0.1 (the decoder *is* nearly isometric at the codes)
    without making the codes isometric to the data (LI ≈ 0.88, as the plain AE): the decoder
    is isometric to its own blurred reconstructions, whose metric is not the images'. The data
    form, code distances of each image and one of its 10 nearest training images against
    their image distances: 0.96 / 0.93 (LI 0.95 / 0.93) at λ = 10, 0.96 / 0.91 at λ = 100.
    """

    model: ClassVar[str] = "isoae"
    isometry_weight: float = 10.0
    isometry_projections: int = 1
    isometry_form: str = "neighbours"


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


def exact_isometry_penalty(decode: nn.Module, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact mean ‖JᵀJ/c − I‖²_F of ``decode`` at codes z (n, d), and the global scale c.

    J's d columns come from forward-mode ``torch.func.jvp``s along the d basis directions: d
    decoder passes per code against 2 per Hutchinson pair, and no estimator variance, so for
    the experiment's d = 2 or 3 it is the better buy. c = mean over points of tr(JᵀJ)/d, one
    scale shared by all points, as above.
    """
    n, d = z.shape
    points = z.repeat(d, 1)
    tangents = torch.eye(d, dtype=z.dtype, device=z.device).repeat_interleave(n, dim=0)
    _, jt = torch.func.jvp(decode, (points,), (tangents,))
    jac = jt.flatten(1).view(d, n, -1).transpose(0, 1)  # (n, d, D): rows are J's columns
    gram = jac @ jac.transpose(1, 2)
    scale = torch.diagonal(gram, dim1=1, dim2=2).sum(1).mean() / d
    eye = torch.eye(d, dtype=z.dtype, device=z.device)
    return ((gram / scale.clamp_min(1e-8) - eye) ** 2).sum((1, 2)).mean(), scale


def neighbour_isometry_penalty(
    z: torch.Tensor, z_pair: torch.Tensor, x: torch.Tensor, x_pair: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (‖z_i − z_j‖ / (s‖x_i − x_j‖) − 1)² over pairs of nearby images, and the scale s.

    The data-side form of local isometry (the quantity ``metrics.isometry`` scores): code
    distances of k-nearest-neighbour image pairs should equal the image distances up to one
    global scale s = Σ dz·dx / Σ dx² (least squares, so the penalty is invariant to rescaling the
    codes). Unlike the decoder forms it uses the *data's* metric, not the reconstructions'.
    """
    dz = (z - z_pair).flatten(1).norm(dim=1)
    dx = (x - x_pair).flatten(1).norm(dim=1).clamp_min(1e-8)
    scale = (dz * dx).sum() / (dx**2).sum()
    return ((dz / (scale.clamp_min(1e-8) * dx) - 1) ** 2).mean(), scale


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
        self._dataset = None
        self._neighbours: np.ndarray | None = None

    def prepare(self, dataset) -> None:
        """For the "neighbours" form: each training image's nearest images (deterministic, so
        a resumed run rebuilds the same table)."""
        cfg = self.config
        if cfg.isometry_weight == 0 or cfg.isometry_form != "neighbours":
            return
        if not cfg.isometry_neighbors < len(dataset) <= MAX_NEIGHBOUR_IMAGES:
            raise UntwineError(
                f"{cfg.model}: isometry_form='neighbours' needs more than isometry_neighbors "
                f"({cfg.isometry_neighbors}) and at most {MAX_NEIGHBOUR_IMAGES} training images; "
                f"{dataset.name} has {len(dataset)}: use isometry_form='exact'"
            )
        from sklearn.neighbors import NearestNeighbors

        flat = dataset.images(dataset.index_to_factors(np.arange(len(dataset)))).flatten(1)
        knn = NearestNeighbors(n_neighbors=cfg.isometry_neighbors + 1).fit(flat.numpy())
        self._neighbours = knn.kneighbors(return_distance=False)[:, : cfg.isometry_neighbors]
        self._dataset = dataset

    def stages(self) -> list[Stage]:
        batches = self._pair_batches if self._neighbours is not None else None
        return [Stage("train", self.loss, batches=batches)]

    def _pair_batches(self, n: int, rng: np.random.RandomState) -> tuple[torch.Tensor, ...]:
        """n training images drawn with replacement, and for each one of its nearest images."""
        ds, table = self._dataset, self._neighbours
        index = rng.randint(len(table), size=n)
        pair = table[index, rng.randint(table.shape[1], size=n)]
        return tuple(ds.images(ds.index_to_factors(i)) for i in (index, pair))

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

    def loss(self, batch: torch.Tensor | tuple, step: int) -> dict[str, torch.Tensor]:
        """Reconstruction (+ β·KL) (+ the ramped isometry penalty); ``batch`` is images, or
        (images, a near neighbour of each) for the "neighbours" form."""
        cfg = self.config
        batch, pair = batch if isinstance(batch, (tuple, list)) else (batch, None)
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
            if pair is not None:
                penalty = neighbour_isometry_penalty(mu, self.encode(pair)[0], batch, pair)
            elif cfg.isometry_form == "exact":
                penalty = exact_isometry_penalty(self.decode, codes)
            else:
                penalty = isometry_penalty(self.decode, codes, cfg.isometry_projections)
            out["isometry"], out["isometry_scale"] = penalty
            ramp = min(1.0, (step + 1) / cfg.isometry_warmup) if cfg.isometry_warmup else 1.0
            total = total + ramp * cfg.isometry_weight * out["isometry"]
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
