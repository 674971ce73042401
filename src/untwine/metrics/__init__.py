"""Disentanglement metrics: NumPy codes (N, D) and factors (N, K) in, a dict of results out."""

from untwine.metrics.beta_vae import beta_vae_score
from untwine.metrics.dci import dci, disentanglement_completeness
from untwine.metrics.evaluate import evaluate, score_arrays
from untwine.metrics.factor_vae import factor_vae_score
from untwine.metrics.irs import irs
from untwine.metrics.isometry import isometry
from untwine.metrics.mcc import mcc
from untwine.metrics.mig import mig
from untwine.metrics.modularity import modularity_explicitness
from untwine.metrics.sampling import CodeCache, generate_batch_factor_code
from untwine.metrics.sap import sap
from untwine.metrics.swap import content_style_scores, leakage, split_codes_by_mi, swap_scores
from untwine.metrics.unsupervised import unsupervised

__all__ = [
    "CodeCache",
    "beta_vae_score",
    "content_style_scores",
    "dci",
    "disentanglement_completeness",
    "evaluate",
    "factor_vae_score",
    "generate_batch_factor_code",
    "irs",
    "isometry",
    "leakage",
    "mcc",
    "mig",
    "modularity_explicitness",
    "sap",
    "score_arrays",
    "split_codes_by_mi",
    "swap_scores",
    "unsupervised",
]
