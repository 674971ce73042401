"""Studies: a YAML spec of models × hyper-parameters × datasets × step budgets × seeds, expanded
into trials and run as independent Ray tasks, each writing an ordinary run folder.

The spec (every key optional but ``models``)::

    models:                          # a list of names, or name -> its own axes / fixed values
      betavae: {beta: [1, 2, 4]}     #   a list is a grid axis, a scalar a fixed --set value
      annealedvae: {c_max: [5, 25], iteration_threshold: 2000}
    data: [dsprites]                 # dataset names (a grid axis); default dsprites
    steps: [1000]                    # step budgets (a grid axis); default the study's 300,000
    seeds: 3                         # a count (0, 1, 2) or a list of seeds
    set: {train.batch_size: 64}      # fixed --set values for every trial
    grid: {train.lr: [1e-4, 3e-4]}   # grid axes for every model
    random:                          # random axes: `samples` draws per grid point, from `seed`
      samples: 4
      seed: 0
      axes:
        train.lr: {loguniform: [1e-5, 1e-3]}   # also uniform: [a, b], randint: [a, b] (both
        latents: {choice: [6, 10]}             # ends included), choice: [...]
    import: [mypackage.models]       # modules that register extra models / datasets

Trials are the cross product: model × data × steps × (model axes × grid axes) × random draws ×
seeds; random draws are shared across seeds (so seeds replicate one configuration) and come from
their own ``RandomState``, so a trial's name never changes between runs of the same spec. A
trial's folder is ``OUT/<model>-<data>-<axis values>-steps<N>-s<seed>``.

Each trial is one call of ``untwine.run`` (train → evaluate → draw) in a Ray task holding
``cpus_per_trial`` CPUs (torch uses that many threads) and ``gpus_per_trial`` GPUs. A trial whose
folder already holds the finished run is skipped; one with a checkpoint is resumed from it; one
that fails is retried once (resuming if it left a checkpoint), then reported with its one-line
error, and the sweep goes on. ``OUT/sweep.json`` records every trial's status after each one.
"""

from __future__ import annotations

import importlib
import itertools
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from untwine.config import RunConfig, make_run_config
from untwine.errors import UntwineError

MANIFEST = "sweep.json"
SPEC_KEYS = ("models", "data", "steps", "seeds", "set", "grid", "random", "import", "name")
DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")
INSTALL_HINT = 'untwine sweep needs Ray: pip install -e ".[sweep]" (or pip install "ray>=2.40")'


# -- the spec ---------------------------------------------------------------------------------


@dataclass
class Trial:
    """One run of a study: its folder name, the settings that name it, and its full config."""

    name: str
    model: str
    settings: dict[str, Any]  # the swept values: data, steps, seed and every axis (key -> value)
    config: RunConfig
    checked: tuple[str, ...] = ()  # flat config keys a finished folder must agree on


@dataclass
class Spec:
    """A parsed sweep spec: its trials and the modules workers import first."""

    trials: list[Trial]
    imports: list[str] = field(default_factory=list)
    name: str = "sweep"


