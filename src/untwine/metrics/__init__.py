"""Disentanglement metrics: NumPy codes (N, D) and factors (N, K) in, a dict of results out."""

from untwine.metrics.irs import irs
from untwine.metrics.isometry import isometry
from untwine.metrics.mcc import mcc
from untwine.metrics.mig import mig
from untwine.metrics.modularity import modularity_explicitness
from untwine.metrics.sap import sap
from untwine.metrics.unsupervised import unsupervised

__all__ = [
    "irs",
    "isometry",
    "mcc",
    "mig",
    "modularity_explicitness",
    "sap",
    "unsupervised",
]
