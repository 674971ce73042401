"""Disentanglement quality: β-VAE (β = 4) and β-TCVAE (β = 6) trained on the dsprites twin for a
step budget, scored with a metric preset beside an untrained encoder of the same architecture.

Each model trains into an ordinary run folder (with its traversal, reconstructions and MI heat
map) under ``--out``; quality.json and quality.md (the table) are written there and printed.

    python benchmarks/bench_quality.py [--steps 3000] [--preset fast] [--out bench-quality]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from untwine import runs, versions
from untwine.config import make_run_config
from untwine.data import load_dataset
from untwine.metrics.evaluate import flat_scores
from untwine.models.base import build_model, representer
from untwine.pipeline import run
from untwine.train import seed_everything

MODELS = (("betavae", {"beta": 4.0}), ("betatcvae", {"beta": 6.0}))


def untrained(preset: str, seed: int) -> dict[str, float]:
    """Metrics of a freshly initialised β-VAE encoder (the floor the trained ones should beat)."""
    from untwine.metrics import evaluate

    config = make_run_config("betavae", {"train.seed": seed})
    dataset = load_dataset(config.data.name)
    seed_everything(seed)
    model = build_model(config.model, config.model_config, dataset.image_shape).eval()
    return flat_scores(evaluate(dataset, representer(model), preset=preset, seed=0))


def trained(name: str, params: dict, steps: int, preset: str, seed: int, out: Path) -> dict:
    """Train one model into ``out/name``, evaluate it and draw its pictures (the one run call)."""
    config = make_run_config(
        name,
        {"train.steps": steps, "train.seed": seed, "train.metrics": preset},
        [f"{k}={v}" for k, v in params.items()],
    )
    run_dir = out / name
    start = time.perf_counter()
    print(f"training {name} for {steps} steps → {run_dir}", file=sys.stderr, flush=True)
    result = run(config, run_dir, force=True, quiet=True)
    seconds = time.perf_counter() - start
    metrics = flat_scores(result.metrics)
    return {
        "model": name,
        "params": params,
        "steps": steps,
        "train_evaluate_draw_s": seconds,
        "final_log": runs.read_log(run_dir)[-1],
        "metrics": metrics,
        "run_dir": str(run_dir),
    }


def table(base: dict[str, float], results: list[dict]) -> str:
    """Markdown: one row per metric, the untrained encoder then each trained model."""
    heads = ["metric", "untrained encoder"] + [
        f"{r['model']} ({', '.join(f'{k}={v:g}' for k, v in r['params'].items())})" for r in results
    ]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for key in base:
        cells = [f"{base[key]:.3f}"] + [
            f"{r['metrics'].get(key, float('nan')):.3f}" for r in results
        ]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="training steps per model")
    parser.add_argument("--preset", default="fast", choices=("fast", "study"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench-quality"))
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    results = [trained(n, p, args.steps, args.preset, args.seed, args.out) for n, p in MODELS]
    base = untrained(args.preset, args.seed)
    markdown = table(base, results)
    report = {
        "benchmark": "train_quality",
        "dataset": "dsprites (twin)",
        "preset": args.preset,
        "seed": args.seed,
        "untrained": base,
        "models": results,
        "versions": versions(),
    }
    (args.out / "quality.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "quality.md").write_text(markdown + "\n")
    print(json.dumps(report, indent=2))
    print(markdown)


if __name__ == "__main__":
    main()
