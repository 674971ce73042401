"""SmallNORB loader on small files written in the NORB binary-matrix format, both splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from untwine.data import load_dataset, smallnorb
from untwine.errors import UntwineError

MAGIC = {np.dtype("u1"): 0x1E3D4C55, np.dtype("<i4"): 0x1E3D4C54}
CATEGORIES = (0, 1)
INSTANCES = {"training": (4, 6), "testing": (0, 1)}
ELEVATIONS = (0, 3)  # stored elevation indices: 30° and 45°
AZIMUTHS = (0, 2, 34)  # stored azimuth / 2: 0°, 20°, 340°
LIGHTINGS = (0, 5)


def write_matrix(path: Path, array: np.ndarray, magic: int | None = None) -> Path:
    """The NORB binary-matrix format: int32 magic, ndim, max(3, ndim) dims, little-endian data."""
    array = np.asarray(array)
    dtype = array.dtype.newbyteorder("<") if array.dtype.itemsize > 1 else array.dtype
    dims = list(array.shape) + [1] * max(0, 3 - array.ndim)
    header = np.array([magic or MAGIC[np.dtype(dtype)], array.ndim, *dims], dtype="<i4")
    path.write_bytes(header.tobytes() + array.astype(dtype).tobytes())
    return path


def split_rows(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Categories (n,) and info (n, 4) of one split, in a shuffled (not grid) order."""
    grid = (
        np.array(
            np.meshgrid(
                CATEGORIES, INSTANCES[split], ELEVATIONS, AZIMUTHS, LIGHTINGS, indexing="ij"
            )
        )
        .reshape(5, -1)
        .T
    )
    grid = grid[np.random.RandomState(len(split)).permutation(len(grid))]
    return grid[:, 0].astype(np.int32), grid[:, 1:].astype(np.int32)


def stereo_images(n: int, seed: int, size: int = 64) -> np.ndarray:
    """(n, 2, size, size) uint8, every left image distinct, values across the full 0..255."""
    return np.random.RandomState(seed).randint(0, 256, size=(n, 2, size, size)).astype(np.uint8)


def write_norb(folder: Path, size: int = 64) -> dict[str, tuple[np.ndarray, ...]]:
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for k, (split, prefix) in enumerate(smallnorb.SPLITS.items()):
        cat, info = split_rows(split)
        dat = stereo_images(len(cat), seed=k, size=size)
        write_matrix(folder / f"{prefix}-dat.mat", dat)
        write_matrix(folder / f"{prefix}-cat.mat", cat)
        write_matrix(folder / f"{prefix}-info.mat", info)
        written[split] = (dat, cat, info)
    return written


def left_images_by_key(written) -> dict[tuple[int, ...], dict[int, np.ndarray]]:
    """(category, elevation, azimuth, lighting) -> {instance id: left image}."""
    out: dict[tuple[int, ...], dict[int, np.ndarray]] = {}
    for dat, cat, info in written.values():
        for image, c, (inst, e, a, light) in zip(dat[:, 0], cat, info, strict=True):
            out.setdefault((int(c), int(e), int(a), int(light)), {})[int(inst)] = image
    return out


def stored_key(f: np.ndarray) -> tuple[int, ...]:
    return (CATEGORIES[f[0]], ELEVATIONS[f[1]], AZIMUTHS[f[2]], LIGHTINGS[f[3]])


@pytest.fixture
def norb(tmp_path):
    written = write_norb(tmp_path / "norb")
    return tmp_path / "norb", left_images_by_key(written), written


