"""The Model contract every method meets, and the registry that finds models by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class ExtraOptimiser:
    """A second optimiser a model needs (FactorVAE's discriminator).

    The training loop steps it on ``losses[name]`` after the main update; ``params`` are left
    out of the main optimiser, and their gradients are zeroed before ``losses[name]`` is
    back-propagated, so neither loss updates the other's parameters.
    """

    name: str
    params: list[nn.Parameter]
    make: Callable[[list[nn.Parameter]], torch.optim.Optimizer]


class Model(nn.Module):
    """Base of untwine's trainable models.

    ``loss(batch, step)`` returns a dict of scalar tensors: ``"loss"`` is the objective of the
    main optimiser, the rest are logged (and any ``ExtraOptimiser.name`` is that optimiser's
    objective). ``represent(x)`` gives the codes metrics score: the encoder mean by default,
    one posterior sample with ``mode="sampled"``.
    """

    config: Any
    batch_multiplier: int = 1
    """The loop hands ``loss`` batch_size × this many images (FactorVAE's second batch)."""

    def loss(self, batch: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> Any:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def represent(self, x: torch.Tensor, mode: str = "mean") -> torch.Tensor:
        raise NotImplementedError

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

    def extra_optimisers(self) -> list[ExtraOptimiser]:
        return []


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
