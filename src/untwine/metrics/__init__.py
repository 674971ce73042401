"""Disentanglement metrics: NumPy codes (N, D) and factors (N, K) in, a dict of results out."""

from untwine.metrics.isometry import isometry
from untwine.metrics.mcc import mcc

__all__ = ["isometry", "mcc"]
