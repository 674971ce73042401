"""The sweep spec: a YAML file of models × hyper-parameters × datasets × step budgets × seeds,
expanded into named trials, each with its full run config.

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
"""

from __future__ import annotations

import importlib
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from untwine.config import RunConfig, make_run_config
from untwine.errors import UntwineError

SPEC_KEYS = ("models", "data", "steps", "seeds", "set", "grid", "random", "import", "name")
DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")


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
        raise UntwineError(
            f"{path}: no such sweep spec; give a YAML spec file (e.g. examples/sweep_tiny.yaml)"
        )
    try:
        raw = yaml.safe_load(path.read_text())
    except UnicodeDecodeError:
        raise UntwineError(f"{path}: not a text file; give a YAML sweep spec") from None
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
        import_module(module)
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
    default = flat_config(make_run_config(model).to_dict())
    mine = flat_config(config.to_dict())
    checked = tuple(k for k in mine if mine[k] != default.get(k) or k in
                    ("model", "data.name", "train.steps", "train.seed"))
    return Trial(name, config.model, settings, config, checked)


def flat_config(config: dict[str, Any]) -> dict[str, Any]:
    """A run config as dotted keys (``train.lr``), the form trials are compared in."""
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


def import_module(module: str) -> None:
    """Import a spec's ``import:`` module (it registers models / datasets); one-line error."""
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
