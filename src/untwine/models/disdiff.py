"""DisDiff (Yang et al., NeurIPS 2023): disentangle a frozen diffusion model into per-factor
sub-gradient fields.

A trained ``ddpm`` run (first stage + UNet ε_θ, frozen) is loaded from ``dpm``. DisDiff learns an
encoder E: image -> N units z_1..z_N of D dims, and a field decoder G (a zero-initialised copy of
the UNet's output half fed the frozen UNet's skips; ``nets.disdiff``) giving one field
g_c(x_t, z_c, t) per unit. Per step, with x_t = √ᾱ_t z_0 + √(1 − ᾱ_t) ε:

- L_r = mean |ε_θ + k_t Σ_c g_c − ε|, k_t = −√α_t (1 − ᾱ_{t−1}) / √(1 − ᾱ_t);
- one unit c_i per sample: x̂_0 from ε_θ, x̂_0^c from ε_θ − √(1 − ᾱ_t) g_c; both decoded by the
  frozen first stage and re-encoded by a frozen copy of E (this step's weights, detached);
  invariant and variant cross-entropies with target c_i, weighted per sample by
  w = mean (x̂_0 − x̂_0^c)² (on latents, ``weight_type=Z``, or images, ``IM``);
- L = L_r + λ · mean(w (L_in + L_va)), AdamW with linear warm-up.

Codes for metrics: ``represent`` projects each unit on its first principal direction (fitted on
encoded images in ``finish``, kept in buffers); ``codes`` gives the raw (n, N, D) units.
``draw`` writes swap_grid.png (DDIM inversion of each source with its own codes, then sampling
with one unit taken from a reference image).

A run records the DPM's config in its own config.json (``dpm_model``) and its weights in its
model.safetensors, so a finished run loads and evaluates without the ddpm folder; training
(fresh or resumed) reads the DPM's weights from it, and refuses a folder that changed since.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from untwine.errors import UntwineError
from untwine.models.base import Model, Stage, register_model
from untwine.models.ddpm import DDPM, DDPMConfig
from untwine.models.disdiff_losses import disentangle_loss, dynamic_weight, reconstruction_loss
from untwine.nets.disdiff import FactorEncoder, FieldDecoder

SIZES: dict[str, dict[str, Any]] = {
    "cpu": {
        "units": 6,
        "dims": 16,
        "encoder_width": 64,
        "warmup_steps": 200,
        "disdiff_steps": 1500,
        "batch_size": 32,
    },
    "paper": {
        "units": 6,
        "dims": 32,
        "encoder_width": 128,
        "warmup_steps": 10_000,
        "disdiff_steps": 37_500,
        "batch_size": 128,
    },
}
PCA_IMAGES = 10_000


@dataclass
class DisDiffConfig:
    """DisDiff on a trained ``ddpm`` run.

    dpm: the ddpm run folder (required). size: ``cpu`` or ``paper`` defaults for fields left at
    None (units N, dims D, encoder_width, warmup_steps; paper: 6 × 32, width 128, 10,000 warm-up
    steps as the reference). dis_weight: λ (the reference's 0.05; 0.01 on MPI3D). weight_type:
    the dynamic weight on latents (``Z``, the reference configs') or images (``IM``).
    lr: AdamW's learning rate after warm-up (the reference's 2e-6 × batch 128 = 2.56e-4);
    warmup_start: the warm-up's first multiplier (1e-6); weight_decay: AdamW's (torch default
    0.01). sample_steps: DDIM steps for the swap grid. disdiff_steps: the stage's length
    (cpu: 1,500 at batch 32, about 15 min here; paper: 37,500 at batch 128, i.e. 10 epochs of
    Shapes3D, our choice: the reference states none); ``--steps N`` sets it. The size also sets
    the run's default batch (``train_defaults``; ``--batch-size`` wins).
    dpm_model: the ddpm run's model config, copied from its config.json when the model is
    built, so this run's config.json records it and a finished run (whose model.safetensors
    holds the frozen DPM too) loads without the dpm folder; not meant to be set by hand.
    """

    model: ClassVar[str] = "disdiff"
    stage_steps: ClassVar[tuple[str, ...]] = ("disdiff_steps",)
    dpm: str | None = None
    size: Literal["cpu", "paper"] = "cpu"
    units: int | None = None
    dims: int | None = None
    encoder_width: int | None = None
    dis_weight: float = 0.05
    weight_type: Literal["Z", "IM"] = "Z"
    lr: float = 2.56e-4
    warmup_steps: int | None = None
    warmup_start: float = 1e-6
    weight_decay: float = 0.01
    sample_steps: int = 50
    disdiff_steps: int | None = None
    dpm_model: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise UntwineError(f"disdiff: size must be cpu or paper; got {self.size!r}")
        if self.dpm_model is not None and not isinstance(self.dpm_model, dict):
            raise UntwineError(
                "disdiff: dpm_model is recorded from the dpm run; set dpm=RUN_DIR instead"
            )
        for name in ("units", "dims", "encoder_width", "disdiff_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UntwineError(f"disdiff: {name} must be ≥ 1; got {value}")
        if self.units is not None and self.units < 2:
            raise UntwineError("disdiff: units must be ≥ 2 (the losses pick one unit of N)")
        if self.dis_weight < 0 or not self.lr > 0 or not 0 < self.warmup_start <= 1:
            raise UntwineError(
                "disdiff: dis_weight ≥ 0, lr > 0 and 0 < warmup_start ≤ 1 are required"
            )

    def get(self, name: str) -> Any:
        """A size-dependent field: the value set, else the size's default."""
        value = getattr(self, name)
        return SIZES[self.size][name] if value is None else value

    def train_defaults(self) -> dict[str, Any]:
        """The size's batch (cpu 32, paper the reference's 128), unless --batch-size is given."""
        return {"batch_size": SIZES[self.size]["batch_size"]}

    def dpm_config(self) -> DDPMConfig:
        """The frozen DPM's config: the recorded one, else read from the dpm folder and recorded
        (this config object is the run's, so its config.json then carries it)."""
        from untwine.config import build_dataclass

        if self.dpm_model is None:
            self.dpm_model = dataclasses.asdict(read_dpm_config(self.dpm).model_config)
        return build_dataclass(DDPMConfig, self.dpm_model, "dpm_model")


