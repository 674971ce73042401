import h5py
import numpy as np
import pytest
import torch

from untwine.data.base import ArrayDataset, FactorDataset, GridDataset, read_rows, to_nchw_float
from untwine.data.factors import FactorSpace
from untwine.errors import UntwineError

SPACE = FactorSpace.from_sizes(["a", "b"], [2, 3])


def _render(f: np.ndarray) -> np.ndarray:
    out = np.zeros((len(f), 1, 2, 2), np.float32)
    out[:, 0, 0, 0] = f[:, 0] / 2
    out[:, 0, 1, 1] = f[:, 1] / 3
    return out


def test_grid_dataset_meets_the_protocol_and_returns_float_tensors():
    ds = GridDataset("toy", SPACE, (1, 2, 2), _render)
    assert isinstance(ds, FactorDataset)
    x = ds.images(np.array([[1, 2]]))
    assert x.dtype == torch.float32 and x.shape == (1, 1, 2, 2)
    assert x[0, 0, 0, 0] == 0.5 and x[0, 0, 1, 1] == pytest.approx(2 / 3)
    image, factors = ds[5]
    assert factors.tolist() == [1, 2] and torch.equal(image, x[0])


def test_render_shape_mismatch_is_reported():
    ds = GridDataset("toy", SPACE, (3, 2, 2), _render)
    with pytest.raises(UntwineError, match="expected"):
        ds.images(np.array([[0, 0]]))


def test_to_nchw_float_layouts():
    hwc = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    out = to_nchw_float(hwc)
    assert out.shape == (2, 3, 4, 4) and out.dtype == np.float32
    assert out[1, 2, 3, 1] == pytest.approx(hwc[1, 3, 1, 2] / 255)
    assert to_nchw_float(np.ones((2, 4, 4), np.uint8), binary=True).max() == 1.0


def test_read_rows_handles_h5py_unsorted_and_repeated_indices(tmp_path):
    data = np.arange(6 * 2, dtype=np.uint8).reshape(6, 2)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["x"] = data
    with h5py.File(tmp_path / "a.h5", "r") as f:
        idx = np.array([5, 1, 1, 3])
        assert np.array_equal(read_rows(f["x"], idx), data[idx])


def test_array_dataset_reads_rows_in_c_order():
    images = (np.arange(6)[:, None, None] * np.ones((6, 2, 2)) * 40).astype(np.uint8)
    ds = ArrayDataset("arr", SPACE, images)
    assert ds.image_shape == (1, 2, 2)
    x = ds.images(np.array([[1, 1]]))
    assert x[0, 0, 0, 0].item() == pytest.approx(4 * 40 / 255)


def test_array_dataset_size_mismatch_is_reported():
    with pytest.raises(UntwineError, match="has 5 rows"):
        ArrayDataset("arr", SPACE, np.zeros((5, 2, 2), np.uint8))
