"""Data throughput: images/s of each procedural twin for random batches, beside a preloaded array.

The baseline gathers random rows of an in-memory uint8 array and converts them to float32, which
is what an in-memory loader of the official file does; ``ratio`` = twin / baseline. Each dataset
runs in its own subprocess so its peak memory (max RSS) is its own. Prints JSON.

    python benchmarks/bench_data.py [--seconds 2] [--batch-size 64] [NAME ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def throughput(fn, seconds: float) -> float:
    """Calls of fn per second, after one warm-up call, over about ``seconds``."""
    fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)


def measure(name: str, seconds: float, batch_size: int) -> dict:
    """Time one twin and the preloaded-array baseline in this process."""
    from untwine.data import load_dataset

    start = time.perf_counter()
    ds = load_dataset(name)
    ds.images(ds.sample_factors(1, np.random.RandomState(0)))
    setup_s = time.perf_counter() - start
    rng = np.random.RandomState(0)
    twin = throughput(lambda: ds.images(ds.sample_factors(batch_size, rng)), seconds)

    c, h, w = ds.image_shape
    preloaded = np.random.RandomState(1).randint(0, 256, (4096, h, w, c), dtype=np.uint8)

    def baseline() -> np.ndarray:
        rows = rng.randint(0, len(preloaded), batch_size)
        return preloaded[rows].transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)

    base = throughput(baseline, seconds)
    return {
        "dataset": name,
        "image_shape": list(ds.image_shape),
        "setup_seconds": round(setup_s, 3),
        "twin_images_per_s": round(twin * batch_size),
        "preloaded_array_images_per_s": round(base * batch_size),
        "ratio": round(twin / base, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.names[0], args.seconds, args.batch_size)))
        return
    from untwine.data import DATASETS

    names = args.names or sorted(n for n, e in DATASETS.items() if e.twin is not None)
    results = []
    for name in names:
        cmd = [sys.executable, __file__, name, "--one", "--seconds", str(args.seconds),
               "--batch-size", str(args.batch_size)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    print(json.dumps({"batch_size": args.batch_size, "results": results}, indent=2))


if __name__ == "__main__":
    main()
