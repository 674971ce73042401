"""untwine: unsupervised disentanglement — methods, ground-truth datasets and exact metrics."""

from untwine.data import FactorDataset, FactorSpace, load_dataset
from untwine.errors import UntwineError

__version__ = "0.1.0"

__all__ = ["FactorDataset", "FactorSpace", "UntwineError", "load_dataset", "__version__"]
