"""Small conv encoder/decoder for low-resolution images (sides divisible by 8, e.g. 24 or 32).

Three 4×4 stride-2 convolutions and two dense layers each way: ~0.3M parameters at 32×32, enough
for the toy manifolds of the spectral experiment and fast on a CPU.
"""

from __future__ import annotations

import torch
from torch import nn

from untwine.errors import UntwineError


def check_small_shape(image_shape: tuple[int, ...]) -> tuple[int, int]:
    """(channels, side / 8) of a square (C, S, S) shape with S divisible by 8; else a user error."""
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] % 8 or shape[1] < 8:
        raise UntwineError(
            f"image_shape {shape} is not supported by the small nets: they take square "
            "(C, S, S) images with S divisible by 8 (e.g. 32)"
        )
    return shape[0], shape[1] // 8


class SmallEncoder(nn.Module):
    """Images (n, C, S, S) -> features (n, outputs)."""

    def __init__(self, image_shape: tuple[int, int, int], outputs: int, width: int = 32):
        super().__init__()
        channels, side = check_small_shape(image_shape)
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1),
            nn.ReLU(),
            nn.Conv2d(width, width, 4, 2, 1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(2 * width * side * side, 128),
            nn.ReLU(),
            nn.Linear(128, outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SmallDecoder(nn.Module):
    """Codes (n, inputs) -> image logits (n, C, S, S)."""

    def __init__(self, image_shape: tuple[int, int, int], inputs: int, width: int = 32):
        super().__init__()
        channels, side = check_small_shape(image_shape)
        self.shape = (2 * width, side, side)
        self.dense = nn.Sequential(
            nn.Linear(inputs, 128),
            nn.ReLU(),
            nn.Linear(128, 2 * width * side * side),
            nn.ReLU(),
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(width, width, 4, 2, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, 2, 1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.dense(z).view(len(z), *self.shape))