def load_spec(path: str | Path) -> Spec:
    """Read a YAML spec file and expand it into trials (see the module docstring)."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise UntwineError(f"{path}: no such sweep spec")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(err, "problem", err)
        raise UntwineError(f"{path}: not valid YAML{line}: {problem}") from None
    return parse_spec(raw, source=str(path))


def parse_spec(raw: Any, source: str = "spec") -> Spec:
    """Expand a spec mapping (as loaded from YAML) into trials; every error names the key."""
    if not isinstance(raw, dict):
        raise UntwineError(f"{source}: a sweep spec is a mapping with at least `models:`")
    unknown = sorted(set(raw) - set(SPEC_KEYS))
    if unknown:
        raise UntwineError(
            f"{source}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(SPEC_KEYS)}"
        )
    imports = _as_list(raw["import"], "import", str) if "import" in raw else []
    for module in imports:
        _import(module)
    models = _models(raw.get("models"), source)
    datas = _as_list(raw.get("data", "dsprites"), "data", str)
    steps = _as_list(raw.get("steps", 300_000), "steps", int)
    seeds = _seeds(raw.get("seeds", [0]))
    fixed = _mapping(raw.get("set", {}), "set")
    shared_axes, shared_fixed = _split_axes(_mapping(raw.get("grid", {}), "grid"), "grid")
    draws = _random_draws(raw.get("random"))

    trials: list[Trial] = []
    for model, own in models.items():
        own_axes, own_fixed = _split_axes(own, f"models.{model}")
        axes = {**shared_axes, **own_axes}
        for data, budget in itertools.product(datas, steps):
            for values in itertools.product(*axes.values()):
                for draw in draws:
                    point = {**dict(zip(axes, values, strict=True)), **draw}
                    for seed in seeds:
                        trials.append(_trial(model, data, budget, seed, point,
                                             {**fixed, **shared_fixed, **own_fixed}, source))
    names = [t.name for t in trials]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UntwineError(f"{source}: two trials would share the folder {twice[0]}; "
                           "give the axes values that differ when formatted")
    return Spec(trials, imports, str(raw.get("name", "sweep")))


def _trial(model: str, data: str, steps: int, seed: int, point: dict[str, Any],
           fixed: dict[str, Any], source: str) -> Trial:
    base = {"data.name": data, "train.steps": steps, "train.seed": seed}
    sets = [f"{k}={_text(v)}" for k, v in {**fixed, **point}.items()]
    try:
        config = make_run_config(model, base, sets)
    except UntwineError as err:
        raise UntwineError(f"{source}: model {model}: {err}") from None
    _check_dataset(data, source)
    name = "-".join([config.model, data, *(f"{_tail(k)}{_text(v)}" for k, v in point.items()),
                     f"steps{steps}", f"s{seed}"])
    name = re.sub(r"[^A-Za-z0-9.+_=-]", "_", name)
    settings = {"data": data, "steps": steps, **{_tail(k): v for k, v in point.items()},
                "seed": seed}
    default = _flat(make_run_config(model).to_dict())
    mine = _flat(config.to_dict())
    checked = tuple(k for k in mine if mine[k] != default.get(k) or k in
                    ("model", "data.name", "train.steps", "train.seed"))
    return Trial(name, config.model, settings, config, checked)


def _flat(config: dict[str, Any]) -> dict[str, Any]:
    from untwine.aggregate import flatten

    return flatten(config)


def _check_dataset(name: str, source: str) -> None:
    from untwine.data.registry import DATASETS

    if name.lower() not in DATASETS:
        raise UntwineError(f"{source}: unknown dataset {name!r}; known: {', '.join(DATASETS)}")


def _tail(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ",".join(map(_text, value))
    return str(value)


def _import(module: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as err:
        raise UntwineError(f"import: cannot import {module!r}: {err}") from None


def _models(value: Any, source: str) -> dict[str, dict[str, Any]]:
    if value is None:
        raise UntwineError(f"{source}: name the models to sweep, e.g. `models: [betavae]`")
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        value = {name: {} for name in value}
    if not isinstance(value, dict) or not value:
        raise UntwineError(f"{source}: models must be a list of names or a mapping name -> axes")
    return {str(k): _mapping(v or {}, f"models.{k}") for k, v in value.items()}


def _mapping(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UntwineError(f"{key} must be a mapping key: value; got {value!r}")
    return {str(k): v for k, v in value.items()}


def _split_axes(values: dict[str, Any], key: str) -> tuple[dict[str, list], dict[str, Any]]:
    """Lists are grid axes, scalars fixed values."""
    axes = {k: v for k, v in values.items() if isinstance(v, list)}
    for k, v in axes.items():
        if not v:
            raise UntwineError(f"{key}.{k}: an axis needs at least one value")
    return axes, {k: v for k, v in values.items() if not isinstance(v, list)}


def _as_list(value: Any, key: str, kind: type) -> list:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise UntwineError(f"{key}: give at least one value")
    out = []
    for item in items:
        if kind is int and (isinstance(item, bool) or not isinstance(item, int)):
            if not (isinstance(item, float) and item.is_integer()):
                raise UntwineError(f"{key}: expected integers; got {item!r}")
        out.append(kind(item))
    return out


def _number(value: Any) -> float | None:
    """A YAML number, or a string such as ``1e-4`` (YAML 1.1 reads it as text), else None."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _seeds(value: Any) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise UntwineError(f"seeds: a count must be at least 1; got {value}")
        return list(range(value))
    seeds = _as_list(value, "seeds", int)
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise UntwineError(f"seeds: expected distinct non-negative integers; got {seeds}")
    return seeds


