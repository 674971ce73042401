"""The one training loop for every SGD-trained model: batch, forward, loss, backward, step, log,
checkpoint — in that order, nanoGPT-style. The model says what to train through its stages
(``Model.stages()``: loss, parameters, optimiser, batches per phase); nothing here knows which
model it trains.

Resuming is bit-exact on CPU: a checkpoint holds the stage and its step, the trainable weights,
the stage's optimisers, the torch, NumPy and Python RNG states and the batch sampler's RNG, so
100 steps + kill + resume 100 equals 200, also across and inside stages.
"""

from __future__ import annotations

import random
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from untwine import runs
from untwine.config import RunConfig, TrainConfig
from untwine.device import resolve_device
from untwine.errors import UntwineError
from untwine.models.base import Model, Stage, build_model, trainable_state
from untwine.trainlog import LossWindow, Progress


@dataclass
class TrainResult:
    """Where a run ended: its folder, the step reached, whether a signal stopped it early, and
    the model (in eval mode) and dataset, kept in memory for evaluation and pictures."""

    run_dir: Path
    step: int
    interrupted: bool = False
    signal: int | None = None
    model: Model | None = None
    dataset: Any = None


def train(
    config: RunConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    force: bool = False,
    quiet: bool = False,
    dataset: Any = None,
) -> TrainResult:
    """Train ``config``'s model into ``run_dir`` (fresh, or continuing its checkpoint).

    A fresh run refuses a folder holding another run unless ``force``. ``dataset`` saves
    loading it again when the caller already has it. Writes config.json at the start, log.csv
    every ``log_every`` steps, checkpoint/ every ``checkpoint_every`` steps, at the end of each
    stage and on SIGINT/SIGTERM, and model.safetensors at the end.
    """
    # -- configuration: device, data, model, its stages, and where a resume starts -------------
    tc, run_dir = config.train, Path(run_dir)
    device = resolve_device(tc.device, resume=run_dir if resume else None)
    dataset = dataset if dataset is not None else load_run_dataset(config)
    check_batch_size(tc, dataset)
    seed_everything(tc.seed)
    model = build_model(config.model, config.model_config, dataset.image_shape).to(device)
    model.prepare(dataset)
    model.train()
    stages = model.stages()
    plan = [stage.steps or tc.steps for stage in stages]
    data_rng = np.random.RandomState(tc.seed)
    state = runs.load_checkpoint(run_dir, required=runs.CHECKPOINT_KEYS) if resume else None
    at_stage, at_step = (0, 0) if state is None else position(state, plan, run_dir)
    if state is not None:
        restore_model_and_rngs(state, model, data_rng, run_dir)
        runs.truncate_log(run_dir, sum(plan[:at_stage]) + at_step)
        if at_stage == len(stages):  # trained to the end, but its weights were never written
            return finish(config, run_dir, model, dataset, sum(plan))
    else:
        runs.prepare_run_dir(run_dir, force=force)
    try:
        return loop(config, run_dir, model, dataset, stages, plan, data_rng, device, state,
                    at_stage, at_step, quiet)
    except runs.WriteError as err:
        done = runs.checkpoint_step(run_dir)
        hint = (
            f"the checkpoint of step {done} is intact: continue with `untwine train --resume "
            f"{run_dir}`" if done is not None else "then run the command again"
        )
        raise runs.WriteError(f"{err}; {hint}") from err


