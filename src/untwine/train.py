"""The one training loop for every SGD-trained model: batch, forward, loss, backward, step, log,
checkpoint — in that order, nanoGPT-style. Model-specific behaviour lives in ``model.loss()`` and
``model.extra_optimisers()``; nothing here knows which model it trains.

Resuming is bit-exact on CPU: a checkpoint holds the weights, every optimiser, the torch, NumPy
and Python RNG states and the batch sampler's RNG, so 100 steps + kill + resume 100 equals 200.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from untwine import runs
from untwine.config import RunConfig
from untwine.errors import UntwineError


@dataclass
class TrainResult:
    """Where a run ended: its folder, the step reached, and whether a signal stopped it early."""

    run_dir: Path
    step: int
    interrupted: bool = False
    signal: int | None = None


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
    loading it again when the caller already has it.

    Writes config.json at the start, log.csv every ``log_every`` steps, checkpoint/ every
    ``checkpoint_every`` steps and on SIGINT/SIGTERM, model.safetensors at the end.
    """
    # -- configuration -------------------------------------------------------------------------
    tc, run_dir = config.train, Path(run_dir)
    device = runs.resolve_device(tc.device)
    dataset = dataset if dataset is not None else runs.load_dataset_for(config)
    config = fill_dataset_fields(config, dataset)
    seed_everything(tc.seed)
    model = runs.build_model(config, dataset.image_shape).to(device).train()
    optimiser, extras = make_optimisers(model, config)
    data_rng = np.random.RandomState(tc.seed)
    n_images = tc.batch_size * getattr(model, "batch_multiplier", 1)
    step = 0
    if resume:
        step = restore(runs.load_checkpoint(run_dir), model, optimiser, extras, data_rng)
        runs.truncate_log(run_dir, step)
    else:
        runs.prepare_run_dir(run_dir, force=force)
    runs.write_config(run_dir, config)
    log = LossWindow(run_dir, step, n_images, lambda: optimiser.param_groups[0]["lr"])
    stop = StopFlag()

    with stop, Progress(tc.steps, step, quiet, model_name=config.model) as bar:
        while step < tc.steps:
            # -- batch: factors drawn uniformly over the grid, rendered to images
            factors = dataset.sample_factors(n_images, data_rng)
            batch = dataset.images(factors).to(device, non_blocking=True)
            # -- forward and loss (the model's own objective)
            losses = model.loss(batch, step)
            # -- backward and step: the main optimiser, then each extra one on its own loss
            optimiser.zero_grad(set_to_none=True)
            losses["loss"].backward()
            optimiser.step()
            for extra, opt in extras:
                opt.zero_grad(set_to_none=True)
                losses[extra.name].backward()
                opt.step()
            step += 1
            log.add(losses)
            bar.advance()
            # -- log
            if step % tc.log_every == 0 or step == tc.steps:
                bar.show(step, log.flush(step))
            # -- checkpoint (also when a signal asked to stop)
            if step % tc.checkpoint_every == 0 or step == tc.steps or stop.signum:
                log.flush(step)
                runs.save_checkpoint(run_dir, capture(step, model, optimiser, extras, data_rng))
            if stop.signum and step < tc.steps:
                return TrainResult(run_dir, step, interrupted=True, signal=stop.signum)
    runs.save_weights(run_dir, model)
    return TrainResult(run_dir, step)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (models may use the global RandomState)
    torch.manual_seed(seed)


def fill_dataset_fields(config: RunConfig, dataset: Any) -> RunConfig:
    """Check the config against the dataset, and fill the model's ``dataset_size`` if it has one."""
    from untwine.config import apply_overrides

    if config.train.batch_size > len(dataset):
        raise UntwineError(
            f"batch size {config.train.batch_size} is larger than {dataset.name} "
            f"({len(dataset)} images); use a smaller --batch-size"
        )
    if getattr(config.model_config, "dataset_size", 1) in (None, 0):
        return apply_overrides(config, {"model.dataset_size": len(dataset)})
    return config


