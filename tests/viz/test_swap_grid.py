import numpy as np
from PIL import Image

from untwine.data import load_dataset
from untwine.viz.swap import _panel, swap_grid


def test_panel_puts_sources_on_the_first_row_and_column():
    rows, cols = np.zeros((2, 1, 2, 2)), np.ones((2, 1, 2, 2))
    body = np.full((2, 2, 1, 2, 2), 0.25)
    grid = _panel(np.full((1, 2, 2), 0.5), rows, cols, body)
    assert grid.shape == (3, 3, 1, 2, 2)
    assert grid[0, 0].max() == 0.5 and grid[0, 1:].min() == 1 and grid[1:, 0].max() == 0
    assert np.all(grid[1:, 1:] == 0.25)


def test_swap_grid_writes_model_and_truth_panels(tmp_path):
    ds = load_dataset("dsprites")
    # an "oracle" whose codes are the images: the swap is the row's image
    out = swap_grid(ds, lambda x: x, lambda x: x, lambda c, s: c, tmp_path / "swap.png",
                    {"declared": [3, 4]}, n=3)
    assert Image.open(out).size[0] > 400
