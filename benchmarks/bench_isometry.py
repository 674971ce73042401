"""Time the spectral experiment (HLLE + ICA vs autoencoders on blob manifolds); prints JSON.

Usage: flock /tmp/untwine-cpu.lock python benchmarks/bench_isometry.py [--samples N] [--epochs E]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from untwine.experiments.isometry import (
    IsometryExperimentConfig,
    run_isometry_experiment,
    write_outputs,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--out", type=Path, default=None, help="also write md/json/png here")
    args = parser.parse_args()
    cfg = IsometryExperimentConfig(n_samples=args.samples, epochs=args.epochs)
    start = time.perf_counter()
    report = run_isometry_experiment(cfg)
    total = time.perf_counter() - start
    if args.out is not None:
        write_outputs(report, args.out)
    rows = [
        {
            "manifold": r["manifold"],
            "method": r["method"],
            "seconds": round(r["seconds"], 2),
            "mcc": round(r["raw"]["mcc"], 4),
            "mcc_ica": round(r["ica"]["mcc"], 4),
            "li": round(r["raw"]["li"], 4),
            "li_ica": round(r["ica"]["li"], 4),
        }
        for r in report["results"]
    ]
    print(json.dumps({"total_seconds": round(total, 1), "config": report["config"], "rows": rows}))


if __name__ == "__main__":
    main()
