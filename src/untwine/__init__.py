"""untwine: unsupervised disentanglement — methods, ground-truth datasets and exact metrics."""

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
from untwine.models import MODELS, Model
from untwine.models.spectral import SpectralICA
from untwine.runs import evaluate_run, load_model
from untwine.train import train

__version__ = "0.1.0"

__all__ = [
    "MODELS",
    "ArrayDataset",
    "FactorDataset",
    "FactorSpace",
    "GridDataset",
    "Model",
    "RunConfig",
    "SpectralICA",
    "UntwineError",
    "__version__",
    "beta_vae_score",
    "dci",
    "evaluate",
    "evaluate_run",
    "factor_vae_score",
    "irs",
    "isometry",
    "load_dataset",
    "load_model",
    "make_run_config",
    "mcc",
    "mig",
    "modularity_explicitness",
    "sap",
    "train",
    "unsupervised",
]
