"""Metric-suite timings on the dsprites twin with a fixed small conv encoder; JSON to stdout.

For each preset: seconds per metric, seconds spent rendering + encoding, distinct images
encoded, and the images the reference protocol would encode (each metric encodes every draw:
~1.9 M for BetaVAE, ~1 M for FactorVAE). Run: python benchmarks/bench_metrics.py [--preset fast]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from untwine.data import load_dataset
from untwine.metrics.evaluate import evaluate


def encoder(dataset, seed: int = 0, dim: int = 10) -> torch.nn.Module:
    """4 stride-2 4×4 convs (8, 16, 16, 32 channels) + linear to ``dim``; seeded, eval mode.

    The linear layer is rescaled so each code has mean 0 and std 1 on 2048 fixed images (a
    random init gives stds ~1e-3, below FactorVAE's 0.05 pruning threshold).
    """
    torch.manual_seed(seed)
    layers, cin = [], 1
    for cout in (8, 16, 16, 32):
        layers += [torch.nn.Conv2d(cin, cout, 4, 2, 1), torch.nn.ReLU()]
        cin = cout
    head = torch.nn.Linear(cin * 16, dim)
    net = torch.nn.Sequential(*layers, torch.nn.Flatten(), head).eval()
    probe = dataset.images(dataset.sample_factors(2048, np.random.RandomState(seed)))
    with torch.no_grad():
        z = net(probe)
        mean, std = z.mean(0), z.std(0)
        head.weight /= std[:, None]
        head.bias.copy_((head.bias - mean) / std)
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", action="append", choices=["fast", "study"])
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    dataset = load_dataset("dsprites")
    net = encoder(dataset)

    def represent(images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([net(images[i : i + 256]) for i in range(0, len(images), 256)])

    report = {
        "dataset": repr(dataset),
        "grid_size": len(dataset),
        "encoder": "conv 8-16-16-32 (4x4, stride 2) + linear 10, torch seed 0",
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "presets": {},
    }
    for preset in args.preset or ["fast", "study"]:
        start = time.perf_counter()
        result = evaluate(dataset, represent, preset=preset, seed=0, encode_batch_size=4096)
        report["presets"][preset] = {
            "total_s": round(time.perf_counter() - start, 2),
            "encode_s": round(result["encode_time_s"], 2),
            "images_encoded": result["images_encoded"],
            "images_reference_would_encode": result["images_requested"],
            "per_metric_s": {k: round(v["time_s"], 2) for k, v in result["metrics"].items()},
            "scores": {
                name: {k: v for k, v in r.items() if k not in ("params", "time_s", "backend")}
                for name, r in result["metrics"].items()
            },
            "versions": result["versions"],
        }
        print(json.dumps({preset: report["presets"][preset]["per_metric_s"]}), flush=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