def _random_draws(value: Any) -> list[dict[str, Any]]:
    """``samples`` draws of the random axes ([{}] without any), from ``RandomState(seed)``."""
    if value is None:
        return [{}]
    block = _mapping(value, "random")
    unknown = sorted(set(block) - {"samples", "seed", "axes"})
    if unknown:
        raise UntwineError(f"random: unknown key(s) {', '.join(unknown)}; use samples, seed, axes")
    samples = _as_list(block.get("samples", 1), "random.samples", int)[0]
    if samples < 1:
        raise UntwineError(f"random.samples must be at least 1; got {samples}")
    axes = _mapping(block.get("axes", {}), "random.axes")
    if not axes:
        raise UntwineError("random.axes: give at least one axis, e.g. train.lr: {loguniform: "
                           "[1e-5, 1e-3]}")
    rng = np.random.RandomState(_as_list(block.get("seed", 0), "random.seed", int)[0])
    parsed = {k: _distribution(k, v) for k, v in axes.items()}
    return [{k: draw(rng) for k, draw in parsed.items()} for _ in range(samples)]


def _distribution(key: str, value: Any) -> Any:
    if not (isinstance(value, dict) and len(value) == 1 and next(iter(value)) in DISTRIBUTIONS):
        raise UntwineError(f"random.axes.{key}: expected one of {', '.join(DISTRIBUTIONS)}: "
                           f"[...], e.g. {{loguniform: [1e-5, 1e-3]}}; got {value!r}")
    kind, args = next(iter(value.items()))
    if not isinstance(args, list) or not args:
        raise UntwineError(f"random.axes.{key}.{kind}: expected a list of values")
    if kind == "choice":
        return lambda rng: args[rng.randint(len(args))]
    bounds = [_number(a) for a in args]
    if len(bounds) != 2 or None in bounds or bounds[0] > bounds[1]:
        raise UntwineError(f"random.axes.{key}.{kind}: expected [low, high] with low ≤ high; "
                           f"got {args!r}")
    low, high = bounds
    if kind == "uniform":
        return lambda rng: float(rng.uniform(low, high))
    if kind == "randint":
        return lambda rng: int(rng.randint(int(low), int(high) + 1))
    if low <= 0:
        raise UntwineError(f"random.axes.{key}.loguniform: bounds must be positive")
    return lambda rng: float(math.exp(rng.uniform(math.log(low), math.log(high))))


# -- trial state on disk ----------------------------------------------------------------------


def trial_state(trial: Trial, run_dir: Path) -> tuple[str, str]:
    """("done" | "resume" | "new" | "conflict", detail) for a trial's folder."""
    from untwine import runs

    if not (run_dir / runs.CONFIG).exists():
        return "new", ""
    try:
        stored = _flat(json.loads((run_dir / runs.CONFIG).read_text()))
    except (OSError, json.JSONDecodeError):
        return "new", ""
    mine = _flat(trial.config.to_dict())
    differ = [k for k in trial.checked if stored.get(k) != mine[k]]
    if differ:
        key = differ[0]
        return "conflict", (f"{run_dir} holds a run with {key}={stored.get(key)!r}, not "
                            f"{mine[key]!r}; move it away or sweep into another --out")
    evaluated = trial.config.train.metrics == "none" or (run_dir / runs.METRICS).exists()
    if (run_dir / runs.WEIGHTS).exists() and evaluated:
        return "done", ""
    if (run_dir / runs.CHECKPOINT).exists():
        return "resume", ""
    return "new", ""


def one_line(err: BaseException) -> str:
    """A failure as one line: an UntwineError's message, else ``Type: first line``."""
    cause = getattr(err, "cause", None)  # ray.exceptions.RayTaskError wraps the real exception
    if isinstance(cause, BaseException):
        err = cause
    text = str(err).strip().splitlines()
    first = text[0] if text else ""
    return first if isinstance(err, UntwineError) else f"{type(err).__name__}: {first}".strip()


def run_trial(config: dict[str, Any], run_dir: str, resume: bool, threads: int,
              imports: list[str]) -> dict[str, Any]:
    """Run one trial in this process: ``untwine.run`` with ``threads`` torch threads.

    Returns ``{"ok", "error", "seconds", "step"}``; never raises for a failing trial (Ray
    would wrap the traceback), so the driver gets the one-line error.
    """
    import torch

    import untwine

    start = time.perf_counter()
    try:
        for module in imports:
            _import(module)
        torch.set_num_threads(max(1, int(threads)))
        result = untwine.run(RunConfig.from_dict(config), Path(run_dir), resume=resume,
                             force=not resume, quiet=True)
    except Exception as err:  # noqa: BLE001 - any failure becomes the trial's one-line error
        return {"ok": False, "error": one_line(err), "seconds": time.perf_counter() - start}
    seconds = time.perf_counter() - start
    if result.interrupted:
        return {"ok": False, "error": f"interrupted at step {result.step} (signal "
                f"{result.signal}); run the sweep again to resume", "seconds": seconds}
    return {"ok": True, "error": "", "seconds": seconds, "step": result.step}


