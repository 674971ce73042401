"""Experiments that reproduce a paper's claim end to end (``untwine experiment ...``)."""

from untwine.experiments.isometry import IsometryExperimentConfig, run_isometry_experiment

__all__ = ["IsometryExperimentConfig", "run_isometry_experiment"]
