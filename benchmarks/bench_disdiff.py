"""DisDiff beside β-VAE (β = 4) and β-TCVAE (β = 6) at the same wall-clock, on the shapes3d twin.

The DPM (``ddpm``: autoencoder, then the latent UNet) is trained once into ``--out``/ddpm and
reused by every DisDiff seed, as a user would; its stage times are reported apart. For each seed,
DisDiff trains ``--disdiff-steps`` steps (batch ``--batch-size``) on it, and each baseline then
trains (its study defaults, batch 64) for the wall-clock DisDiff's own training took in that seed:
a timer sends SIGTERM, the loop checkpoints at the step it reached, and a resume with
``--steps`` = that step writes the final weights. The DPM's time is in no one's budget.

Scores: FactorVAE score (the fast preset's sample sizes), DCI with the exact backend
(disentanglement_lib's GradientBoostingClassifier) on ``--dci-train`` / ``--dci-test`` points,
and MIG (2,000 points, 20 bins), one thread (``n_jobs=1``: exact DCI's threads crashed here
compiling its numba trees concurrently); DisDiff's codes are its per-unit PCA projections.
Each piece is a separate call, so a budget can be spent in parts of a few minutes each:

    python benchmarks/bench_disdiff.py dpm --out bench-disdiff
    python benchmarks/bench_disdiff.py disdiff --seed 0 --draw --out bench-disdiff
    python benchmarks/bench_disdiff.py baselines --seed 0 --out bench-disdiff
    python benchmarks/bench_disdiff.py aggregate --out bench-disdiff

Run each piece with a fresh ``NUMBA_CACHE_DIR=$(mktemp -d)``: here, exact DCI's numba trees
segfaulted when loaded from the on-disk cache a previous process wrote.

Every piece writes a JSON file under ``--out``; ``aggregate`` prints (and writes
disdiff.json / disdiff.md) mean ± std over seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from untwine import runs
from untwine._version import versions
from untwine.config import RunConfig, apply_overrides, make_run_config
from untwine.data import load_dataset
from untwine.metrics import evaluate
from untwine.metrics.evaluate import flat_scores
from untwine.metrics.registry import PRESETS
from untwine.models.base import representer
from untwine.pipeline import draw_model
from untwine.train import train

DATA = "shapes3d"
BASELINES = ("betavae", "betatcvae")
KEYS = (
    ("factor_vae.eval_accuracy", "FactorVAE score"),
    ("dci.disentanglement", "DCI disentanglement (exact)"),
    ("dci.completeness", "DCI completeness (exact)"),
    ("dci.informativeness_test", "DCI informativeness (exact, test)"),
    ("mig.discrete_mig", "MIG"),
)


def stage_seconds(run_dir: Path, batch: int) -> dict[str, float]:
    """Seconds of each stage from log.csv: Σ Δstep · batch / (images/s) over its rows."""
    out: dict[str, float] = {}
    last = 0
    for row in runs.read_log(run_dir):
        step = int(row["step"])
        out[row["stage"]] = out.get(row["stage"], 0.0) + (step - last) * batch / float(
            row["images_per_s"]
        )
        last = step
    return out


def score(model: Any, dataset: Any, args: argparse.Namespace) -> tuple[dict, float]:
    """FactorVAE score, exact DCI and MIG of the model's codes; (flat scores, seconds)."""
    start = time.perf_counter()
    result = evaluate(
        dataset,
        representer(model),
        preset=["factor_vae", "dci", "mig"],
        n_jobs=1,  # exact DCI's numba trees segfault when first compiled from several threads
        overrides={
            "factor_vae": PRESETS["fast"]["factor_vae"],
            "dci": {"num_train": args.dci_train, "num_test": args.dci_test},
            "mig": PRESETS["fast"]["mig"],
        },
    )
    return flat_scores(result), time.perf_counter() - start