def test_matrix_header_round_trip_for_1d_2d_and_4d(tmp_path):
    vec = np.arange(5, dtype=np.int32)
    path = write_matrix(tmp_path / "v.mat", vec)
    assert path.stat().st_size == 4 + 4 + 3 * 4 + 5 * 4  # 1-D still stores three dims
    np.testing.assert_array_equal(smallnorb.read_matrix(path), vec)
    mat = np.arange(12, dtype=np.int32).reshape(3, 4) - 6
    np.testing.assert_array_equal(smallnorb.read_matrix(write_matrix(tmp_path / "m.mat", mat)), mat)
    cube = np.arange(2 * 2 * 3 * 5, dtype=np.uint8).reshape(2, 2, 3, 5) * 4
    read = smallnorb.read_matrix(write_matrix(tmp_path / "c.mat", cube))
    assert read.dtype == np.uint8 and read.shape == cube.shape
    np.testing.assert_array_equal(read, cube)
    raw = (tmp_path / "c.mat").read_bytes()
    assert raw[:4] == bytes.fromhex("554c3d1e")  # 0x1E3D4C55 little-endian: uint8


def test_factor_grid_comes_from_the_files(norb):
    folder, _, _ = norb
    ds = load_dataset("smallnorb", path=folder)
    assert ds.factor_names == ("category", "elevation", "azimuth", "lighting")
    assert ds.factor_sizes == (2, 2, 3, 2)
    assert ds.image_shape == (1, 64, 64)
    np.testing.assert_array_equal(ds.factor_values[1], [30.0, 45.0])
    np.testing.assert_array_equal(ds.factor_values[2], [0.0, 20.0, 340.0])
    np.testing.assert_array_equal(ds.factor_values[3], [0.0, 5.0])
    assert ds.info["instances_per_combination"] == 4


def test_spread_images_are_left_camera_uint8_of_the_right_factors(norb):
    folder, by_key, _ = norb
    ds = load_dataset("smallnorb", path=folder)
    f = ds.index_to_factors(np.arange(len(ds)))
    out = ds.images_numpy(f)
    chosen = []
    for factors, img in zip(f, out, strict=True):
        candidates = by_key[stored_key(factors)]
        hits = [i for i, im in candidates.items() if np.array_equal(img[0] * 255, im)]
        assert len(hits) == 1
        chosen.append(hits[0])
    assert set(chosen) == {0, 1, 4, 6}  # every instance is used somewhere
    assert out.max() == 1.0 and (out * 255 > 127).mean() > 0.4  # read as uint8, not int8


def test_spread_is_deterministic_per_factors_and_seed(norb):
    folder, _, _ = norb
    a = load_dataset("smallnorb", path=folder)
    b = load_dataset("smallnorb", path=folder)
    f = a.sample_factors(200, np.random.RandomState(0))
    np.testing.assert_array_equal(a.images_numpy(f), a.images_numpy(f))
    np.testing.assert_array_equal(a.images_numpy(f), b.images_numpy(f))
    c = load_dataset("smallnorb", path=folder, seed=1)
    assert not np.array_equal(a.images_numpy(f), c.images_numpy(f))
    image, factors = a[5]
    np.testing.assert_array_equal(image.numpy(), a.images_numpy(factors[None])[0])


def test_fixed_instance_picks_the_kth_instance_id_of_each_category(norb):
    folder, by_key, _ = norb
    for k, inst in enumerate((0, 1, 4, 6)):
        ds = load_dataset("smallnorb", path=folder, instance=k)
        f = ds.index_to_factors(np.arange(len(ds)))
        out = ds.images_numpy(f)
        for factors, img in zip(f, out, strict=True):
            np.testing.assert_array_equal(img[0] * 255, by_key[stored_key(factors)][inst])


def test_random_instance_draws_per_sample_like_disentanglement_lib(norb):
    folder, by_key, _ = norb
    ds = load_dataset("smallnorb", path=folder, instance="random", seed=3)
    f = np.repeat([[1, 0, 2, 1]], 64, axis=0)
    out = ds.images_numpy(f)
    candidates = by_key[stored_key(f[0])]
    seen = {i for img in out for i, im in candidates.items() if np.array_equal(img[0] * 255, im)}
    assert seen == {0, 1, 4, 6}
    again = load_dataset("smallnorb", path=folder, instance="random", seed=3)
    np.testing.assert_array_equal(again.images_numpy(f), out)