def make_optimisers(
    model: torch.nn.Module, config: RunConfig
) -> tuple[torch.optim.Optimizer, list[tuple[Any, torch.optim.Optimizer]]]:
    """Adam (study defaults) over the model's parameters, minus those of its extra optimisers."""
    tc = config.train
    extras = [(e, e.make(list(e.params))) for e in model.extra_optimisers()]
    taken = {id(p) for e, _ in extras for p in e.params}
    params = [p for p in model.parameters() if id(p) not in taken and p.requires_grad]
    adam = torch.optim.Adam(params, lr=tc.lr, betas=(tc.beta1, tc.beta2), eps=tc.eps)
    return adam, extras


def capture(step, model, optimiser, extras, data_rng) -> dict[str, Any]:
    """The full training state after ``step`` steps."""
    return {
        "step": step,
        "model": model.state_dict(),
        "optimiser": optimiser.state_dict(),
        "extras": {e.name: opt.state_dict() for e, opt in extras},
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy_rng": runs.numpy_state(_global_numpy()),
        "python_rng": random.getstate(),
        "data_rng": runs.numpy_state(data_rng),
    }


def restore(state, model, optimiser, extras, data_rng) -> int:
    """Load a ``capture``d state back; returns the step it was taken at."""
    model.load_state_dict(state["model"])
    optimiser.load_state_dict(state["optimiser"])
    for e, opt in extras:
        opt.load_state_dict(state["extras"][e.name])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    runs.set_numpy_state(_global_numpy(), state["numpy_rng"])
    random.setstate(_as_tuples(state["python_rng"]))
    runs.set_numpy_state(data_rng, state["data_rng"])
    return int(state["step"])


def _global_numpy() -> np.random.RandomState:
    return np.random.mtrand._rand


def _as_tuples(obj: Any) -> Any:
    return tuple(_as_tuples(o) for o in obj) if isinstance(obj, (list, tuple)) else obj


class LossWindow:
    """Loss terms of the steps since the last log row, kept on the device (no per-step sync).

    ``flush`` moves them to the CPU once, stops the run on a NaN/inf naming the step and the
    term, and appends their means, the learning rate and images/s to log.csv.
    """

    def __init__(self, run_dir: Path, step: int, n_images: int, lr: Any) -> None:
        self.run_dir, self.start, self.n_images, self.lr = run_dir, step, n_images, lr
        self.keys: list[str] | None = None
        self.rows: list[torch.Tensor] = []
        self.clock = time.perf_counter()

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        if self.keys is None:
            self.keys = list(losses)
        elif list(losses) != self.keys:
            raise UntwineError(f"the model's loss terms changed from {self.keys} to {list(losses)}")
        self.rows.append(torch.stack([losses[k].detach().float().reshape(()) for k in self.keys]))

    def flush(self, step: int) -> dict[str, float]:
        if not self.rows:
            return {}
        values = torch.stack(self.rows).cpu()
        bad = ~torch.isfinite(values)
        if bad.any():
            row, col = (int(i) for i in bad.nonzero()[0])
            raise UntwineError(
                f"loss term {self.keys[col]!r} is {values[row, col].item()} at step "
                f"{self.start + row + 1}; training stopped. The last good checkpoint is in "
                f"{self.run_dir / runs.CHECKPOINT.parent}; try a lower --lr"
            )
        now = time.perf_counter()
        means = dict(zip(self.keys, values.double().mean(0).tolist(), strict=True))
        row = {
            "step": step,
            **means,
            "lr": self.lr(),
            "images_per_s": self.n_images * len(self.rows) / max(now - self.clock, 1e-9),
        }
        runs.append_log(self.run_dir, row)
        self.rows, self.start, self.clock = [], step, now
        return row


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


class Progress:
    """A rich progress bar: step, the latest loss terms and images/s; silent with ``quiet``."""

    def __init__(self, total: int, start: int, quiet: bool, model_name: str = "") -> None:
        self.total, self.start, self.quiet, self.name = total, start, quiet, model_name
        self.bar: Any = None

    def __enter__(self) -> Progress:
        if not self.quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self.bar = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[terms]}"),
            )
            self.bar.start()
            self.task = self.bar.add_task(
                self.name, total=self.total, completed=self.start, terms=""
            )
        return self

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)

    def show(self, step: int, row: dict[str, float]) -> None:
        if self.bar is not None and row:
            terms = "  ".join(f"{k} {v:.4g}" for k, v in row.items() if k not in ("step", "lr"))
            self.bar.update(self.task, completed=step, terms=terms.replace("images_per_s", "img/s"))

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()
