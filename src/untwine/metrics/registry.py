"""One table of metrics: how each is called, whether it needs a dataset or arrays, and its study
and fast parameters. Presets are defined here once and read by ``evaluate``, ``score_arrays``,
the run config and the CLI.

``fast`` is the default everywhere (library, ``untwine train``, ``evaluate`` and ``score``): it is
what one runs while iterating (about 30 s on dSprites here). ``study`` is disentanglement_lib's
exact protocol, for numbers that compare with published work; every result records its preset.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from untwine.errors import UntwineError
from untwine.metrics.beta_vae import beta_vae_score
from untwine.metrics.dci import dci
from untwine.metrics.factor_vae import factor_vae_score
from untwine.metrics.irs import irs
from untwine.metrics.mig import mig
from untwine.metrics.modularity import modularity_explicitness
from untwine.metrics.sap import sap
from untwine.metrics.unsupervised import unsupervised

ArrayScore = Callable[..., dict]
"""score(codes, factors, codes_test, factors_test, params, n_jobs) -> result."""
DatasetScore = Callable[..., dict]
"""score(dataset, represent_or_cache, seed, **params) -> result."""


@dataclass(frozen=True)
class MetricSpec:
    """A metric: ``level`` "array" (scores sampled codes) or "dataset" (samples its own batches
    from a dataset and an encoder); ``study`` its disentanglement_lib defaults; ``fast`` its
    parameters in the fast preset (None: not in it); ``in_study`` whether the study preset runs
    it. ``num_train`` / ``num_test`` of array metrics are the sampling protocol's sizes."""

    name: str
    level: str
    score: ArrayScore | DatasetScore
    study: dict[str, Any]
    fast: dict[str, Any] | None
    in_study: bool = True


_FAST_SAMPLES = {"num_train": 2000, "num_test": 1000}


def _fast(study: dict[str, Any]) -> dict[str, Any]:
    return {**study, **{k: v for k, v in _FAST_SAMPLES.items() if k in study}}


def _dci(backend: str) -> ArrayScore:
    return lambda c, f, ct, ft, p, n_jobs: dci(c, f, ct, ft, backend=backend, n_jobs=n_jobs)


_SPLIT = {"num_train": 10000, "num_test": 5000}
_SPECS = (
    MetricSpec(
        "beta_vae",
        "dataset",
        beta_vae_score,
        {"batch_size": 64, "num_train": 10000, "num_eval": 5000},
        {"batch_size": 64, "num_train": 1000, "num_eval": 500},
    ),
    MetricSpec(
        "factor_vae",
        "dataset",
        factor_vae_score,
        {"batch_size": 64, "num_train": 10000, "num_eval": 5000,
         "num_variance_estimate": 10000, "prune_threshold": 0.05},
        {"batch_size": 64, "num_train": 1000, "num_eval": 500,
         "num_variance_estimate": 5000, "prune_threshold": 0.05},
    ),
    MetricSpec(
        "mig",
        "array",
        lambda c, f, ct, ft, p, n_jobs: mig(c, f, num_bins=p["num_bins"]),
        {"num_train": 10000, "num_bins": 20},
        _fast({"num_train": 10000, "num_bins": 20}),
    ),
    MetricSpec("dci", "array", _dci("exact"), dict(_SPLIT), None),
    MetricSpec("dci_fast", "array", _dci("fast"), dict(_SPLIT), _fast(_SPLIT), in_study=False),
    MetricSpec(
        "sap",
        "array",
        lambda c, f, ct, ft, p, n_jobs: sap(
            c, f, ct, ft, continuous_factors=p["continuous_factors"]
        ),
        {**_SPLIT, "continuous_factors": False},
        _fast({**_SPLIT, "continuous_factors": False}),
    ),
    MetricSpec(
        "modularity_explicitness",
        "array",
        lambda c, f, ct, ft, p, n_jobs: modularity_explicitness(
            c, f, ct, ft, num_bins=p["num_bins"]
        ),
        {**_SPLIT, "num_bins": 20},
        _fast({**_SPLIT, "num_bins": 20}),
    ),
    MetricSpec(
        "irs",
        "array",
        lambda c, f, ct, ft, p, n_jobs: irs(
            c, f, diff_quantile=p["diff_quantile"], num_bins=p["num_bins"]
        ),
        {"num_train": 10000, "diff_quantile": 0.99, "num_bins": 20},
        _fast({"num_train": 10000, "diff_quantile": 0.99, "num_bins": 20}),
    ),
    MetricSpec(
        "unsupervised",
        "array",
        lambda c, f, ct, ft, p, n_jobs: unsupervised(c, num_bins=p["num_bins"]),
        {"num_train": 10000, "num_bins": 20},
        _fast({"num_train": 10000, "num_bins": 20}),
    ),
)

METRICS: dict[str, MetricSpec] = {spec.name: spec for spec in _SPECS}
"""Every metric by name, in the order presets run them."""

STUDY: dict[str, dict[str, Any]] = {name: spec.study for name, spec in METRICS.items()}
"""disentanglement_lib's study defaults (its metric gin configs), per metric name."""

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "study": {name: spec.study for name, spec in METRICS.items() if spec.in_study},
    "fast": {name: spec.fast for name, spec in METRICS.items() if spec.fast is not None},
}
"""``study``: the reference defaults, exact DCI. ``fast``: smaller samples, DCI's fast backend
(reported as ``dci_fast``)."""

DEFAULT_PRESET = "fast"
ARRAY_LEVEL = tuple(name for name, spec in METRICS.items() if spec.level == "array")


def check_preset(preset: str, allow_none: bool = False) -> str:
    """``preset`` if it names a preset (or "none" where evaluation may be skipped), else a
    one-line error listing the choices."""
    choices = (*PRESETS, "none") if allow_none else tuple(PRESETS)
    if preset not in choices:
        raise UntwineError(f"unknown metric preset {preset!r}; choose {', '.join(choices)}")
    return preset


def resolve(
    preset: str | Sequence[str] = DEFAULT_PRESET,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Metric name -> parameters, for a preset name or a list of metric names (study values).

    ``overrides`` (metric name -> parameters) replaces single parameters of a metric.
    """
    if isinstance(preset, str):
        plan = {name: dict(params) for name, params in PRESETS[check_preset(preset)].items()}
    else:
        unknown = [name for name in preset if name not in METRICS]
        if unknown:
            raise UntwineError(f"unknown metrics {unknown}; known: {', '.join(METRICS)}")
        plan = {name: dict(STUDY[name]) for name in preset}
    for name, params in (overrides or {}).items():
        bad = set(params) - set(plan.get(name, {}))
        if name not in plan or bad:
            raise UntwineError(f"cannot override {name} {sorted(bad)}: not in this preset's plan")
        plan[name].update(params)
    return plan
