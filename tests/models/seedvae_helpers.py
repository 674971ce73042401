"""Shared by the ProtoVAE and DOT-VAE tests: tiny runs through untwine.train on the twins."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from untwine import runs
from untwine.config import make_run_config
from untwine.train import train


def tiny_run_config(model: str, steps: int, data: str = "dsprites", sets: tuple = ()):
    options = {
        "data.name": data,
        "train.steps": steps,
        "train.batch_size": 8,
        "train.log_every": 1,
        "train.checkpoint_every": 100,
        "train.metrics": "none",
        "train.device": "cpu",
    }
    return make_run_config(model, options, list(sets))


def assert_resume_is_bit_exact(tmp_path: Path, model: str, sets: tuple, steps: int = 6) -> None:
    """``steps`` straight equals ``steps // 2`` then resumed to ``steps``: every weight, buffer."""
    train(tiny_run_config(model, steps, sets=sets), tmp_path / "straight", quiet=True)
    train(tiny_run_config(model, steps // 2, sets=sets), tmp_path / "split", quiet=True)
    train(tiny_run_config(model, steps, sets=sets), tmp_path / "split", resume=True, quiet=True)
    a = load_file(tmp_path / "straight" / runs.WEIGHTS)
    b = load_file(tmp_path / "split" / runs.WEIGHTS)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
