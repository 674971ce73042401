"""Hand-written run folders (config.json, metrics.json, log.csv, two PNGs) for report tests:
a two-model study whose every number is known, written in milliseconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from untwine.config import make_run_config


def fake_scores(model: str, beta: float, seed: int) -> dict[str, float]:
    """Distinct, known scores per run (so means and ranks are checkable)."""
    base = {"betavae": 0.1, "betatcvae": 0.3}[model] + 0.01 * beta
    return {
        "mig": base + 0.002 * seed,
        "dci": 2 * base - 0.003 * seed,
        "beta_vae": 0.5 + base + 0.001 * seed * seed,
    }


def write_run(root: Path, model: str, beta: float, seed: int, pictures: bool = True) -> Path:
    """One finished run folder named like a sweep trial."""
    run = root / f"{model}-dsprites-beta{beta:g}-s{seed}"
    run.mkdir(parents=True)
    config = make_run_config(model, {"train.steps": 40, "train.seed": seed}, [f"beta={beta}"])
    (run / "config.json").write_text(json.dumps({**config.to_dict(), "seed": seed}))
    s = fake_scores(model, beta, seed)
    metrics = {
        "preset": "fast",
        "metrics": {
            "mig": {"discrete_mig": s["mig"], "time_s": 0.1, "params": {"num_bins": 20}},
            "dci_fast": {"disentanglement": s["dci"], "completeness": 0.2, "time_s": 1.0},
            "beta_vae": {"eval_accuracy": s["beta_vae"], "train_accuracy": 0.9},
        },
    }
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "log.csv").write_text("step,loss\n20,100.5\n40,90.25\n")
    (run / "model.safetensors").write_bytes(b"")
    if pictures:
        rng = np.random.RandomState(seed)
        for name, size in (("traversal", (600, 400)), ("reconstructions", (300, 120))):
            pixels = (rng.rand(size[1], size[0], 3) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(run / f"{name}.png")
    return run


def write_study(root: Path) -> list[Path]:
    """betavae beta 1, 4 and betatcvae beta 6, seeds 0 and 1: 6 runs, 3 configurations."""
    return [
        write_run(root, model, beta, seed)
        for model, beta in (("betavae", 1.0), ("betavae", 4.0), ("betatcvae", 6.0))
        for seed in (0, 1)
    ]
