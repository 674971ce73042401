"""Trainable models, found by name in ``MODELS`` (importing this package fills it)."""

from untwine.models import (
    autoencoder,
    csdismo,
    ddpm,
    disdiff,
    dotvae,
    factorvae,
    protovae,
    vae,
)
from untwine.models.base import (
    MODELS,
    ExtraOptimiser,
    Model,
    ModelEntry,
    Stage,
    build_model,
    model_entry,
    register_model,
    representer,
)
from untwine.models.factorvae import FactorVAE, FactorVAEConfig
from untwine.models.vae import (
    VAE,
    AnnealedVAEConfig,
    BetaTCVAEConfig,
    BetaVAEConfig,
    DIPVAE1Config,
    DIPVAE2Config,
    VAEConfig,
)

__all__ = [
    "MODELS",
    "VAE",
    "AnnealedVAEConfig",
    "BetaTCVAEConfig",
    "BetaVAEConfig",
    "DIPVAE1Config",
    "DIPVAE2Config",
    "ExtraOptimiser",
    "FactorVAE",
    "FactorVAEConfig",
    "Model",
    "ModelEntry",
    "Stage",
    "VAEConfig",
    "autoencoder",
    "ddpm",
    "disdiff",
    "csdismo",
    "build_model",
    "dotvae",
    "factorvae",
    "model_entry",
    "protovae",
    "register_model",
    "representer",
    "vae",
]
