"""The latent × factor MI heat map: normalised MI of codes that copy factors, and the PNG."""

from __future__ import annotations

import numpy as np
from PIL import Image

from untwine.data.base import GridDataset
from untwine.data.factors import FactorSpace
from untwine.viz.heatmap import mi_heatmap, mi_heatmap_for, normalised_mi


def _factors(n=4000, seed=0):
    rng = np.random.RandomState(seed)
    return np.stack([rng.randint(3, size=n), rng.randint(5, size=n)], axis=1)


def test_codes_copying_factors_give_one_on_their_factor_and_near_zero_elsewhere():
    factors = _factors()
    codes = np.stack([factors[:, 1] * 0.7, factors[:, 0] - 1.0, factors[:, 1] + 0.0], 1)
    matrix = normalised_mi(codes, factors)
    np.testing.assert_allclose(matrix[[0, 1, 2], [1, 0, 1]], 1.0, atol=1e-12)
    assert matrix[[0, 1, 2], [0, 1, 0]].max() < 0.01


def test_constant_code_carries_no_information():
    factors = _factors()
    codes = np.stack([np.zeros(len(factors)), factors[:, 0].astype(float)], 1)
    matrix = normalised_mi(codes, factors)
    np.testing.assert_array_equal(matrix[0], 0.0)
    assert matrix[1, 0] == 1.0


def test_heatmap_for_a_representation_writes_a_png(tmp_path):
    space = FactorSpace.from_sizes(["a", "b"], [3, 5])

    def render(f):
        return f[:, :, None, None].astype(np.float32) / 5

    dataset = GridDataset("toy", space, (2, 1, 1), render)
    path = mi_heatmap_for(lambda x: x.flatten(1).numpy(), dataset, tmp_path / "mi.png", num=500)
    with Image.open(path) as image:
        assert image.format == "PNG"
    direct = mi_heatmap(_factors(50), _factors(50), tmp_path / "d.png", ("a", "b"))
    assert direct.exists()
