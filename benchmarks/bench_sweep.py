"""Study throughput: trials per hour of `untwine sweep` on a local Ray at --max-concurrent 1 and
2, beside a plain loop of ``untwine.run`` calls in this process (the baseline).

Every mode runs the same first ``--trials`` trials of a sweep spec from empty folders (train →
evaluate with the spec's metric preset → draw), timed by the wall clock:

- ``plain``: ``untwine.run(trial.config, folder)`` one after another, torch on every core;
- ``rayN``: ``run_sweep(..., max_concurrent=N)`` on a local Ray started here first, so its
  start-up (``ray_init_s``) is timed apart from the trials; the wall includes worker start-up
  (each new worker imports torch and untwine) and the shutdown.

``trials_per_h`` counts the whole wall (start-up included); ``trials_per_h_steady`` leaves
``ray.init`` out (what a long sweep approaches). ``ray_overhead_per_trial_s`` = (ray1 wall −
ray.init − plain wall) / trials. ``same_scores_as_plain`` says whether each Ray trial's
metrics.json equals the plain run's (an ordinary run folder, made by the same call).

Modes can run in separate invocations (to keep each under the shared lock's time limit):
results merge into ``OUT/bench_sweep.json`` and the ratios are recomputed from what is there.

    python benchmarks/bench_sweep.py examples/study_small.yaml --trials 2 --out sweeps/bench \
        [--modes plain,ray1,ray2]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
from pathlib import Path

import untwine
from untwine.metrics.evaluate import flat_scores
from untwine.sweep import Spec, load_spec, run_sweep

MODES = ("plain", "ray1", "ray2")


def plain(spec: Spec, folder: Path) -> dict:
    """Wall seconds of a loop of ``untwine.run`` calls, and each call's seconds."""
    seconds = []
    start = time.perf_counter()
    for trial in spec.trials:
        begin = time.perf_counter()
        untwine.run(trial.config, folder / trial.name, force=True, quiet=True)
        seconds.append(round(time.perf_counter() - begin, 2))
    return {"wall_s": time.perf_counter() - start, "trial_s": seconds, "failed": 0}


def on_ray(spec: Spec, folder: Path, concurrent: int) -> dict:
    """Wall seconds of a sweep on a fresh local Ray (start-up timed apart), trials' seconds."""
    import ray

    start = time.perf_counter()
    ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)
    init = time.perf_counter() - start
    try:
        outcomes = run_sweep(spec, folder, max_concurrent=concurrent, quiet=True)
    finally:
        ray.shutdown()
    failed = [o.error for o in outcomes if o.status != "done"]
    return {"wall_s": time.perf_counter() - start, "ray_init_s": round(init, 2),
            "trial_s": [round(o.seconds, 2) for o in outcomes], "failed": len(failed),
            "errors": failed}


def scores(folder: Path) -> dict[str, dict]:
    return {run.name: flat_scores(json.loads((run / "metrics.json").read_text()))
            for run in sorted(folder.iterdir()) if (run / "metrics.json").exists()}


def summarise(results: dict, out: Path, trials: int) -> dict:
    """Rates per mode, the ratios between modes, Ray's overhead per trial."""
    for mode, r in results["modes"].items():
        r["trials_per_h"] = round(3600 * trials / r["wall_s"], 1)
        if "ray_init_s" in r:
            r["trials_per_h_steady"] = round(3600 * trials / (r["wall_s"] - r["ray_init_s"]), 1)
        if mode != "plain" and (out / "plain").exists():
            r["same_scores_as_plain"] = scores(out / mode) == scores(out / "plain")
    rate = {m: r["trials_per_h"] for m, r in results["modes"].items()}
    ratios = {f"{a}/{b}": round(rate[a] / rate[b], 3)
              for a, b in (("ray1", "plain"), ("ray2", "plain"), ("ray2", "ray1"))
              if a in rate and b in rate}
    results["ratios"] = ratios
    if "ray1" in rate and "plain" in rate:
        r1 = results["modes"]["ray1"]
        results["ray_overhead_per_trial_s"] = round(
            (r1["wall_s"] - r1["ray_init_s"] - results["modes"]["plain"]["wall_s"]) / trials, 2)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path)
    parser.add_argument("--trials", type=int, default=2, help="the spec's first N trials")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - set(MODES):
        parser.error(f"--modes: choose from {', '.join(MODES)}")

    full = load_spec(args.spec)
    spec = Spec(full.trials[: args.trials], full.imports, full.name)
    path = args.out / "bench_sweep.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    first = spec.trials[0].config
    if results.get("trial_names", [t.name for t in spec.trials]) != [t.name for t in spec.trials]:
        raise SystemExit(f"{path} holds other trials; use another --out")
    results.update({
        "spec": str(args.spec), "trials": len(spec.trials),
        "trial_names": [t.name for t in spec.trials], "steps": first.train.steps,
        "batch_size": first.train.batch_size, "metrics": first.train.metrics,
        "cpu_count": os.cpu_count(), "ray": __import__("ray").__version__,
    })
    results.setdefault("modes", {})
    for mode in modes:
        folder = args.out / mode
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        run = plain(spec, folder) if mode == "plain" else on_ray(spec, folder, int(mode[-1]))
        run["wall_s"] = round(run["wall_s"], 2)
        results["modes"][mode] = run
        summarise(results, args.out, len(spec.trials))
        path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
