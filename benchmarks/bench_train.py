"""Training throughput: untwine's full loop beside a bare PyTorch loop, same model, same process.

(a) ``untwine.train.train`` on the dsprites twin: sampling factors, rendering, loss, backward,
Adam, loss-window bookkeeping, log.csv and checkpoints (images/s from log.csv, first window
dropped as warm-up; also the end-to-end rate including setup).
(b) the same forward, backward and Adam step on one preloaded batch tensor, nothing else.
``ratio`` = a / b (target ≥ 0.9). Rounds alternate b, a, b, a … and the medians are reported,
so load from other processes hits both alike. Prints JSON.

    python benchmarks/bench_train.py [--steps 300] [--rounds 2] [--model betavae]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from untwine import runs
from untwine.config import make_run_config
from untwine.data import load_dataset
from untwine.models.base import build_model
from untwine.train import make_optimisers, seed_everything, train


def bare_loop(config, dataset, steps: int, warmup: int = 10) -> float:
    """Images/s of forward + backward + Adam on one preloaded batch."""
    seed_everything(config.train.seed)
    model = build_model(config.model, config.model_config, dataset.image_shape).train()
    adam, _, _ = make_optimisers(model, model.stages()[0], config.train)
    batch = dataset.images(
        dataset.sample_factors(config.train.batch_size, np.random.RandomState(0))
    )
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        loss = model.loss(batch, step)["loss"]
        adam.zero_grad(set_to_none=True)
        loss.backward()
        adam.step()
    return steps * config.train.batch_size / (time.perf_counter() - start)


def full_loop(config, dataset, folder: Path) -> tuple[float, float]:
    """(loop images/s from log.csv without the first window, end-to-end images/s)."""
    start = time.perf_counter()
    train(config, folder, quiet=True, force=True)
    wall = config.train.steps * config.train.batch_size / (time.perf_counter() - start)
    rows = runs.read_log(folder)[1:]
    return statistics.fmean(r["images_per_s"] for r in rows), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="betavae")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    log_every = max(args.steps // 6, 1)
    config = make_run_config(
        args.model,
        {
            "train.steps": args.steps,
            "train.batch_size": args.batch_size,
            "train.log_every": log_every,
            "train.checkpoint_every": max(args.steps // 2, 1),
            "train.metrics": "none",
            "train.device": "cpu",
        },
    )
    dataset = load_dataset(config.data.name)
    bare, loop, wall = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            bare.append(bare_loop(config, dataset, args.steps))
            a, w = full_loop(config, dataset, Path(tmp) / "run")
            loop.append(a)
            wall.append(w)
    result = {
        "benchmark": "train_throughput",
        "model": args.model,
        "architecture": getattr(config.model_config, "architecture", None),
        "dataset": f"{dataset.name} ({getattr(dataset, 'source', '')})",
        "batch_size": args.batch_size,
        "steps_per_round": args.steps,
        "rounds": args.rounds,
        "torch_threads": torch.get_num_threads(),
        "bare_images_per_s": statistics.median(bare),
        "untwine_loop_images_per_s": statistics.median(loop),
        "untwine_end_to_end_images_per_s": statistics.median(wall),
        "ratio": statistics.median(loop) / statistics.median(bare),
        "ratio_end_to_end": statistics.median(wall) / statistics.median(bare),
        "untwine_steps_per_s": statistics.median(loop) / args.batch_size,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "per_round": {"bare": bare, "loop": loop, "end_to_end": wall},
        "torch": torch.__version__,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
