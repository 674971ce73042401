"""ProtoVAE and DOT-VAE beside β-VAE (β = 4) and β-TCVAE (β = 6): same step budget, same seeds.

For each dataset twin, seed and model: train into an ordinary run folder under ``--out``, then
score the encoder means with the ``fast`` preset's array metrics and FactorVAE score (the
BetaVAE score is left out: it encodes ~175k images, ~45 s per model on 2 cores) plus exact DCI
(disentanglement_lib's GradientBoostingClassifier) on ``--dci-train`` / ``--dci-test`` points,
and count the latents each model uses. ProtoVAE and DOT-VAE report their own
``discovered_factors``; for the baselines the count is the same rule as ProtoVAE's: latents with
mean KL to the prior above 0.1 nats over 2,000 images. Each run writes
``<data>-s<seed>-<model>.json``; ``--aggregate`` turns every such file under ``--out`` into
seed_vaes.md (mean ± std over seeds) and seed_vaes.json. Runs are independent, so a budget
can be spent in pieces:

    python benchmarks/bench_seed_vaes.py --data dsprites --seeds 0 --steps 500 --out bench-seed
    python benchmarks/bench_seed_vaes.py --aggregate --out bench-seed

DOT-VAE's schedule is sized to the run with its own config field ``schedule_budget=<steps>``
(:func:`untwine.models.one_at_a_time.budget_schedule`: pre-training steps/10, β rising until
steps/2, windows so that every d dim is judged by 0.82·steps unless one waits for β, for a
collapsed code to carry information again, or for its own KL to stop rising), so the
one-at-a-time schedule can finish inside the budget (``stopped`` in each run file says if it
did: on the dsprites twin, not at 600 steps; at 2,000 it ran out of dims); ProtoVAE's KL
moving average uses decay 0.05 (its default 0.01 averages over ~100 steps, too slow to leave
inactive latents out of short runs). Each run file
records these settings (``sets``) and the seconds of training and of each metric.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from untwine import runs
from untwine._version import versions
from untwine.config import make_run_config
from untwine.metrics import evaluate
from untwine.metrics.evaluate import flat_scores
from untwine.metrics.registry import PRESETS
from untwine.models.base import representer
from untwine.train import train

TRUE_FACTORS = {"dsprites": 5, "shapes3d": 6, "mpi3d": 7}
MODELS = ("protovae", "dotvae", "betavae", "betatcvae")
ACTIVE_KL = 0.1
COUNT_IMAGES = 2000


def model_sets(name: str, steps: int) -> list[str]:
    """Settings sized to ``steps`` for the two reconstructions; baselines keep their defaults."""
    if name == "dotvae":
        return [f"schedule_budget={steps}"]
    if name == "protovae":
        return ["kl_decay=0.05"]
    return []


@torch.no_grad()
def used_latents(model: torch.nn.Module, dataset) -> int:
    """Latents with mean KL above ACTIVE_KL nats over COUNT_IMAGES images (RandomState(0))."""
    rng = np.random.RandomState(0)
    x = dataset.images(dataset.sample_factors(COUNT_IMAGES, rng))
    kl = torch.stack([model.kl_per_latent(x[i : i + 500]) for i in range(0, len(x), 500)])
    return int((kl.mean(0) > ACTIVE_KL).sum())


def metric_plan(dci_train: int, dci_test: int) -> tuple[list[str], dict]:
    """The fast preset minus BetaVAE, plus exact DCI on the given sample sizes."""
    fast = {k: v for k, v in PRESETS["fast"].items() if k != "beta_vae"}
    names = [*fast, "dci"]
    return names, {**fast, "dci": {"num_train": dci_train, "num_test": dci_test}}


def one_run(name: str, data: str, seed: int, steps: int, args: argparse.Namespace) -> dict:
    """Train, count latents, score; the run folder keeps weights, log and config."""
    config = make_run_config(
        name,
        {"data.name": data, "train.steps": steps, "train.seed": seed, "train.metrics": "none"},
        model_sets(name, steps),
    )
    run_dir = args.out / f"{data}-s{seed}-{name}"
    print(f"training {name} on {data}, seed {seed}, {steps} steps", file=sys.stderr, flush=True)
    start = time.perf_counter()
    trained = train(config, run_dir, force=True, quiet=True)
    train_seconds = time.perf_counter() - start
    model, dataset = trained.model.eval(), trained.dataset
    own = model.extra_metrics(dataset, seed)
    start = time.perf_counter()
    names, overrides = metric_plan(args.dci_train, args.dci_test)
    result = evaluate(dataset, representer(model), preset=names, overrides=overrides)
    return {
        "model": name,
        "data": data,
        "seed": seed,
        "steps": steps,
        "sets": model_sets(name, steps),
        "train_seconds": train_seconds,
        "eval_seconds": time.perf_counter() - start,
        "metric_seconds": {
            "encode": result.get("encode_time_s"),
            **{k: v.get("time_s") for k, v in result["metrics"].items()},
        },
        "final_log": runs.read_log(run_dir)[-1],
        "discovered_factors": own.get("discovered_factors", used_latents(model, dataset)),
        "true_factors": TRUE_FACTORS.get(data),
        "model_metrics": own,
        "metrics": flat_scores(result),
        "versions": versions(),
    }


KEYS = (
    ("dci.disentanglement", "DCI disentanglement (exact)"),
    ("dci.completeness", "DCI completeness (exact)"),
    ("dci.informativeness_test", "DCI informativeness (exact, test)"),
    ("dci_fast.disentanglement", "DCI disentanglement (fast)"),
    ("factor_vae.eval_accuracy", "FactorVAE eval accuracy"),
    ("mig.discrete_mig", "MIG"),
    ("sap.SAP_score", "SAP"),
    ("modularity_explicitness.modularity_score", "Modularity"),
    ("irs.IRS", "IRS"),
)


def _cell(values: list[float]) -> str:
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "–"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def aggregate(out: Path) -> str:
    """seed_vaes.md / .json from every run file under ``out``: one table per dataset."""
    rows = [json.loads(p.read_text()) for p in sorted(out.glob("*-s*-*.json"))]
    lines: list[str] = []
    summary: dict = {}
    for data in sorted({r["data"] for r in rows}):
        mine = [r for r in rows if r["data"] == data]
        models = [m for m in MODELS if any(r["model"] == m for r in mine)]
        by = {m: [r for r in mine if r["model"] == m] for m in models}
        seeds = sorted({r["seed"] for r in mine})
        steps = sorted({r["steps"] for r in mine})
        lines += [
            f"### {data} twin: {', '.join(map(str, steps))} steps, seeds {seeds}",
            "",
            "| metric | " + " | ".join(models) + " |",
            "|---|" + "---|" * len(models),
        ]
        for key, label in KEYS:
            cells = [_cell([r["metrics"].get(key) for r in by[m]]) for m in models]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        counts = [", ".join(str(r["discovered_factors"]) for r in by[m]) for m in models]
        lines.append(
            f"| latents used / discovered (true {TRUE_FACTORS.get(data)}), per seed | "
            + " | ".join(counts)
            + " |"
        )
        speed = [_cell([r["steps"] / r["train_seconds"] for r in by[m]]) for m in models]
        lines += ["| training steps/s | " + " | ".join(speed) + " |", ""]
        summary[data] = {
            m: {
                "seeds": [r["seed"] for r in by[m]],
                "discovered_factors": [r["discovered_factors"] for r in by[m]],
                **{key: [r["metrics"].get(key) for r in by[m]] for key, _ in KEYS},
                "switch_steps": [r["model_metrics"].get("switch_steps") for r in by[m]],
            }
            for m in models
        }
    markdown = "\n".join(lines)
    (out / "seed_vaes.md").write_text(markdown + "\n")
    (out / "seed_vaes.json").write_text(json.dumps(summary, indent=2) + "\n")
    return markdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["dsprites", "shapes3d"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--steps", type=int, default=500, help="training steps per model")
    parser.add_argument("--dci-train", type=int, default=1000)
    parser.add_argument("--dci-test", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("bench-seed-vaes"))
    parser.add_argument("--aggregate", action="store_true", help="only build the table")
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    if not args.aggregate:
        for data in args.data:
            for seed in args.seeds:
                for name in args.models:
                    result = one_run(name, data, seed, args.steps, args)
                    path = args.out / f"{data}-s{seed}-{name}.json"
                    path.write_text(json.dumps(result, indent=2) + "\n")
                    print(
                        json.dumps(
                            {
                                k: result[k]
                                for k in (
                                    "model",
                                    "data",
                                    "seed",
                                    "discovered_factors",
                                    "train_seconds",
                                    "eval_seconds",
                                )
                            }
                        ),
                        flush=True,
                    )
    print(aggregate(args.out))


if __name__ == "__main__":
    main()