# -- running on Ray ---------------------------------------------------------------------------


@dataclass
class Outcome:
    """What happened to one trial in this sweep run."""

    trial: Trial
    status: str  # "done", "skipped", "failed"
    error: str = ""
    seconds: float = 0.0
    attempts: int = 0


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
    _write_manifest(out, spec, outcomes, running)

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
                    _write_manifest(out, spec, outcomes, running)
                progress.update(outcomes.values(), len(running))
    except KeyboardInterrupt:
        for ref in running:
            ray.cancel(ref)
        _write_manifest(out, spec, outcomes, running)
        raise UntwineError(
            f"sweep interrupted with {len(running)} trial(s) running; run the same command "
            "again: finished trials are skipped, stopped ones resume from their last checkpoint"
        ) from None
    return [outcomes[t.name] for t in spec.trials]


def _write_manifest(out: Path, spec: Spec, outcomes: dict[str, Outcome],
                    running: dict[Any, tuple[Trial, int]]) -> None:
    from untwine.runs import atomic_write_text

    busy = {t.name for t, _ in running.values()}
    trials = []
    for trial in spec.trials:
        outcome = outcomes.get(trial.name)
        status = outcome.status if outcome else ("running" if trial.name in busy else "queued")
        trials.append({
            "name": trial.name, "model": trial.model, "settings": trial.settings,
            "status": status, "error": outcome.error if outcome else "",
            "seconds": round(outcome.seconds, 2) if outcome else None,
            "attempts": outcome.attempts if outcome else 0,
        })
    body = {"name": spec.name, "trials": trials}
    atomic_write_text(out / MANIFEST, json.dumps(body, indent=2, default=str) + "\n")


class SweepProgress:
    """A rich progress line: done / running / failed / skipped and an ETA from the mean time
    of the trials finished in this run (remaining × mean ÷ trials in flight)."""

    def __init__(self, total: int, to_run: int, concurrent: int, quiet: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.to_run, self.concurrent, self.times = to_run, concurrent, []
        self.bar = None if quiet else Progress(
            TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), transient=False,
        )
        self.task = None if self.bar is None else self.bar.add_task(
            "sweep", total=total, status="")

    def __enter__(self) -> SweepProgress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()

    def finished(self, seconds: float) -> None:
        self.times.append(seconds)

    def eta(self, settled: int) -> float | None:
        """Seconds left, or None before the first trial of this run has finished."""
        if not self.times:
            return None
        left = self.to_run - settled
        return left * (sum(self.times) / len(self.times)) / self.concurrent

    def update(self, outcomes: Any, running: int) -> None:
        counts = {"done": 0, "failed": 0, "skipped": 0}
        for outcome in outcomes:
            counts[outcome.status] += 1
        if self.bar is None:
            return
        eta = self.eta(counts["done"] + counts["failed"])
        text = (f"done {counts['done']} · running {running} · failed {counts['failed']} · "
                f"skipped {counts['skipped']} · ETA {_duration(eta)}")
        self.bar.update(self.task, completed=sum(counts.values()), status=text)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def summary_rows(outcomes: list[Outcome], out: Path, limit: int = 40) -> list[list[str]]:
    """Rows for the end-of-sweep table: failures first, then the rest, at most ``limit``."""
    from untwine.aggregate import HEADLINE, read_run

    ordered = [o for o in outcomes if o.status == "failed"] + [
        o for o in outcomes if o.status != "failed"]
    rows = []
    for o in ordered[:limit]:
        scores = read_run(out / o.trial.name).scores if o.status != "failed" else {}
        mig = scores.get("mig.discrete_mig")
        headline = next((k for k in HEADLINE if k.startswith("dci") and k in scores), None)
        rows.append([
            o.trial.name, o.status, f"{o.seconds:.0f}" if o.seconds else "",
            "" if mig is None else f"{mig:.3f}",
            "" if headline is None else f"{scores[headline]:.3f}", o.error,
        ])
    return rows
