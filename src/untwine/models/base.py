"""The Model contract every method meets, its training stages, and the registry of models.

A model is an ``nn.Module`` with a ``loss(batch, step)``; the one training loop (``untwine.train``)
runs its ``stages()`` in order, each with its own parameters, optimiser and batches, so
multi-stage methods (a DPM then DisDiff on it; latent optimisation then encoders) and models with
a second optimiser (FactorVAE's discriminator) need no special case in the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

Losses = dict[str, torch.Tensor]


@dataclass
class ExtraOptimiser:
    """A second optimiser a stage needs (FactorVAE's discriminator).

    The training loop steps it on ``losses[name]`` after the main update; ``params`` are left
    out of the main optimiser, and their gradients are zeroed before ``losses[name]`` is
    back-propagated, so neither loss updates the other's parameters.
    """

    name: str
    params: list[nn.Parameter]
    make: Callable[[list[nn.Parameter]], torch.optim.Optimizer]


@dataclass
class Stage:
    """One phase of training, run by the one loop in the order ``Model.stages()`` gives.

    ``loss(batch, step)`` is the stage's objective (``step`` counts from 0 within the stage).
    ``parameters()`` are what it trains (default: every parameter that requires grad, minus the
    extras'); ``steps`` default to the run's ``train.steps``, so ``--steps N`` sets every stage
    (a model config naming fields in ``stage_steps`` has them set to N too, see
    ``config.apply_overrides``: that is how a stage gets a default length of its own).
    ``optimiser(params, train_config)`` defaults to Adam with the run's lr, betas and eps;
    ``lr_lambda(step)`` multiplies the lr (warm-up). ``batches(n, rng)`` draws a stage's own
    batches (default: images of n uniformly drawn grid points) from the checkpointed data RNG;
    ``begin(dataset)`` runs when the stage starts fresh (not on resume), e.g. to fit a scale
    into a buffer.
    """

    name: str
    loss: Callable[[Any, int], Losses]
    parameters: Callable[[], list[nn.Parameter]] | None = None
    steps: int | None = None
    optimiser: Callable[[list[nn.Parameter], Any], torch.optim.Optimizer] | None = None
    lr_lambda: Callable[[int], float] | None = None
    extras: list[ExtraOptimiser] = field(default_factory=list)
    batches: Callable[[int, np.random.RandomState], Any] | None = None
    begin: Callable[[Any], None] | None = None


class Model(nn.Module):
    """Base of untwine's trainable models.

    ``loss(batch, step)`` returns a dict of scalar tensors: ``"loss"`` is the objective of the
    main optimiser, the rest are logged (and any ``ExtraOptimiser.name`` is that optimiser's
    objective). ``represent(x)`` gives the codes metrics score: the encoder mean by default,
    one posterior sample with ``mode="sampled"``.

    ``frozen`` names submodules loaded pre-trained (by ``prepare``): they are never optimised,
    are left out of checkpoints (``prepare`` loads them again on resume) and are kept in
    ``model.safetensors``, so a finished run is self-contained. ``has_codes = False`` (a plain
    generative model) makes a run skip metrics and traversals.
    """

    config: Any
    frozen: tuple[str, ...] = ()
    has_codes: bool = True

    def loss(self, batch: Any, step: int) -> Losses:
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> Any:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def represent(self, x: torch.Tensor, mode: str = "mean") -> torch.Tensor:
        raise NotImplementedError

    # -- training: what the one loop asks of a model ------------------------------------------

    def prepare(self, dataset: Any) -> None:
        """Once before training, fresh or resumed: dataset-derived settings, frozen parts."""

    def images_per_step(self, batch_size: int) -> int:
        """Images the default batches hold per step (FactorVAE's second batch doubles it)."""
        return batch_size

    def stages(self) -> list[Stage]:
        """The training phases; a single-stage model trains ``loss`` with its extra optimisers."""
        return [Stage("train", self.loss, extras=self.extra_optimisers())]

    def extra_optimisers(self) -> list[ExtraOptimiser]:
        return []

    def finish(self, dataset: Any) -> None:
        """Once after the last stage, before the weights are written (e.g. fit a PCA of codes)."""

    # -- after training: pictures and model-specific scores -----------------------------------

    def decode_images(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] for codes z (pictures); models whose decoder gives logits override."""
        return self.decode(z).clamp(0, 1)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] decoded from the codes of x."""
        return self.decode_images(self.represent(x))

    @torch.no_grad()
    def kl_per_latent(self, x: torch.Tensor) -> torch.Tensor:
        """How much each latent carries over x, (D,), to order traversals; without a posterior,
        the variance of each code."""
        return self.represent(x).var(0)

    def active_latents(self) -> torch.Tensor | None:
        """Bool mask (D,) of the latents the model uses (traversals mark the rest); None: all."""
        return None

    def extra_metrics(self, dataset: Any, seed: int) -> dict[str, Any]:
        """Model-specific scores, stored in metrics.json under ``metrics["model"]``."""
        return {}

    def draw(self, dataset: Any, run_dir: Path, seed: int) -> list[Path]:
        """Model-specific pictures written into the run folder (samples, swap grids)."""
        return []


def trainable_state(model: Model) -> dict[str, torch.Tensor]:
    """The model's state dict without its ``frozen`` parts (what a checkpoint holds)."""
    prefixes = tuple(f"{name}." for name in model.frozen)
    return {k: v for k, v in model.state_dict().items() if not k.startswith(prefixes)}


@dataclass
class ModelEntry:
    """A registered model: its config dataclass and the constructor taking (config, image_shape)."""

    name: str
    config_class: type
    build: Callable[[Any, tuple[int, int, int]], Model]
    summary: str


MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, config_class: type, summary: str) -> Callable:
    """Decorator for a ``build(config, image_shape) -> Model`` function or a Model class."""

    def wrap(build: Callable[[Any, tuple[int, int, int]], Model]) -> Callable:
        MODELS[name] = ModelEntry(name, config_class, build, summary)
        return build

    return wrap


def model_entry(name: str) -> ModelEntry:
    """The registry entry of model ``name``, or an error listing the known models."""
    from untwine.errors import UntwineError

    entry = MODELS.get(name.lower().replace("-", "").replace("_", ""))
    if entry is None:
        known = ", ".join(sorted(MODELS)) or "none registered"
        raise UntwineError(f"unknown model {name!r}; known models: {known} (see `untwine models`)")
    return entry


def build_model(name: str, model_config: Any, image_shape: tuple[int, int, int]) -> Model:
    """The untrained model ``name`` with ``model_config`` for images of ``image_shape``."""
    return model_entry(name).build(model_config, tuple(image_shape))


def representer(
    model: nn.Module, batch_size: int = 256, mode: str = "mean"
) -> Callable[[Any], np.ndarray]:
    """``represent(images) -> codes`` for the metrics: NumPy or torch (n, C, H, W) in, float64
    NumPy out, encoded in batches on the model's own device. The one model-to-codes helper."""
    device = next(model.parameters()).device

    @torch.no_grad()
    def represent(images: Any) -> np.ndarray:
        x = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
        parts = [
            model.represent(x[i : i + batch_size].to(device, torch.float32), mode=mode).cpu()
            for i in range(0, len(x), batch_size)
        ]
        return torch.cat(parts).numpy().astype(np.float64)

    return represent
