"""dSprites: the twin's geometry, symmetries and indexing; the npz / hdf5 loaders on small files."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from untwine.data import dsprites, load_dataset
from untwine.data.factors import FactorSpace
from untwine.errors import UntwineError

SIZES = (3, 6, 40, 32, 32)
NEAR_DEGREES = 7.0
"""Two orientations of a shape may rasterise identically only this close, modulo its period."""


@pytest.fixture(scope="module")
def twin():
    return load_dataset("dsprites")


def near_symmetric(shape: np.ndarray, o1: np.ndarray, o2: np.ndarray) -> np.ndarray:
    """Orientation classes within NEAR_DEGREES of each other modulo the shape's symmetry."""
    order = np.array([dsprites.SYMMETRY[s] for s in dsprites.SHAPES])[shape]
    period = 360.0 / order
    diff = np.mod((o1 % 39 - o2 % 39) * 360.0 / 39, period)
    return np.minimum(diff, period - diff) <= NEAR_DEGREES


def centroid(img: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(img[0])
    return rows.mean(), cols.mean()


# ------------------------------------------------------------------ twin: grid and indexing


def test_twin_has_official_names_sizes_and_values(twin):
    assert twin.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert twin.factor_sizes == SIZES
    assert len(twin) == 737_280
    assert twin.image_shape == (1, 64, 64)
    np.testing.assert_array_equal(twin.factor_values[0], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(twin.factor_values[1], [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert twin.factor_values[2][0] == 0.0 and twin.factor_values[2][-1] == 2 * np.pi
    np.testing.assert_allclose(np.diff(twin.factor_values[2]), 2 * np.pi / 39)
    np.testing.assert_allclose(twin.factor_values[3], np.arange(32) / 31)


def test_index_round_trip_over_random_indices_and_corners(twin):
    rng = np.random.RandomState(0)
    idx = rng.randint(len(twin), size=2000)
    np.testing.assert_array_equal(twin.factors_to_index(twin.index_to_factors(idx)), idx)
    corners = np.stack(np.meshgrid(*[[0, s - 1] for s in SIZES], indexing="ij"), -1)
    corners = corners.reshape(-1, 5)
    np.testing.assert_array_equal(twin.index_to_factors(twin.factors_to_index(corners)), corners)
    assert twin.factors_to_index([[0, 0, 0, 0, 1]])[0] == 1  # posY is fastest
    assert twin.factors_to_index([[1, 0, 0, 0, 0]])[0] == 6 * 40 * 32 * 32
    assert twin.factors_to_index([list(np.array(SIZES) - 1)])[0] == len(twin) - 1


def test_getitem_matches_images_of_index_factors(twin):
    image, factors = twin[123_457]
    np.testing.assert_array_equal(factors, twin.index_to_factors([123_457])[0])
    np.testing.assert_array_equal(image.numpy(), twin.images_numpy(factors[None])[0])


def test_images_are_binary_float32_nchw(twin):
    x = twin.images(twin.sample_factors(64, np.random.RandomState(1)))
    assert x.dtype == torch.float32 and tuple(x.shape) == (64, 1, 64, 64)
    assert set(np.unique(x.numpy())) <= {0.0, 1.0}


def test_same_factors_give_same_pixels_across_calls_and_processes(twin):
    f = twin.sample_factors(256, np.random.RandomState(2))
    a = twin.images_numpy(f)
    np.testing.assert_array_equal(a, twin.images_numpy(f.copy()))
    np.testing.assert_array_equal(a[::-1], twin.images_numpy(f[::-1]))
    code = (
        "import hashlib, numpy as np; from untwine.data import load_dataset;"
        "d = load_dataset('dsprites');"
        "x = d.images_numpy(d.sample_factors(256, np.random.RandomState(2)));"
        "print(hashlib.sha256(x.tobytes()).hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == hashlib.sha256(a.tobytes()).hexdigest()


def test_pre_render_is_cached_across_load_dataset_calls():
    load_dataset("dsprites").images_numpy(np.zeros((1, 5), dtype=np.int64))
    before = dsprites.sprite_bank.cache_info()
    load_dataset("dsprites").images_numpy(np.zeros((1, 5), dtype=np.int64))
    after = dsprites.sprite_bank.cache_info()
    assert after.misses == before.misses


# ------------------------------------------------------------------ twin: geometry


def test_axis_aligned_square_is_the_closed_form_block(twin):
    for j, scale in enumerate(twin.factor_values[1]):
        half = int(np.floor(10.5 * scale))
        img = twin.images_numpy([[0, j, 0, 5, 9]])[0, 0]
        expected = np.zeros((64, 64), dtype=np.float32)
        expected[16 + 9 - half : 16 + 9 + half + 1, 16 + 5 - half : 16 + 5 + half + 1] = 1
        np.testing.assert_array_equal(img, expected)


def test_ellipse_at_orientation_zero_is_wider_than_tall(twin):
    img = twin.images_numpy([[1, 5, 0, 16, 16]])[0, 0]
    rows, cols = np.nonzero(img)
    assert cols.max() - cols.min() + 1 == 2 * 14 + 1
    assert rows.max() - rows.min() + 1 == 2 * 7 + 1


def test_heart_at_orientation_zero_is_mirror_symmetric_with_tip_down(twin):
    img = twin.images_numpy([[2, 5, 0, 16, 16]])[0, 0]
    np.testing.assert_array_equal(img[:, 1:], img[:, 1:][:, ::-1])  # centre column 32
    rows = np.flatnonzero(img.any(axis=1))
    widths = img.sum(axis=1)
    assert widths[rows[-1]] <= 3 < widths.max()  # a pointed bottom
    top = img[rows[0]]
    assert top[32] == 0 and top.sum() >= 2  # two lobes with a dip between them
    assert rows[0] <= 32 - 12 and rows[-1] >= 32 + 12


def test_pos_x_moves_centroid_right_and_pos_y_down_one_pixel_per_class(twin):
    rng = np.random.RandomState(3)
    base = twin.sample_factors(40, rng)
    for k, axis in ((3, 1), (4, 0)):
        f = np.repeat(base, 32, axis=0)
        f[:, k] = np.tile(np.arange(32), len(base))
        imgs = twin.images_numpy(f).reshape(len(base), 32, 1, 64, 64)
        for sweep in imgs:
            c = np.array([centroid(im)[axis] for im in sweep])
            np.testing.assert_allclose(np.diff(c), 1.0, atol=1e-9)
    square = twin.images_numpy([[0, 2, 0, 0, 0], [0, 2, 0, 31, 31]])
    assert centroid(square[0]) == (16.0, 16.0) and centroid(square[1]) == (47.0, 47.0)


def test_scale_grows_pixel_count_strictly_for_every_shape_and_orientation():
    counts = dsprites.sprite_bank().sum(axis=(-1, -2))  # (3, 6, 40)
    assert (np.diff(counts, axis=1) > 0).all()


def test_largest_sprite_never_leaves_the_frame(twin):
    counts = dsprites.sprite_bank().sum(axis=(-1, -2)).reshape(-1)
    sprite = np.stack(np.unravel_index(np.arange(720), (3, 6, 40)), -1)
    for px, py in ((0, 0), (31, 0), (0, 31), (31, 31)):
        f = np.column_stack([sprite, np.full(720, px), np.full(720, py)])
        np.testing.assert_array_equal(twin.images_numpy(f).sum(axis=(1, 2, 3)), counts)


# ------------------------------------------------------------------ twin: symmetries


def test_orientation_two_pi_is_orientation_zero_exactly(twin):
    f = twin.sample_factors(500, np.random.RandomState(4))
    f[:, 2] = 0
    g = f.copy()
    g[:, 2] = 39
    np.testing.assert_array_equal(twin.images_numpy(f), twin.images_numpy(g))
    bank = dsprites.sprite_bank()
    np.testing.assert_array_equal(bank[:, :, 0], bank[:, :, 39])


@pytest.mark.parametrize("angle", [0.0, 0.3, 0.7853981633974483, 1.2, 2.0, 4.1])
def test_square_repeats_every_quarter_turn_and_ellipse_every_half_turn(angle):
    for scale in (0.5, 0.8, 1.0):
        sq = dsprites.sprite("square", scale, angle)
        np.testing.assert_array_equal(sq, dsprites.sprite("square", scale, angle + np.pi / 2))
        np.testing.assert_array_equal(sq, dsprites.sprite("square", scale, angle + np.pi))
        el = dsprites.sprite("ellipse", scale, angle)
        np.testing.assert_array_equal(el, dsprites.sprite("ellipse", scale, angle + np.pi))
        assert not np.array_equal(el, dsprites.sprite("ellipse", scale, angle + np.pi / 2))
        heart = dsprites.sprite("heart", scale, angle)
        assert not np.array_equal(heart, dsprites.sprite("heart", scale, angle + np.pi))


def test_identical_orientations_occur_only_at_documented_near_symmetries():
    bank = dsprites.sprite_bank().reshape(3, 6, 40, -1)
    o1, o2 = np.triu_indices(40, k=1)
    for i in range(3):
        same = (bank[i][:, o1] == bank[i][:, o2]).all(axis=-1)  # (6, n_pairs)
        allowed = near_symmetric(np.full(o1.shape, i), o1, o2)
        assert not (same & ~allowed).any(), dsprites.SHAPES[i]
        assert same[:, (o1 == 0) & (o2 == 39)].all()
    heart_same = (bank[2][:, o1] == bank[2][:, o2]).all(axis=-1)
    assert heart_same.sum() == 6  # only 0 == 39, at every scale


def test_square_near_quarter_turn_is_nearly_identical_and_heart_half_turn_is_not(twin):
    def iou(a, b):
        return (a * b).sum() / np.maximum(a, b).sum()

    square = twin.images_numpy([[0, 5, 3, 16, 16], [0, 5, 13, 16, 16], [0, 5, 8, 16, 16]])
    assert iou(square[0], square[1]) > 0.9  # 92.3° apart: 2.3° off a symmetry
    assert iou(square[0], square[2]) < 0.9  # 46° apart
    ellipse = twin.images_numpy([[1, 5, 3, 16, 16], [1, 5, 23, 16, 16], [1, 5, 13, 16, 16]])
    assert iou(ellipse[0], ellipse[1]) > 0.8  # 184.6° apart
    assert iou(ellipse[0], ellipse[2]) < 0.5  # 92.3° apart
    heart = twin.images_numpy([[2, 5, 3, 16, 16], [2, 5, 23, 16, 16]])
    assert iou(heart[0], heart[1]) < 0.8


# ------------------------------------------------------------------ twin: factors matter


def test_every_factor_changes_the_image_outside_documented_symmetries(twin):
    rng = np.random.RandomState(5)
    f = twin.sample_factors(2000, rng)
    base = twin.images_numpy(f).reshape(len(f), -1)
    for k, size in enumerate(SIZES):
        g = f.copy()
        g[:, k] = (f[:, k] + rng.randint(1, size, size=len(f))) % size
        changed = (twin.images_numpy(g).reshape(len(f), -1) != base).any(axis=1)
        exempt = np.zeros(len(f), dtype=bool)
        if k == 2:
            exempt = near_symmetric(f[:, 0], f[:, 2], g[:, 2])
            assert exempt.mean() < 0.1
        assert changed[~exempt].all(), twin.factor_names[k]


def test_random_pairs_of_different_combinations_are_distinct(twin):
    rng = np.random.RandomState(6)
    f = twin.sample_factors(5000, rng)
    g = twin.sample_factors(5000, rng)
    same_sprite_pose = (f[:, [0, 1, 3, 4]] == g[:, [0, 1, 3, 4]]).all(axis=1)
    keep = ~(f == g).all(axis=1) & ~(same_sprite_pose & near_symmetric(f[:, 0], f[:, 2], g[:, 2]))
    a = twin.images_numpy(f[keep]).reshape(keep.sum(), -1)
    b = twin.images_numpy(g[keep]).reshape(keep.sum(), -1)
    assert (a != b).any(axis=1).all()


def test_bad_factors_raise_untwine_error(twin):
    with pytest.raises(UntwineError, match="out of range"):
        twin.images([[3, 0, 0, 0, 0]])
    with pytest.raises(UntwineError, match=r"shape \(n, 5\)"):
        twin.images([[0, 0, 0, 0]])


# ------------------------------------------------------------------ official files

SMALL = (1, 3, 2, 4, 3, 2)  # color, shape, scale, orientation, posX, posY


def small_grid(sizes=SMALL, seed=0):
    """Classes, values, binary images and metadata of a small file in the official layout."""
    names = ("color", "shape", "scale", "orientation", "posX", "posY")
    values = {
        "color": np.array([1.0]),
        "shape": np.array([1.0, 2.0, 3.0])[: sizes[1]],
        "scale": np.linspace(0.5, 1, sizes[2]),
        "orientation": np.linspace(0, 2 * np.pi, sizes[3]),
        "posX": np.linspace(0, 1, sizes[4]),
        "posY": np.linspace(0, 1, sizes[5]),
    }
    n = int(np.prod(sizes))
    classes = np.stack(np.unravel_index(np.arange(n), sizes), -1).astype(np.int64)
    latents_values = np.stack([values[nm][classes[:, k]] for k, nm in enumerate(names)], -1)
    imgs = np.random.RandomState(seed).randint(0, 2, size=(n, 64, 64)).astype(np.uint8)
    metadata = {
        "date": "April 2017",
        "description": "Disentanglement test Sprites dataset.",
        "version": 1,
        "latents_names": names,
        "latents_possible_values": values,
        "latents_sizes": np.array(sizes),
        "author": "lmatthey@google.com",
        "title": "dSprites dataset",
    }
    return classes, latents_values, imgs, metadata


def write_npz(path: Path, compressed: bool = True, **override) -> Path:
    classes, latents_values, imgs, metadata = small_grid()
    arrays = dict(
        imgs=imgs, latents_values=latents_values, latents_classes=classes, metadata=metadata
    )
    arrays.update(override)
    save = np.savez_compressed if compressed else np.savez
    save(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def write_h5(path: Path, classes=None, imgs=None, skip=()) -> Path:
    c, v, i, _ = small_grid()
    with h5py.File(path, "w") as h5:
        data = {
            "imgs": i if imgs is None else imgs,
            "latents/classes": c if classes is None else classes,
            "latents/values": v,
        }
        for key, arr in data.items():
            if key not in skip:
                h5.create_dataset(key, data=arr)
    return path


def assert_round_trip(ds, imgs: np.ndarray, classes: np.ndarray) -> None:
    factors = classes[:, 1:]
    np.testing.assert_array_equal(ds.factors_to_index(factors), np.arange(len(classes)))
    out = ds.images_numpy(factors)
    assert out.dtype == np.float32 and out.shape == (len(classes), 1, 64, 64)
    np.testing.assert_array_equal(out[:, 0], imgs.astype(np.float32))
    perm = np.random.RandomState(1).permutation(len(classes))
    np.testing.assert_array_equal(ds.images_numpy(factors[perm])[:, 0], imgs[perm])


@pytest.mark.parametrize("compressed", [True, False])
def test_npz_loader_round_trips_images_and_takes_sizes_from_metadata(
    tmp_path, monkeypatch, compressed
):
    monkeypatch.setattr(dsprites, "_CHUNK", 7)  # stream across several chunks
    path = write_npz(tmp_path / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz", compressed)
    ds = load_dataset("dsprites", path=path)
    classes, _, imgs, meta = small_grid()
    assert ds.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert ds.factor_sizes == SMALL[1:]
    for k, name in enumerate(ds.factor_names):
        np.testing.assert_array_equal(ds.factor_values[k], meta["latents_possible_values"][name])
    assert_round_trip(ds, imgs, classes)
    assert ds.array.shape == (len(imgs), 64, 8)  # kept bit-packed, 1/8 of the bytes


def test_npz_loader_accepts_bytes_keyed_metadata(tmp_path):
    _, _, _, meta = small_grid()
    raw = {k.encode(): v for k, v in meta.items()}
    raw[b"latents_names"] = tuple(n.encode() for n in meta["latents_names"])
    raw[b"latents_possible_values"] = {
        k.encode(): v for k, v in meta["latents_possible_values"].items()
    }
    ds = load_dataset("dsprites", path=write_npz(tmp_path / "d.npz", metadata=raw))
    assert ds.factor_sizes == SMALL[1:]


def test_npz_metadata_is_read_as_latin1_pickle(tmp_path):
    path = write_npz(tmp_path / "d.npz")
    with np.load(path, allow_pickle=True, encoding="latin1") as data:
        assert data["metadata"].dtype == object
        assert data["metadata"][()]["title"] == "dSprites dataset"


def test_hdf5_loader_round_trips_images_and_derives_values(tmp_path):
    ds = load_dataset("dsprites", path=write_h5(tmp_path / "dsprites.hdf5"))
    classes, _, imgs, meta = small_grid()
    assert ds.factor_sizes == SMALL[1:]
    np.testing.assert_allclose(ds.factor_values[1], meta["latents_possible_values"]["scale"])
    np.testing.assert_allclose(ds.factor_values[2], meta["latents_possible_values"]["orientation"])
    assert isinstance(ds.array, h5py.Dataset)  # read per batch, not loaded
    assert_round_trip(ds, imgs, classes)


def test_loaded_file_and_twin_share_indexing():
    space = FactorSpace.from_sizes(dsprites.NAMES, SMALL[1:])
    classes = small_grid()[0]
    np.testing.assert_array_equal(space.index_to_factors(np.arange(len(classes))), classes[:, 1:])


def assert_user_error(path: Path, match: str) -> None:
    with pytest.raises(UntwineError, match=match) as err:
        load_dataset("dsprites", path=path)
    message = str(err.value)
    assert str(path) in message
    assert "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz" in message
    assert "github.com/deepmind/dsprites-dataset" in message


def test_missing_file_raises_with_where_to_get_it(tmp_path):
    assert_user_error(tmp_path / "nope.npz", "no such file")


def test_npz_missing_key_raises(tmp_path):
    assert_user_error(write_npz(tmp_path / "d.npz", latents_classes=None), "latents_classes")


def test_npz_metadata_without_sizes_raises(tmp_path):
    meta = small_grid()[3]
    del meta["latents_sizes"]
    assert_user_error(write_npz(tmp_path / "d.npz", metadata=meta), "latents_sizes")


def test_npz_wrong_image_shape_raises(tmp_path):
    imgs = np.zeros((144, 32, 32), dtype=np.uint8)
    assert_user_error(write_npz(tmp_path / "d.npz", imgs=imgs), r"expected uint8 \(144, 64, 64\)")


def test_npz_non_binary_images_raise(tmp_path):
    imgs = np.full((144, 64, 64), 255, dtype=np.uint8)
    assert_user_error(write_npz(tmp_path / "d.npz", imgs=imgs), r"values > 1")


def test_npz_rows_out_of_c_order_raise(tmp_path):
    classes = small_grid()[0][np.random.RandomState(0).permutation(144)]
    assert_user_error(write_npz(tmp_path / "d.npz", latents_classes=classes), "not in C order")


def test_npz_truncated_file_raises(tmp_path):
    path = write_npz(tmp_path / "d.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert_user_error(path, "unreadable")


def test_hdf5_missing_key_raises(tmp_path):
    assert_user_error(write_h5(tmp_path / "d.h5", skip=("latents/classes",)), "latents/classes")


def test_hdf5_wrong_image_shape_raises(tmp_path):
    imgs = np.zeros((144, 64, 32), dtype=np.uint8)
    assert_user_error(write_h5(tmp_path / "d.h5", imgs=imgs), r"imgs is uint8 \(144, 64, 32\)")


def test_hdf5_images_that_are_not_uint8_raise(tmp_path):
    imgs = np.zeros((144, 64, 64), dtype=np.float32)
    assert_user_error(write_h5(tmp_path / "d.h5", imgs=imgs), r"imgs is float32 .*expected uint8")


def test_hdf5_rows_out_of_c_order_raise(tmp_path):
    classes = small_grid()[0][::-1].copy()
    assert_user_error(write_h5(tmp_path / "d.h5", classes=classes), "not in C order")


def test_hdf5_truncated_file_raises(tmp_path):
    path = write_h5(tmp_path / "d.h5")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    assert_user_error(path, "hdf5")


def test_unknown_suffix_raises(tmp_path):
    path = tmp_path / "d.zip"
    path.write_bytes(b"x")
    assert_user_error(path, "unknown file type")
