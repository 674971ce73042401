"""Convolutional encoders and decoders for 64×64 images: disentanglement_lib's and Burgess et al.'s.

Padding maps to TensorFlow's ``"same"`` exactly: a 4×4 stride-2 conv on an even size pads one
pixel on each side (TF's total pad 2, split 1/1), a 2×2 stride-2 conv pads nothing, and a 4×4
stride-2 transposed conv with ``padding=1`` doubles the size as TF's ``conv2d_transpose`` does.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from untwine.errors import UntwineError

ARCHITECTURES = ("dlib", "burgess")
IMAGE_SIZE = 64


def check_image_shape(image_shape: tuple[int, ...]) -> int:
    """Return the channel count of a (1|3, 64, 64) shape; anything else is a user error."""
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or shape[0] not in (1, 3) or shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise UntwineError(
            f"image_shape {shape} is not supported: the conv architectures take (C, 64, 64) "
            "images with C = 1 or 3; resize the data to 64×64"
        )
    return shape[0]


def _check_architecture(architecture: str) -> None:
    if architecture not in ARCHITECTURES:
        raise UntwineError(
            f"architecture must be one of {', '.join(ARCHITECTURES)}; got {architecture!r}"
        )


class Encoder(nn.Module):
    """Conv encoder to the parameters of a diagonal Gaussian: ``forward(x) -> (mu, logvar)``."""

    def __init__(self, channels: int, latents: int, architecture: str = "dlib"):
        super().__init__()
        _check_architecture(architecture)
        if architecture == "dlib":
            convs = [(channels, 32, 4), (32, 32, 4), (32, 64, 2), (64, 64, 2)]
            dense = [64 * 4 * 4, 256]
        else:
            convs = [(channels, 32, 4), (32, 32, 4), (32, 32, 4), (32, 32, 4)]
            dense = [32 * 4 * 4, 256, 256]
        layers: list[nn.Module] = []
        for c_in, c_out, k in convs:
            layers += [nn.Conv2d(c_in, c_out, k, stride=2, padding=(k - 2) // 2), nn.ReLU()]
        layers.append(nn.Flatten())
        for d_in, d_out in pairwise(dense):
            layers += [nn.Linear(d_in, d_out), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(dense[-1], 2 * latents)
        self.latents = latents

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.body(x)).chunk(2, dim=1)
        return mu, logvar


class Decoder(nn.Module):
    """Mirror of :class:`Encoder`: ``forward(z) -> (n, C, 64, 64)`` pre-activation outputs."""

    def __init__(self, channels: int, latents: int, architecture: str = "dlib"):
        super().__init__()
        _check_architecture(architecture)
        if architecture == "dlib":
            dense = [latents, 256, 64 * 4 * 4]
            convs = [(64, 64), (64, 32), (32, 32), (32, channels)]
            grid = (64, 4, 4)
        else:
            dense = [latents, 256, 256, 32 * 4 * 4]
            convs = [(32, 32), (32, 32), (32, 32), (32, channels)]
            grid = (32, 4, 4)
        layers: list[nn.Module] = []
        for d_in, d_out in pairwise(dense):
            layers += [nn.Linear(d_in, d_out), nn.ReLU()]
        layers.append(nn.Unflatten(1, grid))
        for i, (c_in, c_out) in enumerate(convs):
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))
            if i < len(convs) - 1:
                layers.append(nn.ReLU())
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)


class ConvEmbedder(nn.Module):
    """The :class:`Encoder`'s conv + dense body with one linear head of ``out`` units: ``(n, out)``.

    A feature map for networks that read images but are not encoders (ProtoVAE's prototypical
    network, DOT-VAE's real/fake discriminator).
    """

    def __init__(self, channels: int, out: int, architecture: str = "dlib"):
        super().__init__()
        self.body = Encoder(channels, 1, architecture).body
        self.head = nn.Linear(256, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
