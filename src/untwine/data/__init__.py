"""Datasets with exact ground-truth factor grids: procedural twins and official-file loaders."""

from untwine.data import cars3d, dsprites, manifolds, mpi3d, scenes, shapes3d, smallnorb  # noqa: F401
from untwine.data.base import ArrayDataset, FactorDataset, GridDataset
from untwine.data.factors import FactorSpace
from untwine.data.registry import DATASETS, load_dataset

__all__ = [
    "ArrayDataset",
    "DATASETS",
    "FactorDataset",
    "FactorSpace",
    "GridDataset",
    "load_dataset",
]
