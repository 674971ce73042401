"""The one run call: train → evaluate → draw, with the model and dataset held in memory.

``run`` is what ``untwine train``, the benchmarks and the sweep's trials call. ``load_run`` /
``load_model`` rebuild a trained model from its run folder for ``untwine evaluate`` and
``untwine traverse``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from untwine import runs
from untwine.config import RunConfig
from untwine.device import resolve_device
from untwine.errors import UntwineError
from untwine.metrics.registry import DEFAULT_PRESET
from untwine.models.base import Model, build_model, representer
from untwine.train import load_run_dataset, train


@dataclass
class RunResult:
    """A finished (or interrupted) run: where it ended, the model and dataset in memory, its
    metrics (empty when skipped or interrupted) and the pictures drawn."""

    run_dir: Path
    step: int
    interrupted: bool = False
    signal: int | None = None
    model: Model | None = None
    dataset: Any = None
    metrics: dict[str, Any] = field(default_factory=dict)
    pictures: list[Path] = field(default_factory=list)


def run(
    config: RunConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    force: bool = False,
    quiet: bool = False,
    dataset: Any = None,
    seed: int = 0,
) -> RunResult:
    """Train ``config`` into ``run_dir``, then score it with ``config.train.metrics`` (skipped
    for "none" or a model without codes) into metrics.json, then draw its pictures.

    The dataset is loaded once and the model built once; an interrupted training returns at
    once with its checkpoint saved (resume it with ``resume=True``). ``seed`` seeds the
    metrics' sampling and the pictures' images.
    """
    trained = train(config, run_dir, resume=resume, force=force, quiet=quiet, dataset=dataset)
    result = RunResult(
        trained.run_dir, trained.step, trained.interrupted, trained.signal,
        trained.model, trained.dataset,
    )
    if trained.interrupted:
        return result
    preset = config.train.metrics
    if preset != "none" and result.model.has_codes:
        result.metrics = evaluate_model(result.model, result.dataset, preset, seed)
        runs.write_metrics(result.run_dir, result.metrics)
    result.pictures = draw_model(result.model, result.dataset, result.run_dir, seed)
    return result


def evaluate_model(
    model: Model, dataset: Any, preset: str | list[str] = DEFAULT_PRESET, seed: int = 0
) -> dict[str, Any]:
    """The metric suite of ``preset`` on the model's codes, plus the model's own scores
    (``Model.extra_metrics``) under ``metrics["model"]``; writes nothing."""
    from untwine.metrics import evaluate
    from untwine.metrics.evaluate import jsonable

    result = evaluate(dataset, representer(model), preset=preset, seed=seed)
    extra = model.extra_metrics(dataset, seed)
    if extra:
        result["metrics"]["model"] = jsonable(extra)
    return result


def draw_model(model: Model, dataset: Any, run_dir: str | Path, seed: int = 0) -> list[Path]:
    """traversal.png, reconstructions.png and mi_heatmap.png (for models with codes), then the
    model's own pictures (``Model.draw``), in ``run_dir``."""
    from untwine.viz.heatmap import mi_heatmap_for
    from untwine.viz.traversal import reconstruction_grid, traversal_grid

    run_dir = Path(run_dir)
    paths = []
    if model.has_codes:
        paths = [
            traversal_grid(model, dataset, run_dir / runs.PICTURES[0], seed=seed),
            reconstruction_grid(model, dataset, run_dir / runs.PICTURES[1], seed=seed),
            mi_heatmap_for(representer(model), dataset, run_dir / runs.PICTURES[2], seed=seed),
        ]
    return paths + model.draw(dataset, run_dir, seed)


def load_model(
    run_dir: str | Path, device: str | torch.device | None = None, dataset: Any = None
) -> Model:
    """The trained model of a run folder, in eval mode, with its config as ``model.config``.

    ``device`` defaults to the run's own (``auto``: CUDA when present); ``dataset`` saves loading
    the run's dataset again when the caller has it.
    """
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    config = runs.read_config(run_dir)
    if not (run_dir / runs.WEIGHTS).exists():
        hint = " (training unfinished: resume it with `untwine train --resume`)"
        raise UntwineError(
            f"{run_dir} has no {runs.WEIGHTS}{hint if (run_dir / runs.CHECKPOINT).exists() else ''}"
        )
    shape = (dataset if dataset is not None else load_run_dataset(config)).image_shape
    model = build_model(config.model, config.model_config, shape)
    model.load_state_dict(load_file(run_dir / runs.WEIGHTS))
    return model.to(resolve_device(config.train.device) if device is None else device).eval()


def load_run(run_dir: str | Path) -> tuple[Model, Any]:
    """A run's trained model on its own device and its dataset, each loaded once."""
    dataset = load_run_dataset(runs.read_config(run_dir))
    return load_model(run_dir, dataset=dataset), dataset


def evaluate_run(run_dir: str | Path, preset: str = DEFAULT_PRESET, seed: int = 0) -> dict:
    """Score a run folder's model with ``preset`` and write its metrics.json."""
    model, dataset = load_run(run_dir)
    if not model.has_codes:
        raise UntwineError(f"{run_dir} holds a {type(model).__name__}, which has no codes to score")
    metrics = evaluate_model(model, dataset, preset, seed)
    runs.write_metrics(run_dir, metrics)
    return metrics
