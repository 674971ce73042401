"""untwine: unsupervised disentanglement — methods, ground-truth datasets and exact metrics."""

from untwine._version import __version__, versions
from untwine.config import RunConfig, make_run_config
from untwine.data import ArrayDataset, FactorDataset, FactorSpace, GridDataset, load_dataset
from untwine.errors import UntwineError
from untwine.metrics import (
    beta_vae_score,
    dci,
    evaluate,
    factor_vae_score,
    irs,
    isometry,
    mcc,
    mig,
    modularity_explicitness,
    sap,
    unsupervised,
)
from untwine.models import MODELS, Model, Stage, register_model, representer
from untwine.models.spectral import SpectralICA
from untwine.pipeline import RunResult, evaluate_model, evaluate_run, load_model, load_run, run
from untwine.train import train

__all__ = [
    "MODELS",
    "ArrayDataset",
    "FactorDataset",
    "FactorSpace",
    "GridDataset",
    "Model",
    "RunConfig",
    "RunResult",
    "SpectralICA",
    "Stage",
    "UntwineError",
    "__version__",
    "beta_vae_score",
    "dci",
    "evaluate",
    "evaluate_model",
    "evaluate_run",
    "factor_vae_score",
    "irs",
    "isometry",
    "load_dataset",
    "load_model",
    "load_run",
    "make_run_config",
    "mcc",
    "mig",
    "modularity_explicitness",
    "register_model",
    "representer",
    "run",
    "sap",
    "train",
    "unsupervised",
    "versions",
]
