"""C-S DisMo: content/style disentanglement by latent optimisation (Ren, Yang, Wang & Zeng 2021).

"Rethinking Content and Style: Exploring Bias for Unsupervised Disentanglement" (ICCVW 2021).

**Stated** by the paper (abstract; see ``shared/methods/seed_methods_fulltext.md`` §3):
content and style are two independent subspaces; content holds the factors that matter most for
reconstruction and every image's content embedding is drawn from one shared distribution; the
style embedding customises that distribution by an affine transform (the C-S Disentanglement
Module); no labels; unseen images can be encoded.

**Our reconstruction** (the paper's code is not public), each choice a config field:

- Stage ``latent`` (as in LORD, Gabbay & Hoshen 2020): a fixed subset of ``train_images`` grid
  images (drawn when the stage begins, from the run seed; its indices are a checkpointed buffer)
  each owns free codes c_i ∈ R^Dc, s_i ∈ R^Ds (embedding tables), optimised with the generator:
  x̂_i = sigmoid(G(DisMo(c_i, s_i))), DisMo(c, s) = (1 + Δγ(s)) ⊙ normalise(c) + β(s)
  (``untwine.nets.dismo``), G the dlib conv decoder. Loss: L1(x̂, x) + ``perceptual_weight`` ×
  the L1 distance of the features of a fixed seeded random conv net (no pretrained VGG can be
  downloaded) + ``code_decay`` × mean squared raw codes. Codes learn ``code_lr_scale`` × faster.
- Stage ``encoders``: conv encoders E_c, E_s (dlib) trained on the same images to regress the
  optimised codes (MSE on normalise(c_i) and s_i, weight ``code_weight``) and to reconstruct x
  through the frozen generator (L1 + perceptual, weight ``recon_weight``).
- The DisMo affine transform acts on the generator's input only (the paper may apply it at
  several layers); normalisation is per code vector (``normalise_content=False`` ablates it).

``represent(x) = [normalise(E_c(x)), E_s(x)]``. ``extra_metrics`` scores swaps against the true
renderings, leakage and the factor mapping (``untwine.metrics.swap``) under the dataset's declared
content/style split (``untwine.data.split``); ``draw`` writes ``swap_grid.png``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from untwine.errors import UntwineError
from untwine.models.base import Model, Stage, register_model
from untwine.models.vae import check_choice, check_number
from untwine.nets.conv import ARCHITECTURES, Decoder, Encoder, check_image_shape
from untwine.nets.dismo import DisMo, RandomFeatures


@dataclass
class CSDisMoConfig:
    """C-S DisMo (module docstring). Dims, subset size, loss weights and stage lengths.

    content_dim / style_dim: code sizes. train_images: size N of the latent-optimisation subset.
    latent_steps / encoder_steps: stage lengths (None = train.steps).
    """

    model: ClassVar[str] = "csdismo"
    content_dim: int = 8
    style_dim: int = 8
    train_images: int = 10_000
    architecture: str = "dlib"
    normalise_content: bool = True
    affine_hidden: int = 256
    perceptual_weight: float = 1.0
    perceptual_seed: int = 0
    code_lr_scale: float = 10.0
    code_decay: float = 0.0
    code_weight: float = 1.0
    recon_weight: float = 1.0
    latent_steps: int | None = None
    encoder_steps: int | None = None

    def __post_init__(self) -> None:
        for name in ("content_dim", "style_dim", "train_images", "affine_hidden"):
            check_number(self.model, name, getattr(self, name), 1, integer=True)
        for name in ("perceptual_weight", "code_decay", "code_weight", "recon_weight"):
            check_number(self.model, name, getattr(self, name), 0)
        check_number(self.model, "code_lr_scale", self.code_lr_scale, 0, strict=True)
        check_number(self.model, "perceptual_seed", self.perceptual_seed, 0, integer=True)
        check_choice(self.model, "architecture", self.architecture, ARCHITECTURES)
        for name in ("latent_steps", "encoder_steps"):
            if getattr(self, name) is not None:
                check_number(self.model, name, getattr(self, name), 1, integer=True)


class CSDisMo(Model):
    """Per-image codes + DisMo generator (stage ``latent``), then encoders (stage ``encoders``)."""

    def __init__(self, config: CSDisMoConfig, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        channels = check_image_shape(image_shape)
        self.config = config
        self.image_shape = (channels, 64, 64)
        dc, ds, n = config.content_dim, config.style_dim, config.train_images
        self.content_table = nn.Embedding(n, dc)
        self.style_table = nn.Embedding(n, ds)
        nn.init.normal_(self.content_table.weight, std=0.1)
        nn.init.normal_(self.style_table.weight, std=0.1)
        self.dismo = DisMo(dc, ds, config.affine_hidden, config.normalise_content)
        self.generator = Decoder(channels, dc, config.architecture)
        self.content_encoder = Encoder(channels, dc, config.architecture)
        self.style_encoder = Encoder(channels, ds, config.architecture)
        self.features = RandomFeatures(channels, seed=config.perceptual_seed)
        self.register_buffer("train_index", torch.full((n,), -1, dtype=torch.int64))
        self._dataset: Any = None

    # -- the training subset ------------------------------------------------------------------

    def prepare(self, dataset: Any) -> None:
        if self.config.train_images > len(dataset):
            raise UntwineError(
                f"csdismo: train_images={self.config.train_images} exceeds the "
                f"{len(dataset)} images of {dataset.name}; lower it with --set train_images=N"
            )
        self._dataset = dataset

    def draw_subset(self, dataset: Any) -> None:
        """Fill ``train_index`` with N distinct grid indices from the (run-seeded) torch RNG."""
        self.train_index.copy_(torch.randperm(len(dataset))[: self.config.train_images])

    def subset_batch(self, n: int, rng: np.random.RandomState) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, subset positions) of n subset images drawn with ``rng``."""
        if self._dataset is None or int(self.train_index[0]) < 0:
            raise UntwineError("csdismo: the training subset is not drawn (prepare/begin first)")
        pos = rng.randint(self.config.train_images, size=n)
        grid = self.train_index.cpu().numpy()[pos]
        return self._dataset.images(self._dataset.index_to_factors(grid)), torch.from_numpy(pos)

    # -- the generator and its losses -------------------------------------------------------------

    def generate(self, c: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] from raw content and style codes: sigmoid(G(DisMo(c, s)))."""
        return torch.sigmoid(self.generator(self.dismo(c, s)))

    def image_loss(self, x_hat: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        l1 = F.l1_loss(x_hat, x)
        perceptual = self.features.distance(x_hat, x)
        return l1 + self.config.perceptual_weight * perceptual, {"l1": l1, "perceptual": perceptual}

    def latent_loss(self, batch: tuple[torch.Tensor, torch.Tensor], step: int) -> dict:
        """Stage 1: reconstruct each subset image from its own codes."""
        x, pos = batch
        c, s = self.content_table(pos), self.style_table(pos)
        loss, terms = self.image_loss(self.generate(c, s), x)
        decay = c.pow(2).mean() + s.pow(2).mean()
        loss = loss + self.config.code_decay * decay
        return {"loss": loss, **{k: v.detach() for k, v in terms.items()},
                "code_sq": decay.detach()}

    def encoder_loss(self, batch: tuple[torch.Tensor, torch.Tensor], step: int) -> dict:
        """Stage 2: encoders regress the stage-1 codes and reconstruct through the frozen G."""
        for p in self.generator_parameters():
            p.requires_grad_(False)
        x, pos = batch
        c_hat, s_hat = self.content_of(x), self.style_encoder(x)[0]
        with torch.no_grad():
            c_target = self.dismo.content(self.content_table(pos))
            s_target = self.style_table(pos)
        codes = F.mse_loss(c_hat, c_target) + F.mse_loss(s_hat, s_target)
        recon, terms = self.image_loss(self.generate(c_hat, s_hat), x)
        loss = self.config.code_weight * codes + self.config.recon_weight * recon
        return {"loss": loss, "code_mse": codes.detach(),
                **{k: v.detach() for k, v in terms.items()}}

    def generator_parameters(self) -> list[nn.Parameter]:
        return [*self.dismo.parameters(), *self.generator.parameters()]

    def encoder_parameters(self) -> list[nn.Parameter]:
        return [*self.content_encoder.parameters(), *self.style_encoder.parameters()]

    def latent_optimiser(self, params: list[nn.Parameter], tc: Any) -> torch.optim.Optimizer:
        """Adam; the code tables at ``code_lr_scale`` × the run's lr (LORD's separate rates)."""
        tables = {id(p) for p in (self.content_table.weight, self.style_table.weight)}
        groups = [
            {"params": [p for p in params if id(p) not in tables], "lr": tc.lr},
            {"params": [p for p in params if id(p) in tables],
             "lr": tc.lr * self.config.code_lr_scale},
        ]
        return torch.optim.Adam(groups, lr=tc.lr, betas=(tc.beta1, tc.beta2), eps=tc.eps)

    def stages(self) -> list[Stage]:
        cfg = self.config
        latent = [self.content_table.weight, self.style_table.weight,
                  *self.generator_parameters()]
        return [
            Stage("latent", self.latent_loss, parameters=lambda: latent,
                  steps=cfg.latent_steps, optimiser=self.latent_optimiser,
                  batches=self.subset_batch, begin=self.draw_subset),
            Stage("encoders", self.encoder_loss, parameters=self.encoder_parameters,
                  steps=cfg.encoder_steps, batches=self.subset_batch),
        ]

    # -- codes for unseen images ------------------------------------------------------------------

    def content_of(self, x: torch.Tensor) -> torch.Tensor:
        """Content code in the shared distribution: normalise(E_c(x))."""
        return self.dismo.content(self.content_encoder(x)[0])

    def _device(self) -> torch.device:
        return self.train_index.device

    @torch.no_grad()
    def content_codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.content_of(x.to(self._device())).cpu()

    @torch.no_grad()
    def style_codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.style_encoder(x.to(self._device()))[0].cpu()

    @torch.no_grad()
    def combine(self, c: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """The image of content c and style s (codes as ``content_codes``/``style_codes``)."""
        return self.generate(c.to(self._device()), s.to(self._device())).cpu()

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(content, style) codes of images x."""
        return self.content_of(x), self.style_encoder(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] from z = [content, style]."""
        dc = self.config.content_dim
        return self.generate(z[:, :dc], z[:, dc:])

    @torch.no_grad()
    def represent(self, x: torch.Tensor, mode: str = "mean") -> torch.Tensor:
        """[content, style], (n, Dc + Ds); the codes are deterministic, so ``mode`` is moot."""
        check_choice("represent", "mode", mode, ("mean", "sampled"))
        return torch.cat(self.encode(x), dim=1)

    # -- scores and pictures ----------------------------------------------------------------------

    def extra_metrics(self, dataset: Any, seed: int) -> dict[str, Any]:
        """Swap error, leakage and the factor mapping (``untwine.metrics.swap``)."""
        from untwine.data.split import content_style_split
        from untwine.metrics.swap import content_style_scores

        return content_style_scores(dataset, self.content_codes, self.style_codes, self.combine,
                                    content_style_split(dataset), seed=seed)

    def draw(self, dataset: Any, run_dir: Path, seed: int) -> list[Path]:
        """swap_grid.png: the model's swaps beside the true renderings (declared split, and the
        mapping its probe finds when that differs)."""
        from untwine.data.split import content_style_split
        from untwine.metrics.swap import encode_all, factor_probe, mapping_from_probe
        from untwine.viz.swap import swap_grid

        names = tuple(dataset.factor_names)
        split = content_style_split(dataset)
        truths = {"declared split": split.indices(names)[0]}
        factors = dataset.sample_factors(1500, np.random.RandomState(seed))
        probe = factor_probe(encode_all(self.content_codes, dataset.images, factors),
                             encode_all(self.style_codes, dataset.images, factors),
                             factors, names, seed=seed)
        mapping = mapping_from_probe(probe)
        found = [k for k, n in enumerate(names) if mapping[n] == "content"]
        if found != truths["declared split"]:
            truths["mapping found"] = found
        path = swap_grid(dataset, self.content_codes, self.style_codes, self.combine,
                         Path(run_dir) / "swap_grid.png", truths, seed=seed,
                         title=f"{dataset.name}: C-S DisMo swaps (content of the row, style of "
                               "the column)")
        return [path]


@register_model("csdismo", CSDisMoConfig,
                "C-S DisMo: per-image content/style codes, DisMo affine generator, then encoders "
                "(Ren et al. 2021)")
def build_csdismo(config: CSDisMoConfig, image_shape: tuple[int, int, int]) -> CSDisMo:
    """C-S DisMo on (C, 64, 64) images."""
    return CSDisMo(config, image_shape)
