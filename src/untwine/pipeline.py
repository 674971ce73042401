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
from untwine.config import RunConfig, check_seed
from untwine.device import device_available, resolve_device
from untwine.errors import Interrupted, UntwineError
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
    preset, failed = config.train.metrics, None
    saved = f"training finished: {result.run_dir} is saved at step {result.step}"
    if preset != "none" and result.model.has_codes:
        try:
            result.metrics = evaluate_model(result.model, result.dataset, preset, seed)
            result.metrics["step"] = result.step
            runs.write_metrics(result.run_dir, result.metrics)
        except KeyboardInterrupt as err:
            raise Interrupted(
                f"{saved}; interrupted while scoring it, so metrics.json and the pictures are "
                f"not written: score it with `untwine evaluate {result.run_dir}` and draw its "
                f"traversal with `untwine traverse {result.run_dir}`"
            ) from err
        except Exception as err:  # the run is trained and saved: still draw, then report
            failed = err
    try:
        result.pictures = draw_model(result.model, result.dataset, result.run_dir, seed)
    except KeyboardInterrupt as err:
        rescore = f" and score it with `untwine evaluate {result.run_dir}`" if failed else ""
        raise Interrupted(
            f"{saved}{', metrics.json written' if result.metrics else ''}; interrupted while "
            f"drawing its pictures: draw its traversal with `untwine traverse {result.run_dir}`"
            f"{rescore}"
        ) from err
    except Exception as err:
        raise UntwineError(
            f"{result.run_dir} is trained and saved (step {result.step}), but drawing its "
            f"pictures failed: {runs._short(err)}; draw them again with `untwine traverse "
            f"{result.run_dir}`" + (f" (evaluation failed too: {runs._short(failed)})"
                                    if failed else "")
        ) from err
    if failed is not None:
        raise UntwineError(
            f"{result.run_dir} is trained and saved (step {result.step}) and its pictures are "
            f"drawn, but evaluation failed: {runs._short(failed)}; score it again with "
            f"`untwine evaluate {result.run_dir}`"
        ) from failed
    return result


def evaluate_model(
    model: Model, dataset: Any, preset: str | list[str] = DEFAULT_PRESET, seed: int = 0
) -> dict[str, Any]:
    """The metric suite of ``preset`` on the model's codes, plus the model's own scores
    (``Model.extra_metrics``) under ``metrics["model"]``; writes nothing."""
    from untwine.metrics import evaluate
    from untwine.metrics.evaluate import jsonable

    check_seed(seed)
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

    check_seed(seed)
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
    run_dir = Path(run_dir)
    config = runs.read_config(run_dir)
    if not (run_dir / runs.WEIGHTS).exists():
        hint = f" (training unfinished: resume it with `untwine train --resume {run_dir}`)"
        raise UntwineError(
            f"{run_dir} has no {runs.WEIGHTS}{hint if (run_dir / runs.CHECKPOINT).exists() else ''}"
        )
    check_weights_belong(run_dir, config)
    shape = (dataset if dataset is not None else load_run_dataset(config)).image_shape
    model = build_model(config.model, config.model_config, shape)
    try:
        model.load_state_dict(runs.load_weights(run_dir))
    except RuntimeError as err:  # missing / unexpected / resized tensors
        raise UntwineError(
            f"{run_dir / runs.WEIGHTS} does not fit the {config.model} on {config.data.name} "
            f"{tuple(shape)} of its config.json ({_mismatch(err)}): the folder mixes files of "
            "different runs; put the run's own files back, or train again into a new folder"
        ) from err
    return model.to(load_device(config.train.device) if device is None else device).eval()


def load_device(name: str) -> torch.device:
    """The device to load a trained run on: its own when this machine has it, else the best
    one here (a run trained on CUDA is scored on the CPU of a laptop)."""
    if name != "auto" and device_available(torch.device(name)):
        return torch.device(name)
    return resolve_device("auto")


def check_weights_belong(run_dir: Path, config: RunConfig) -> None:
    """Refuse model.safetensors written for another model or at an earlier step than the
    checkpoint (an interrupted ``--resume --steps N`` leaves the old weights behind)."""
    info = runs.weights_info(run_dir)
    if info.get("model") not in (None, config.model) and info["model"] in _model_names():
        raise UntwineError(
            f"{run_dir / runs.WEIGHTS} holds weights of model {info['model']} but config.json "
            f"says {config.model}: the folder mixes files of different runs; put the run's own "
            "files back, or train again into a new folder"
        )
    step, done = info.get("step"), runs.checkpoint_step(run_dir)
    if step is not None and done is not None and done > int(step):
        raise UntwineError(
            f"{run_dir / runs.WEIGHTS} is from step {step}, but training went on to step "
            f"{done} and stopped before the end; finish it with `untwine train --resume "
            f"{run_dir}` (the weights of step {step} are not loaded, they are stale)"
        )


def _model_names() -> set[str]:
    from untwine.models import MODELS

    return set(MODELS)


def _mismatch(err: RuntimeError) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return runs._short(lines[1] if len(lines) > 1 else lines[0] if lines else err)


def load_run(run_dir: str | Path) -> tuple[Model, Any]:
    """A run's trained model on its own device and its dataset, each loaded once."""
    dataset = load_run_dataset(runs.read_config(run_dir))
    return load_model(run_dir, dataset=dataset), dataset


def evaluate_run(run_dir: str | Path, preset: str = DEFAULT_PRESET, seed: int = 0) -> dict:
    """Score a run folder's model with ``preset`` and write its metrics.json."""
    model, dataset = load_run(run_dir)
    if not model.has_codes:
        raise UntwineError(f"{run_dir} holds a {type(model).__name__}, which has no codes to score")
    try:
        metrics = evaluate_model(model, dataset, preset, seed)
    except KeyboardInterrupt as err:
        raise Interrupted(
            f"interrupted while scoring {run_dir}; its metrics.json is not (re)written, the run "
            f"is unchanged: score it again with `untwine evaluate {run_dir}`"
        ) from err
    step = runs.weights_info(run_dir).get("step")
    if step is not None:
        metrics["step"] = int(step)
    runs.write_metrics(run_dir, metrics)
    return metrics