def read_dpm_config(path: str | None) -> Any:
    """The RunConfig of the ddpm run at ``path``, or a one-line error saying how to make one."""
    from untwine import runs

    if not path:
        raise UntwineError(
            "disdiff needs a trained diffusion model: run `untwine train ddpm --data DATA` "
            "first, then pass its folder with --set dpm=RUN_DIR"
        )
    if not (Path(path) / runs.CONFIG).exists():
        raise UntwineError(
            f"dpm={path} is not a run folder (no {runs.CONFIG}); train one with "
            "`untwine train ddpm --data DATA` and pass its folder"
        )
    config = runs.read_config(path)
    if config.model != "ddpm":
        raise UntwineError(f"dpm={path} is a {config.model} run; disdiff needs a ddpm run")
    return config


class DisDiff(Model):
    """Frozen DDPM (``dpm``) + trainable factor encoder and field decoder."""

    frozen = ("dpm",)

    def __init__(self, config: DisDiffConfig, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.config = config
        self.dpm = DDPM(config.dpm_config(), image_shape)
        self.dpm.requires_grad_(False)
        units, dims = config.get("units"), config.get("dims")
        self.units, self.dims = units, dims
        self.encoder = FactorEncoder(image_shape, units, dims, config.get("encoder_width"))
        self.decoder = FieldDecoder(self.dpm.unet, units, dims)
        self.register_buffer("pca_mean", torch.zeros(units, dims))
        self.register_buffer("pca_axis", torch.zeros(units, dims))

    # -- frozen parts --------------------------------------------------------------------------
    def prepare(self, dataset: Any) -> None:
        """Load the DDPM run's weights into the frozen ``dpm`` (fresh or resumed: checkpoints
        leave it out), after checking the folder still holds the DPM this run was built on."""
        from safetensors.torch import load_file

        from untwine import runs

        folder = read_dpm_config(self.config.dpm)
        if folder.model_config != self.config.dpm_config():
            raise UntwineError(
                f"dpm={self.config.dpm} now holds another DPM than this run was started on "
                "(its config.json changed); point dpm= at the original, or train anew"
            )
        if folder.data.name != dataset.name:
            raise UntwineError(
                f"dpm={self.config.dpm} was trained on {folder.data.name}; this run's data is "
                f"{dataset.name}: train a ddpm on {dataset.name} first"
            )
        weights = Path(self.config.dpm) / runs.WEIGHTS
        if not weights.exists():
            raise UntwineError(
                f"dpm={self.config.dpm} has no {runs.WEIGHTS}: finish training it first"
            )
        device = self.pca_mean.device
        try:
            self.dpm.load_state_dict(load_file(weights, device=str(device)))
        except RuntimeError:
            raise UntwineError(
                f"dpm={self.config.dpm}: its weights do not match its config.json "
                "(was the folder retrained?)"
            ) from None
        self.dpm.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> DisDiff:
        super().train(mode)
        self.dpm.eval()
        return self

    # -- codes ---------------------------------------------------------------------------------
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """The raw units, (n, N, D)."""
        return self.encoder(x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.codes(x)

    def represent(self, x: torch.Tensor, mode: str = "mean") -> torch.Tensor:
        """One number per unit: the projection on the unit's first principal direction, (n, N)."""
        return ((self.codes(x) - self.pca_mean) * self.pca_axis).sum(-1)

    @torch.no_grad()
    def finish(self, dataset: Any) -> None:
        """Fit the per-unit PCA (first component) on the codes of 10,000 random images."""
        rng = np.random.RandomState(0)
        factors = dataset.sample_factors(PCA_IMAGES, rng)
        device = self.pca_mean.device
        codes = torch.cat(
            [
                self.codes(dataset.images(factors[i : i + 500]).to(device))
                for i in range(0, PCA_IMAGES, 500)
            ]
        ).double()
        mean = codes.mean(0)
        for u in range(self.units):
            _, _, vh = torch.linalg.svd(codes[:, u] - mean[u], full_matrices=False)
            axis = vh[0]
            axis = axis * torch.sign(axis[axis.abs().argmax()])
            self.pca_axis[u] = axis.float()
        self.pca_mean.copy_(mean.float())

    @torch.no_grad()
    def decode_images(self, codes: torch.Tensor) -> torch.Tensor:
        """Images for per-unit PCA codes (n, N): units z = mean + code · axis, sampled by DDIM
        from one fixed noise (seed 0) shared by all rows, so traversals vary only the codes."""
        z = self.pca_mean + codes[..., None] * self.pca_axis
        shape = self.dpm.first_stage.latent_shape
        noise = torch.randn(1, *shape, generator=torch.Generator().manual_seed(0))
        return self.generate(noise.expand(len(codes), *shape).to(codes.device), z)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """x regenerated from its own units, starting from its DDIM-inverted noise."""
        z = self.codes(x)
        return self.generate(self.invert(x, z), z)

    @torch.no_grad()
    def kl_per_latent(self, x: torch.Tensor) -> torch.Tensor:
        return self.represent(x).var(0)

    # -- training ------------------------------------------------------------------------------
    def stages(self) -> list[Stage]:
        config = self.config
        warmup = config.get("warmup_steps")

        def lr_lambda(step: int) -> float:
            if step >= warmup:
                return 1.0
            return config.warmup_start + (1 - config.warmup_start) * step / warmup

        return [
            Stage(
                "disdiff",
                self.loss,
                steps=config.get("disdiff_steps"),
                parameters=lambda: [
                    *self.encoder.parameters(),
                    *self.decoder.parameters(),
                ],
                optimiser=lambda params, tc: torch.optim.AdamW(
                    params, lr=config.lr, weight_decay=config.weight_decay
                ),
                lr_lambda=lr_lambda,
            )
        ]

    def frozen_features(
        self, xt: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """(time embedding, bottleneck, skips, ε_θ) of the frozen UNet, without gradient."""
        with torch.no_grad():
            emb, h, skips = self.dpm.unet.features(xt, t)
            eps = self.dpm.unet.output_half(h, skips, emb)
        return emb, h, skips, eps

    def fields(self, xt: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """g_c(x_t, z_c, t) for every unit: (n, N, *x_t.shape[1:])."""
        emb, h, skips, _ = self.frozen_features(xt, t)
        return self.decoder(emb, h, skips, z)

    def predict_eps(self, xt: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """ε̂ = ε_θ − √(1 − ᾱ_t) Σ_c g_c: the noise prediction conditioned on every unit."""
        emb, h, skips, eps = self.frozen_features(xt, t)
        field_sum = self.decoder(emb, h, skips, z).sum(1)
        sigma = self.dpm.schedule.at(self.dpm.schedule.sqrt_one_minus_bar, t, xt)
        return eps - sigma * field_sum

    def frozen_encoder(self, x: torch.Tensor) -> torch.Tensor:
        """E with this step's weights detached: the reference's deep copy made every step."""
        params = {k: v.detach() for k, v in self.encoder.named_parameters()}
        return torch.func.functional_call(self.encoder, params, (x,))

    def loss(self, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        schedule, first = self.dpm.schedule, self.dpm.first_stage
        n = len(x)
        with torch.no_grad():
            z0 = first.to_latent(x)
        t = torch.randint(0, schedule.steps, (n,), device=x.device)
        noise = torch.randn_like(z0)
        xt = schedule.add_noise(z0, noise, t)
        emb, h, skips, eps = self.frozen_features(xt, t)
        z = self.encoder(x)
        fields = self.decoder(emb, h, skips, z)
        # -- reconstruction with the mean-shift coefficient k_t
        shift = schedule.at(schedule.shift_coef, t, z0)
        l_r = reconstruction_loss(eps, fields.sum(1), shift, noise)
        # -- disentangling: only g_c applied, decoded and re-encoded by the frozen encoder
        c = torch.randint(0, self.units, (n,), device=x.device)
        g_c = fields[torch.arange(n, device=x.device), c]
        sigma = schedule.at(schedule.sqrt_one_minus_bar, t, z0)
        with torch.no_grad():
            x0 = schedule.predict_x0(xt, eps, t)
            image0 = first.to_image(x0)
            z_hat = self.frozen_encoder(image0)
        x0_c = schedule.predict_x0(xt, eps - sigma * g_c, t)
        image_c = first.to_image(x0_c)
        z_hat_c = self.frozen_encoder(image_c)
        if self.config.weight_type == "Z":
            weight = dynamic_weight(x0, x0_c)
        else:
            weight = dynamic_weight(image0, image_c)
        dis = disentangle_loss(z_hat, z_hat_c, z, c, weight, self.config.dis_weight)
        return {
            "loss": l_r + dis["loss"],
            "reconstruction": l_r.detach(),
            "disentangle": dis["loss"].detach(),
            "invariant": dis["invariant"].detach(),
            "variant": dis["variant"].detach(),
            "dynamic_weight": weight.mean(),
        }

    # -- editing and pictures ------------------------------------------------------------------
    @torch.no_grad()
    def invert(self, x: torch.Tensor, z: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """DDIM inversion of images x under codes z: the latent at step T−1 that DDIM (η = 0)
        maps back to ≈ x. The clean latent stands in for x at t = 0 (ᾱ_0 = 0.9985), as
        Diff-AE/PDAE do; each step uses ε̂ at the lower step (Song et al. 2021, eq. 13)."""
        schedule = self.dpm.schedule
        times = schedule.ddim_timesteps(steps or self.config.sample_steps)[::-1]
        latent = self.dpm.first_stage.to_latent(x)
        for now, later in zip(times[:-1], times[1:], strict=True):
            tt = torch.full((len(x),), now, device=x.device, dtype=torch.long)
            eps = self.predict_eps(latent, tt, z)
            latent = schedule.ddim_step(latent, eps, tt, torch.full_like(tt, later))
        return latent

    @torch.no_grad()
    def generate(
        self, noise: torch.Tensor, z: torch.Tensor, steps: int | None = None
    ) -> torch.Tensor:
        """Images in [0, 1] sampled by DDIM from latents ``noise`` conditioned on codes z."""
        latent = self.dpm.ddim(noise, lambda xt, t: self.predict_eps(xt, t, z), steps)
        return self.dpm.first_stage.to_image(latent).clamp(0, 1)

    @torch.no_grad()
    def swap(
        self, sources: torch.Tensor, references: torch.Tensor, steps: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(regenerated sources (R, C, H, W), swaps (R, N, C, H, W)): swap unit c of each source
        for its reference's, from the source's own inverted noise."""
        z_src, z_ref = self.codes(sources), self.codes(references)
        noise = self.invert(sources, z_src, steps)
        own = self.generate(noise, z_src, steps)
        swaps = []
        for c in range(self.units):
            z = z_src.clone()
            z[:, c] = z_ref[:, c]
            swaps.append(self.generate(noise, z, steps))
        return own, torch.stack(swaps, 1)

    def draw(self, dataset: Any, run_dir: Path, seed: int) -> list[Path]:
        from untwine.viz.diffusion import swap_grid

        rng = np.random.RandomState(seed)
        device = self.pca_mean.device
        sources = dataset.images(dataset.sample_factors(6, rng)).to(device)
        references = dataset.images(dataset.sample_factors(6, rng)).to(device)
        own, swaps = self.swap(sources, references)
        title = f"{dataset.name}: DisDiff swaps (unit c of the source ← the reference's)"
        out = swap_grid(
            sources.cpu().numpy(),
            references.cpu().numpy(),
            own.cpu().numpy(),
            swaps.cpu().numpy(),
            Path(run_dir) / "swap_grid.png",
            title,
        )
        return [out]


@register_model("disdiff", DisDiffConfig, "DisDiff: factor fields on a frozen ddpm run")
def build_disdiff(config: DisDiffConfig, image_shape: tuple[int, int, int]) -> nn.Module:
    return DisDiff(config, image_shape)
