"""Metric-suite timings on the dsprites twin with a fixed small conv encoder; JSON to stdout.

For each preset: seconds per metric, seconds spent rendering + encoding, distinct images
encoded, and the images the reference protocol would encode (each metric encodes every draw:
~1.9 M for BetaVAE, ~1 M for FactorVAE). Run: python benchmarks/bench_metrics.py [--preset fast]

``--dci dsprites shapes3d`` times exact DCI (untwine's presorted engine) against scikit-learn's
``GradientBoostingClassifier`` on the same codes, 10,000 / 5,000 points of the grid's factor
sizes, 10 latents, both with each of ``--sklearn-states``, alternating: seconds (the fastest
run of each), ratio, max |difference| of D, C and informativeness between the two at the same
random state, beside the spread of scikit-learn's own DCI over the states. ``--out FILE``
merges into FILE, so the pieces can run separately; with a dsprites DCI row and the study
preset in it, the reference protocol's time is put together from measured parts (see
:func:`reference_estimate`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import numpy as np
import torch

from untwine.data import load_dataset
from untwine.metrics.dci import dci
from untwine.metrics.evaluate import evaluate

GRIDS = {"dsprites": (1, 3, 6, 40, 32, 32), "shapes3d": (10, 10, 10, 8, 4, 15)}
"""Factor sizes of the two study datasets (dSprites' colour takes one value)."""
DCI_KEYS = ("disentanglement", "completeness", "informativeness_test", "informativeness_train")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def grid_codes(sizes, num, rs: np.random.RandomState, mixing: np.ndarray) -> tuple:
    """Uniform factor classes (num, K) and float32 codes: scaled factors × mixing + noise."""
    factors = np.stack([rs.randint(s, size=num) for s in sizes], axis=1)
    scaled = factors / np.maximum(np.array(sizes) - 1, 1)
    codes = scaled @ mixing + 0.05 * rs.randn(num, mixing.shape[1])
    return codes.astype(np.float32), factors


def dci_row(grid: str, states: list[int], jobs: int) -> dict:
    """Exact vs scikit-learn DCI on one grid's codes, each once per random state, alternating.

    Codes: each factor mostly in its own latent (weight 1) with 0.3-weighted leakage into two
    others; the remaining latents are noise. Both backends fit the factors on ``jobs`` workers.
    Each side's time is its fastest run, as ``timeit`` reports: on a shared machine speed
    drifts by tens of percent within minutes, and alternating the two keeps the drift fair.
    """
    sizes = GRIDS[grid]
    rs = np.random.RandomState(0)
    mixing = np.zeros((len(sizes), 10))
    for k in range(len(sizes)):
        mixing[k, k] = 1.0
        mixing[k, rs.choice(10, 2, replace=False)] += 0.3
    ctr, ftr = grid_codes(sizes, 10000, rs, mixing)
    cte, fte = grid_codes(sizes, 5000, rs, mixing)
    row = {"factor_sizes": sizes, "num_train": 10000, "num_test": 5000, "latents": 10,
           "n_jobs": jobs, "peak_rss_mb_before": round(peak_rss_mb(), 1)}
    dci(ctr[:300], ftr[:300], cte[:100], fte[:100], n_jobs=1)  # compile outside the timing
    ours, theirs = {}, {}
    for state in states:
        for backend, results in (("exact", ours), ("sklearn", theirs)):
            start = time.perf_counter()
            results[state] = dci(
                ctr, ftr, cte, fte, backend=backend, n_jobs=jobs, random_state=state
            )
            row[f"{backend}_s_state{state}"] = round(time.perf_counter() - start, 2)
            if backend == "exact" and "peak_rss_mb_after_exact" not in row:
                row["peak_rss_mb_after_exact"] = round(peak_rss_mb(), 1)
        print(json.dumps({grid: {k: v for k, v in row.items() if "_s_" in k}}), flush=True)
    row["exact_s"] = min(row[f"exact_s_state{s}"] for s in states)
    row["sklearn_s"] = min(row[f"sklearn_s_state{s}"] for s in states)
    row["ratio"] = round(row["sklearn_s"] / row["exact_s"], 1)
    row["exact"] = {str(s): {k: ours[s][k] for k in DCI_KEYS} for s in states}
    row["sklearn"] = {str(s): {k: theirs[s][k] for k in DCI_KEYS} for s in states}
    row["max_abs_diff_exact_vs_sklearn_same_state"] = {
        k: max(abs(ours[s][k] - theirs[s][k]) for s in states) for k in DCI_KEYS
    }
    row["sklearn_spread_over_states"] = {
        k: float(np.ptp([theirs[s][k] for s in states])) for k in DCI_KEYS
    }
    return row


def reference_estimate(report: dict) -> dict | None:
    """The study preset vs the reference protocol (no code cache, scikit-learn's DCI).

    Measured: the study preset with cache and exact engine (total, encode and DCI seconds,
    images encoded / requested); scikit-learn's DCI on dSprites-sized codes. Put together: the
    reference protocol = that total − its DCI − its encoding + sklearn's DCI + every requested
    image encoded at the measured rate (the scores are the same up to DCI's tie-breaking: the
    cache replays the reference's draws, see tests/metrics/test_evaluate.py).
    """
    study = report.get("presets", {}).get("study")
    row = report.get("dci", {}).get("dsprites")
    if not study or not row:
        return None
    rate = study["encode_s"] / max(study["images_encoded"], 1)
    encode_all = rate * study["images_reference_would_encode"]
    total = study["total_s"] - study["per_metric_s"]["dci"] - study["encode_s"]
    reference = total + row["sklearn_s"] + encode_all
    return {
        "study_preset_s": study["total_s"],
        "reference_protocol_s_from_parts": round(reference, 1),
        "ratio": round(reference / study["total_s"], 1),
        "parts": {"other_metrics_s": round(total, 1), "sklearn_dci_s": row["sklearn_s"],
                  "encode_every_request_s": round(encode_all, 1),
                  "encode_s_per_image": rate},
    }


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
    parser.add_argument("--preset", action="append", choices=["fast", "study", "none"])
    parser.add_argument("--dci", nargs="*", choices=sorted(GRIDS), default=[])
    parser.add_argument("--sklearn-states", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", help="also write the JSON here (merged into an existing file)")
    args = parser.parse_args()
    old = json.loads(Path(args.out).read_text()) if args.out and Path(args.out).exists() else {}
    dci_rows = dict(old.get("dci", {}))
    for grid in args.dci:
        dci_rows[grid] = dci_row(grid, args.sklearn_states, args.jobs)
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
        "presets": dict(old.get("presets", {})),
        "dci": dci_rows,
    }
    presets = args.preset or (["fast", "study"] if not args.dci else [])
    for preset in [p for p in presets if p != "none"]:
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
        report["presets"][preset]["peak_rss_mb"] = round(peak_rss_mb(), 1)
        print(json.dumps({preset: report["presets"][preset]["per_metric_s"]}), flush=True)
    report["study_vs_reference"] = reference_estimate(report)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
