import numpy as np
from PIL import Image

from untwine.data.base import GridDataset
from untwine.data.factors import FactorSpace
from untwine.viz.gallery import factor_gallery, factor_sweeps


def _toy() -> GridDataset:
    space = FactorSpace.from_sizes(["row", "col"], [4, 20])

    def render(f: np.ndarray) -> np.ndarray:
        out = np.zeros((len(f), 1, 4, 20), np.float32)
        out[np.arange(len(f)), 0, f[:, 0], f[:, 1]] = 1.0
        return out

    return GridDataset("toy", space, (1, 4, 20), render)


def test_each_sweep_varies_only_its_own_factor():
    rows = factor_sweeps(_toy(), max_columns=10, seed=3)
    assert [name for name, _, _ in rows] == ["row", "col"]
    name, classes, images = rows[1]
    assert classes.tolist() == [0, 2, 4, 6, 8, 11, 13, 15, 17, 19]
    lit = [np.argwhere(img[0])[0].tolist() for img in images]
    assert len({r for r, _ in lit}) == 1 and [c for _, c in lit] == classes.tolist()
    assert rows[0][1].tolist() == [0, 1, 2, 3]


def test_gallery_writes_a_png_with_one_row_per_factor(tmp_path):
    out = factor_gallery(_toy(), tmp_path / "g.png")
    with Image.open(out) as img:
        width, height = img.size
    assert width > height > 100


def test_gallery_creates_the_folder_it_writes_into(tmp_path):
    out = factor_gallery(_toy(), tmp_path / "new" / "deeper" / "g.png")
    assert out.is_file()