def dpm(args: argparse.Namespace, dataset: Any) -> dict:
    """The ddpm run every DisDiff seed reuses; its stage times."""
    config = make_run_config(
        "ddpm",
        {"data.name": DATA, "train.metrics": "none", "train.log_every": 50},
        [f"ae_steps={args.ae_steps}", f"dpm_steps={args.dpm_steps}"],
    )
    run_dir = args.out / "ddpm"
    start = time.perf_counter()
    trained = train(config, run_dir, force=True, quiet=True, dataset=dataset)
    seconds = time.perf_counter() - start
    draw_model(trained.model, dataset, run_dir)
    return {
        "part": "dpm",
        "ae_steps": args.ae_steps,
        "dpm_steps": args.dpm_steps,
        "batch_size": config.train.batch_size,
        "train_seconds": seconds,
        "stage_seconds": stage_seconds(run_dir, config.train.batch_size),
        "final_log": runs.read_log(run_dir)[-1],
        "versions": versions(),
    }


def disdiff(args: argparse.Namespace, dataset: Any) -> dict:
    """DisDiff on the shared DPM, one seed: train, score, optionally draw every picture."""
    config = make_run_config(
        "disdiff",
        {
            "data.name": DATA,
            "train.seed": args.seed,
            "train.batch_size": args.batch_size,
            "train.metrics": "none",
            "train.log_every": 50,
        },
        [
            f"dpm={(args.out / 'ddpm').resolve()}",
            f"disdiff_steps={args.disdiff_steps}",
            f"warmup_steps={args.warmup}",
        ],
    )
    run_dir = args.out / f"s{args.seed}-disdiff"
    start = time.perf_counter()
    trained = train(config, run_dir, force=True, quiet=True, dataset=dataset)
    seconds = time.perf_counter() - start
    scores, eval_seconds = score(trained.model, dataset, args)
    pictures: list[str] = []
    draw_seconds = None
    if args.draw:
        start = time.perf_counter()
        pictures = [str(p) for p in draw_model(trained.model, dataset, run_dir, args.seed)]
        draw_seconds = time.perf_counter() - start
    return {
        "part": "disdiff",
        "model": "disdiff",
        "seed": args.seed,
        "steps": args.disdiff_steps,
        "batch_size": args.batch_size,
        "train_seconds": seconds,
        "stage_seconds": stage_seconds(run_dir, args.batch_size),
        "eval_seconds": eval_seconds,
        "draw_seconds": draw_seconds,
        "pictures": pictures,
        "final_log": runs.read_log(run_dir)[-1],
        "metrics": scores,
        "versions": versions(),
    }


def train_for(config: RunConfig, run_dir: Path, seconds: float, dataset: Any) -> Any:
    """Train until ``seconds`` of wall-clock have passed (SIGTERM from a timer: the loop
    checkpoints the step it reached), then resume with that many steps to write the weights."""
    old = signal.signal(signal.SIGTERM, lambda *_: None)  # a late timer must not kill us
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGTERM))
    try:
        timer.start()
        trained = train(config, run_dir, force=True, quiet=True, dataset=dataset)
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, old)
    if trained.interrupted:
        done = apply_overrides(config, {"train.steps": trained.step})
        trained = train(done, run_dir, resume=True, quiet=True, dataset=dataset)
    return trained


def baselines(args: argparse.Namespace, dataset: Any) -> list[dict]:
    """β-VAE and β-TCVAE for the wall-clock DisDiff's training took in this seed."""
    own = json.loads((args.out / f"s{args.seed}-disdiff.json").read_text())
    budget = own["train_seconds"]
    results = []
    for name in BASELINES:
        config = make_run_config(
            name,
            {"data.name": DATA, "train.seed": args.seed, "train.steps": 10**7,
             "train.metrics": "none", "train.log_every": 50},
        )
        run_dir = args.out / f"s{args.seed}-{name}"
        print(f"{name}, seed {args.seed}: {budget:.0f} s", file=sys.stderr, flush=True)
        start = time.perf_counter()
        trained = train_for(config, run_dir, budget, dataset)
        seconds = time.perf_counter() - start
        scores, eval_seconds = score(trained.model, dataset, args)
        results.append({
            "part": "baseline",
            "model": name,
            "seed": args.seed,
            "steps": trained.step,
            "batch_size": config.train.batch_size,
            "budget_seconds": budget,
            "train_seconds": seconds,
            "eval_seconds": eval_seconds,
            "final_log": runs.read_log(run_dir)[-1],
            "metrics": scores,
            "versions": versions(),
        })
    return results


