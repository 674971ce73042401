"""Traversal and reconstruction grids: row order by KL, one latent per row, absolute values."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

from untwine.data.base import GridDataset
from untwine.data.factors import FactorSpace
from untwine.models.base import Model
from untwine.models.regularisers import gaussian_kl
from untwine.viz.traversal import mosaic, reconstruction_grid, traversal_grid, traversal_images


def _dataset() -> GridDataset:
    space = FactorSpace.from_sizes(["a", "b"], [3, 4])

    def render(f: np.ndarray) -> np.ndarray:
        return np.broadcast_to(
            (f[:, :1, None, None] / 2 + f[:, 1:, None, None] / 3).astype(np.float32) / 2,
            (len(f), 1, 2, 3),
        ).copy()

    return GridDataset("toy", space, (1, 2, 3), render)


class OnePixelPerLatent(Model):
    """Latent d lights pixel d only; encoder means grow with d, log-variances are 0 for d > 0."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([0.0, 2.0, 0.5]))

    def encode(self, x):
        mu = x.flatten(1).mean(1, keepdim=True) * 0 + self.scale
        return mu, torch.zeros_like(mu)

    def represent(self, x, mode="mean"):
        return self.encode(x)[0]

    def decode(self, z):
        logits = torch.zeros(len(z), 1, 2, 3)
        logits.view(len(z), -1)[:, :3] = z
        return logits

    def decode_images(self, z):
        return torch.sigmoid(self.decode(z))

    def kl_per_latent(self, x):
        return gaussian_kl(*self.encode(x)).mean(0)


def test_rows_follow_kl_descending_and_vary_only_their_latent():
    values = (-1.0, 0.0, 2.0)
    images, order, kl = traversal_images(OnePixelPerLatent(), _dataset(), values)
    np.testing.assert_allclose(kl, 0.5 * np.array([0.0, 4.0, 0.25]), rtol=1e-6)
    assert order.tolist() == [1, 2, 0]
    assert images.shape == (3, 3, 1, 2, 3)
    base = torch.sigmoid(torch.tensor([0.0, 2.0, 0.5])).numpy()
    for row, latent in enumerate(order):
        flat = images[row].reshape(3, -1)
        expected = np.tile(base, (3, 1))
        expected[:, latent] = torch.sigmoid(torch.tensor(values)).numpy()
        np.testing.assert_allclose(flat[:, :3], expected, rtol=1e-6)
        np.testing.assert_allclose(flat[:, 3:], 0.5)


def test_mosaic_places_each_image_in_its_cell():
    images = np.arange(2 * 3 * 1 * 2 * 2, dtype=np.float32).reshape(2, 3, 1, 2, 2)
    grid = mosaic(images, pad=1)
    assert grid.shape == (7, 10, 1)
    np.testing.assert_array_equal(grid[4:6, 7:9, 0], images[1, 2, 0])
    assert grid[0, 0, 0] == 0.5


def test_grids_are_written_as_pngs(tmp_path):
    model, dataset = OnePixelPerLatent(), _dataset()
    traversal = traversal_grid(model, dataset, tmp_path / "t.png")
    recon = reconstruction_grid(model, dataset, tmp_path / "r.png", num=4)
    for path in (traversal, recon):
        with Image.open(path) as image:
            assert image.format == "PNG" and min(image.size) > 50