def loop(config, run_dir, model, dataset, stages, plan, data_rng, device, state, at_stage,
         at_step, quiet) -> TrainResult:
    """The steps of every stage from (``at_stage``, ``at_step``) on; see ``train``."""
    tc = config.train
    runs.write_config(run_dir, config)
    n_images = model.images_per_step(tc.batch_size)
    stop = StopFlag()

    with stop, Progress(sum(plan), sum(plan[:at_stage]) + at_step, quiet, config.model) as bar:
        for index in range(at_stage, len(stages)):
            stage, steps, offset = stages[index], plan[index], sum(plan[:index])
            local = at_step if index == at_stage else 0
            if local == 0 and stage.begin is not None:
                stage.begin(dataset)
            optimiser, scheduler, extras = make_optimisers(model, stage, tc)
            if state is not None and index == at_stage and 0 < local < steps:
                restore_optimisers(state, optimiser, scheduler, extras)
            log = LossWindow(run_dir, stage.name, offset + local, n_images, current_lr(optimiser))
            bar.describe(config.model if len(stages) == 1 else f"{config.model} · {stage.name}")
            while local < steps:
                # -- batch: the stage's own, or images of factors drawn uniformly over the grid
                batch = draw_batch(stage, dataset, n_images, data_rng, device)
                # -- forward and loss (the stage's objective)
                losses = stage.loss(batch, local)
                # -- backward and step: the main optimiser, then each extra one on its own loss
                optimiser.zero_grad(set_to_none=True)
                losses["loss"].backward()
                optimiser.step()
                if scheduler is not None:
                    scheduler.step()
                for extra, opt in extras:
                    opt.zero_grad(set_to_none=True)
                    losses[extra.name].backward()
                    opt.step()
                local += 1
                step = offset + local
                log.add(losses)
                bar.advance()
                # -- log
                if step % tc.log_every == 0 or local == steps:
                    bar.show(step, log.flush(step))
                # -- checkpoint (also at the end of a stage, and when a signal asked to stop)
                if step % tc.checkpoint_every == 0 or local == steps or stop.signum:
                    log.flush(step)
                    snapshot = capture(index, local, step, model, optimiser, scheduler, extras)
                    runs.save_checkpoint(run_dir, {**snapshot, **rng_states(data_rng)})
                if stop.signum and (local < steps or index < len(stages) - 1):
                    return TrainResult(run_dir, step, True, stop.signum, model.eval(), dataset)
    return finish(config, run_dir, model, dataset, sum(plan))


def finish(config: RunConfig, run_dir: Path, model: Model, dataset: Any, step: int) -> TrainResult:
    """The model's last fit (e.g. a PCA of its codes), then the final weights, stamped with the
    step they belong to."""
    model.eval()
    model.finish(dataset)
    runs.save_weights(run_dir, model, step=step, name=config.model)
    return TrainResult(run_dir, step, model=model, dataset=dataset)





def load_run_dataset(config: RunConfig) -> Any:
    """The dataset a run config names (the twin, or the official file at ``data.path``)."""
    from untwine.data import load_dataset

    return load_dataset(config.data.name, path=config.data.path, **config.data.options)


def check_batch_size(tc: TrainConfig, dataset: Any) -> None:
    if tc.batch_size > len(dataset):
        raise UntwineError(
            f"batch size {tc.batch_size} is larger than {dataset.name} "
            f"({len(dataset)} images); use a smaller --batch-size"
        )


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (models may use the global RandomState)
    torch.manual_seed(seed)


def position(state: dict[str, Any], plan: list[int], run_dir: Path) -> tuple[int, int]:
    """(stage index, step within it) a checkpoint resumes at; ``(len(plan), 0)`` for a
    checkpoint at the end whose weights are missing, damaged or older (rebuilt from it);
    refuses a finished run."""
    index, local = int(state.get("stage", 0)), int(state.get("stage_step", state["step"]))
    if index >= len(plan):
        raise UntwineError(f"{run_dir}'s checkpoint is from stage {index}; this model has fewer")
    done = sum(plan[:index]) + local
    if done >= sum(plan):
        if done == sum(plan) and not weights_current(run_dir, done):
            return len(plan), 0
        raise UntwineError(
            f"{run_dir} is already trained to step {done}; pass --steps N with N > {done} "
            "to train it further"
        )
    return index, local


def weights_current(run_dir: Path, step: int) -> bool:
    """Whether model.safetensors exists, is readable and belongs to ``step`` (files written
    before steps were recorded count as current)."""
    if not (run_dir / runs.WEIGHTS).exists():
        return False
    try:
        recorded = runs.weights_info(run_dir).get("step")
    except UntwineError:
        return False
    return recorded is None or int(recorded) == step