def _cell(values: list[float]) -> str:
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "–"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def aggregate(out: Path) -> str:
    """disdiff.md / disdiff.json: mean ± std over seeds of every model, and the DPM's times."""
    rows = [json.loads(p.read_text()) for p in sorted(out.glob("s*-*.json"))]
    rows = [r for r in rows if r.get("part") in ("disdiff", "baseline")]
    models = [m for m in ("disdiff", *BASELINES) if any(r["model"] == m for r in rows)]
    by = {m: [r for r in rows if r["model"] == m] for m in models}
    dpm_file = out / "dpm.json"
    lines = []
    if dpm_file.exists():
        d = json.loads(dpm_file.read_text())
        times = ", ".join(f"{k} {v / 60:.1f} min" for k, v in d["stage_seconds"].items())
        lines += [
            f"DPM (trained once, reused by every DisDiff seed; in no model's budget): "
            f"ae {d['ae_steps']} + dpm {d['dpm_steps']} steps at batch {d['batch_size']}: "
            f"{times}.",
            "",
        ]
    lines += [
        "| metric | " + " | ".join(models) + " |",
        "|---|" + "---|" * len(models),
    ]
    for key, label in KEYS:
        cells = [_cell([r["metrics"].get(key) for r in by[m]]) for m in models]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append(
        "| training seconds | "
        + " | ".join(_cell([r["train_seconds"] for r in by[m]]) for m in models)
        + " |"
    )
    lines.append(
        "| steps (batch) | "
        + " | ".join(
            ", ".join(f"{r['steps']}" for r in by[m]) + f" ({by[m][0]['batch_size']})"
            for m in models
        )
        + " |"
    )
    lines.append(
        "| seeds | " + " | ".join(", ".join(str(r["seed"]) for r in by[m]) for m in models) + " |"
    )
    markdown = "\n".join(lines)
    summary = {
        m: {
            "seeds": [r["seed"] for r in by[m]],
            "steps": [r["steps"] for r in by[m]],
            "train_seconds": [r["train_seconds"] for r in by[m]],
            **{key: [r["metrics"].get(key) for r in by[m]] for key, _ in KEYS},
        }
        for m in models
    }
    (out / "disdiff.md").write_text(markdown + "\n")
    (out / "disdiff.json").write_text(json.dumps(summary, indent=2) + "\n")
    return markdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("dpm", "disdiff", "baselines", "aggregate"))
    parser.add_argument("--out", type=Path, default=Path("bench-disdiff"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ae-steps", type=int, default=500)
    parser.add_argument("--dpm-steps", type=int, default=1500)
    parser.add_argument("--disdiff-steps", type=int, default=350)
    parser.add_argument("--warmup", type=int, default=100, help="DisDiff's warm-up steps")
    parser.add_argument("--batch-size", type=int, default=32, help="DisDiff's batch")
    parser.add_argument("--dci-train", type=int, default=1000)
    parser.add_argument("--dci-test", type=int, default=500)
    parser.add_argument("--draw", action="store_true", help="DisDiff: draw its pictures too")
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    if args.part != "aggregate":
        dataset = load_dataset(DATA)
        if args.part == "dpm":
            result = dpm(args, dataset)
            (args.out / "dpm.json").write_text(json.dumps(result, indent=2) + "\n")
            print(json.dumps(result["stage_seconds"]), flush=True)
        elif args.part == "disdiff":
            result = disdiff(args, dataset)
            (args.out / f"s{args.seed}-disdiff.json").write_text(json.dumps(result, indent=2))
            print(json.dumps({k: result[k] for k in ("train_seconds", "metrics")}), flush=True)
        else:
            for result in baselines(args, dataset):
                path = args.out / f"s{args.seed}-{result['model']}.json"
                path.write_text(json.dumps(result, indent=2) + "\n")
                print(json.dumps({k: result[k] for k in ("model", "steps", "metrics")}),
                      flush=True)
    print(aggregate(args.out))


if __name__ == "__main__":
    main()
