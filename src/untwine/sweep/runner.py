"""Running a spec's trials on Ray: start (or join) Ray, pack trials onto its resources, keep at
most ``concurrent`` in flight, retry a failure once, and stop cleanly on Ctrl-C.

Each trial is a Ray task holding ``cpus_per_trial`` CPUs (torch uses that many threads) and
``gpus_per_trial`` GPUs, running ``untwine.sweep.trial.run_trial``. A failed trial is retried
(resuming if it left a checkpoint), then reported with its one-line error; the sweep goes on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from untwine.errors import UntwineError
from untwine.sweep.progress import SweepProgress, write_manifest
from untwine.sweep.spec import Spec, Trial
from untwine.sweep.trial import Outcome, one_line, run_trial, trial_state

INSTALL_HINT = 'untwine sweep needs Ray: pip install -e ".[sweep]" (or pip install "ray>=2.40")'


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UntwineError(INSTALL_HINT) from None
    return ray


@dataclass
class Resources:
    """How trials are packed: in flight at once, CPUs (= torch threads) and GPUs per trial."""

    concurrent: int
    cpus: float
    gpus: float


def plan_resources(total_cpus: float, total_gpus: float, local: bool, max_concurrent: int | None,
                   cpus_per_trial: float | None, gpus_per_trial: float | None) -> Resources:
    """Default packing: on a local Ray one trial at a time with every core (one trial already
    keeps a small machine busy); on a cluster as many trials as the resources hold, one GPU each
    when there are GPUs, else one CPU each. Explicit values win."""
    if max_concurrent is not None and max_concurrent < 1:
        raise UntwineError(f"--max-concurrent must be at least 1; got {max_concurrent}")
    gpus = gpus_per_trial if gpus_per_trial is not None else (1.0 if total_gpus >= 1 else 0.0)
    if gpus > total_gpus:
        raise UntwineError(f"--gpus-per-trial {gpus:g} but the Ray cluster has {total_gpus:g} GPUs")
    if max_concurrent is None and local and gpus == 0:
        max_concurrent = 1
    if cpus_per_trial is None:
        if max_concurrent is not None:
            cpus_per_trial = max(1, int(total_cpus // max_concurrent))
        elif gpus > 0:
            cpus_per_trial = max(1, int(total_cpus // max(1, total_gpus // gpus)))
        else:
            cpus_per_trial = 1
    if cpus_per_trial > total_cpus:
        raise UntwineError(
            f"--cpus-per-trial {cpus_per_trial:g} but the Ray cluster has {total_cpus:g} CPUs")
    fits = int(total_cpus // cpus_per_trial)
    if gpus > 0:
        fits = min(fits, int(total_gpus // gpus))
    concurrent = min(max_concurrent, fits) if max_concurrent is not None else fits
    return Resources(max(1, concurrent), float(cpus_per_trial), float(gpus))


def run_sweep(
    spec: Spec,
    out: str | Path,
    *,
    address: str | None = None,
    max_concurrent: int | None = None,
    cpus_per_trial: float | None = None,
    gpus_per_trial: float | None = None,
    retries: int = 1,
    quiet: bool = False,
) -> list[Outcome]:
    """Run every trial of ``spec`` under ``out`` on Ray; returns each trial's outcome.

    Uses the Ray already initialised in this process if there is one, else starts a local Ray
    (``address=None``) or connects to ``address`` (a running cluster, e.g. ``ray://host:10001``
    or ``auto``), and shuts down what it started.
    """
    ray = _ray()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = not ray.is_initialized()
    if started:
        import logging

        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "logging_level": logging.ERROR}
        if address is None:
            kwargs["num_cpus"] = os.cpu_count() or 1
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, ValueError, RuntimeError) as err:
            raise UntwineError(f"cannot start or reach Ray at {address or 'local'}: "
                               f"{one_line(err)}") from None
    try:
        total = ray.cluster_resources()
        plan = plan_resources(total.get("CPU", 1.0), total.get("GPU", 0.0), address is None,
                              max_concurrent, cpus_per_trial, gpus_per_trial)
        return _drive(ray, spec, out, plan, retries, quiet)
    finally:
        if started:
            ray.shutdown()


def _drive(ray: Any, spec: Spec, out: Path, plan: Resources, retries: int,
           quiet: bool) -> list[Outcome]:
    """Submit trials (at most ``plan.concurrent`` in flight), retry, track progress."""
    remote = ray.remote(run_trial).options(num_cpus=plan.cpus, num_gpus=plan.gpus, max_retries=0)
    outcomes: dict[str, Outcome] = {}
    queue: list[tuple[Trial, bool]] = []
    for trial in spec.trials:
        state, detail = trial_state(trial, out / trial.name)
        if state == "done":
            outcomes[trial.name] = Outcome(trial, "skipped")
        elif state == "conflict":
            outcomes[trial.name] = Outcome(trial, "failed", detail)
        else:
            queue.append((trial, state == "resume"))
    progress = SweepProgress(len(spec.trials), len(queue), plan.concurrent, quiet)
    progress.update(outcomes.values(), 0)
    running: dict[Any, tuple[Trial, int]] = {}

    def record() -> None:
        write_manifest(out, spec, outcomes, {t.name for t, _ in running.values()})

    record()

    def submit(trial: Trial, resume: bool, attempt: int) -> None:
        ref = remote.remote(trial.config.to_dict(), str(out / trial.name), resume,
                            max(1, int(plan.cpus)), spec.imports)
        running[ref] = (trial, attempt)

    try:
        with progress:
            while queue or running:
                while queue and len(running) < plan.concurrent:
                    trial, resume = queue.pop(0)
                    submit(trial, resume, 1)
                progress.update(outcomes.values(), len(running))
                ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                for ref in ready:
                    trial, attempt = running.pop(ref)
                    try:
                        result = ray.get(ref)
                    except Exception as err:  # noqa: BLE001 - a crashed worker, lost node, …
                        result = {"ok": False, "error": one_line(err), "seconds": 0.0}
                    if result["ok"]:
                        outcomes[trial.name] = Outcome(trial, "done", "", result["seconds"],
                                                       attempt)
                        progress.finished(result["seconds"])
                    elif attempt <= retries:
                        state, _ = trial_state(trial, out / trial.name)
                        submit(trial, state == "resume", attempt + 1)
                    else:
                        outcomes[trial.name] = Outcome(trial, "failed", result["error"],
                                                       result["seconds"], attempt)
                    record()
                progress.update(outcomes.values(), len(running))
    except KeyboardInterrupt:
        for ref in running:
            ray.cancel(ref)
        record()
        raise UntwineError(
            f"sweep interrupted with {len(running)} trial(s) running; run the same command "
            "again: finished trials are skipped, stopped ones resume from their last checkpoint"
        ) from None
    return [outcomes[t.name] for t in spec.trials]