def make_optimisers(
    model: Model, stage: Stage, tc: TrainConfig
) -> tuple[torch.optim.Optimizer, Any, list[tuple[Any, torch.optim.Optimizer]]]:
    """The stage's optimiser (Adam with the study defaults unless the stage gives one) over its
    parameters minus those of its extra optimisers and of frozen parts, its lr schedule, and
    the extra optimisers."""
    extras = [(e, e.make(list(e.params))) for e in stage.extras]
    taken = {id(p) for e, _ in extras for p in e.params}
    frozen = {id(p) for name in model.frozen for p in getattr(model, name).parameters()}
    chosen = stage.parameters() if stage.parameters is not None else model.parameters()
    params = [p for p in chosen if id(p) not in taken | frozen and p.requires_grad]
    if not params:
        raise UntwineError(f"stage {stage.name!r} of {type(model).__name__} has nothing to train")
    if stage.optimiser is not None:
        optimiser = stage.optimiser(params, tc)
    else:
        optimiser = torch.optim.Adam(params, lr=tc.lr, betas=(tc.beta1, tc.beta2), eps=tc.eps)
    scheduler = None
    if stage.lr_lambda is not None:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, stage.lr_lambda)
    return optimiser, scheduler, extras


def draw_batch(
    stage: Stage, dataset: Any, n: int, rng: np.random.RandomState, device: torch.device
) -> Any:
    """The next batch of a stage on ``device``: its own draw, or images of n random factors."""
    if stage.batches is None:
        return dataset.images(dataset.sample_factors(n, rng)).to(device, non_blocking=True)
    return to_device(stage.batches(n, rng), device)


def to_device(batch: Any, device: torch.device) -> Any:
    """Tensors of a batch (alone or in a tuple, list or dict) moved to ``device``."""
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def current_lr(optimiser: torch.optim.Optimizer) -> Any:
    return lambda: optimiser.param_groups[0]["lr"]


def capture(index, local, step, model, optimiser, scheduler, extras) -> dict[str, Any]:
    """The training state after ``local`` steps of stage ``index`` (``step`` in all); frozen
    parts are left out (``prepare`` loads them again)."""
    return {
        "step": step,
        "stage": index,
        "stage_step": local,
        "model": trainable_state(model),
        "optimiser": optimiser.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else {},
        "extras": {e.name: opt.state_dict() for e, opt in extras},
    }


def rng_states(data_rng: np.random.RandomState) -> dict[str, Any]:
    """Every random state a step draws from: torch (and CUDA), NumPy, Python, the batches'."""
    return {
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy_rng": runs.numpy_state(_global_numpy()),
        "python_rng": random.getstate(),
        "data_rng": runs.numpy_state(data_rng),
    }


def restore_model_and_rngs(
    state: dict[str, Any], model: Model, data_rng: np.random.RandomState, run_dir: Path = Path()
) -> None:
    """Load a checkpoint's weights (all but frozen parts) and random states back."""
    try:
        missing, unexpected = model.load_state_dict(state["model"], strict=False)
    except RuntimeError as err:  # a tensor of another shape: another model or image size
        missing, unexpected = [], [str(err).split("size mismatch for ")[-1].split(":")[0]]
    frozen = set(model.state_dict()) - set(trainable_state(model))
    if set(missing) - frozen or unexpected:
        raise UntwineError(
            f"{run_dir / runs.CHECKPOINT} does not fit the {type(model).__name__} of "
            f"{run_dir / runs.CONFIG} (missing {sorted(set(missing) - frozen)[:3]}, unexpected "
            f"or resized {sorted(unexpected)[:3]}): the folder mixes files of different runs; "
            "put the run's own config.json back, or train again into a new folder"
        )
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    runs.set_numpy_state(_global_numpy(), state["numpy_rng"])
    random.setstate(_as_tuples(state["python_rng"]))
    runs.set_numpy_state(data_rng, state["data_rng"])


def restore_optimisers(state: dict[str, Any], optimiser, scheduler, extras) -> None:
    """Load the optimiser, lr schedule and extra optimisers of the stage being resumed."""
    try:
        optimiser.load_state_dict(state["optimiser"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        for e, opt in extras:
            opt.load_state_dict(state["extras"][e.name])
    except (ValueError, KeyError, RuntimeError) as err:
        raise UntwineError(
            f"the checkpoint's optimiser state does not fit this model ({runs._short(err)}): "
            "the folder mixes files of different runs; train again into a new folder"
        ) from err


def _global_numpy() -> np.random.RandomState:
    return np.random.mtrand._rand


def _as_tuples(obj: Any) -> Any:
    return tuple(_as_tuples(o) for o in obj) if isinstance(obj, (list, tuple)) else obj


class StopFlag:
    """SIGINT/SIGTERM set a flag the loop checks after each step (a second signal aborts)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)