def test_index_round_trip_over_corners(norb):
    folder, _, _ = norb
    ds = load_dataset("smallnorb", path=folder)
    corners = np.array(np.meshgrid(*[[0, s - 1] for s in ds.factor_sizes], indexing="ij"))
    corners = corners.reshape(4, -1).T
    np.testing.assert_array_equal(ds.index_to_factors(ds.factors_to_index(corners)), corners)
    assert ds.factors_to_index([[0, 0, 0, 1]])[0] == 1 and len(ds) == 24


def test_full_size_files_are_resized_with_lanczos(tmp_path):
    written = write_norb(tmp_path / "norb", size=96)
    ds = load_dataset("smallnorb", path=tmp_path / "norb", instance=0)
    by_key = left_images_by_key(written)
    f = np.array([[1, 1, 2, 0]])
    view = by_key[stored_key(f[0])][0]
    expected = np.asarray(Image.fromarray(view).resize((64, 64), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(ds.images_numpy(f)[0, 0] * 255, expected)


def assert_user_error(folder: Path, match: str, names: Path | None = None, **options) -> None:
    with pytest.raises(UntwineError, match=match) as err:
        load_dataset("smallnorb", path=folder, **options)
    message = str(err.value)
    assert str(names or folder) in message
    assert "smallnorb-5x46789x9x18x6x2x96x96-training" in message
    assert "cs.nyu.edu/~ylclab/data/norb-v1.0-small" in message


def prefix(folder: Path, split: str = "testing") -> Path:
    return folder / smallnorb.SPLITS[split]


def test_missing_file_raises(norb):
    folder, _, _ = norb
    path = Path(f"{prefix(folder)}-info.mat")
    path.unlink()
    assert_user_error(folder, "no such file", path)


def test_bad_magic_raises(norb):
    folder, _, _ = norb
    path = Path(f"{prefix(folder)}-cat.mat")
    path.write_bytes(b"\x00" * 40)
    assert_user_error(folder, "not a NORB binary matrix", path)


def test_images_stored_as_int32_raise(norb):
    folder, _, written = norb
    path = Path(f"{prefix(folder, 'training')}-dat.mat")
    write_matrix(path, written["training"][0].astype(np.int32))
    assert_user_error(folder, r"expected uint8 \(N, 2, 96, 96\)", path)


def test_truncated_file_raises(norb):
    folder, _, _ = norb
    path = Path(f"{prefix(folder)}-dat.mat")
    path.write_bytes(path.read_bytes()[:-100])
    assert_user_error(folder, "truncated", path)


def test_category_length_mismatch_raises(norb):
    folder, _, written = norb
    path = Path(f"{prefix(folder)}-cat.mat")
    write_matrix(path, written["testing"][1][:-1])
    assert_user_error(folder, r"expected int32 \(48,\)", path)


def test_info_with_wrong_columns_raises(norb):
    folder, _, written = norb
    path = Path(f"{prefix(folder)}-info.mat")
    write_matrix(path, written["testing"][2][:, :3])
    assert_user_error(folder, r"expected int32 \(48, 4\)", path)


def test_incomplete_grid_raises(norb):
    folder, _, written = norb
    dat, cat, info = written["testing"]
    p = prefix(folder)
    write_matrix(Path(f"{p}-dat.mat"), dat[1:])
    write_matrix(Path(f"{p}-cat.mat"), cat[1:])
    write_matrix(Path(f"{p}-info.mat"), info[1:])
    assert_user_error(folder, "not complete")


def test_bad_instance_option_raises(norb):
    folder, _, _ = norb
    with pytest.raises(UntwineError, match=r"instance=7.*\[0, 4\)"):
        load_dataset("smallnorb", path=folder, instance=7)
