"""Shapes3D: the twin's factor grid and rendering, and the 3dshapes.h5 loader."""

from __future__ import annotations

import hashlib
import itertools
import subprocess
import sys

import h5py
import numpy as np
import pytest

from untwine.data import load_dataset
from untwine.data.shapes3d import (
    FACTOR_NAMES,
    IMAGE_SIZE,
    hue_to_rgb,
    label_classes,
    load_shapes3d_file,
    scene_layers,
)
from untwine.errors import UntwineError

SIZES = (10, 10, 10, 8, 4, 15)
FLOOR, WALL, OBJECT = 0, 1, 2
SPHERE = 2


@pytest.fixture(scope="module")
def twin():
    return load_dataset("shapes3d")


@pytest.fixture(scope="module")
def layers():
    return scene_layers()


def _corners() -> np.ndarray:
    return np.array(list(itertools.product(*[(0, s - 1) for s in SIZES])), dtype=np.int64)


def test_factor_names_sizes_and_values_are_the_official_ones(twin):
    assert twin.factor_names == FACTOR_NAMES
    assert twin.factor_sizes == SIZES
    assert len(twin) == 480_000
    assert twin.image_shape == (3, 64, 64)
    for k in range(3):
        np.testing.assert_allclose(twin.factor_values[k], np.arange(10) / 10)
    np.testing.assert_allclose(twin.factor_values[3], 0.75 + np.arange(8) / 14)
    np.testing.assert_array_equal(twin.factor_values[4], [0, 1, 2, 3])
    np.testing.assert_allclose(twin.factor_values[5], -30 + np.arange(15) * 60 / 14)


def test_index_round_trip_over_random_indices_and_grid_corners(twin):
    rng = np.random.RandomState(0)
    index = np.concatenate([rng.randint(0, len(twin), 1000), [0, len(twin) - 1]])
    np.testing.assert_array_equal(twin.factors_to_index(twin.index_to_factors(index)), index)
    corners = _corners()
    np.testing.assert_array_equal(twin.index_to_factors(twin.factors_to_index(corners)), corners)


def test_index_is_c_order_with_orientation_fastest(twin):
    f = twin.index_to_factors(np.array([1, 15, 60, 480, 4800, 48_000, 479_999]))
    np.testing.assert_array_equal(
        f,
        [
            [0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 1, 0],
            [0, 0, 0, 1, 0, 0],
            [0, 0, 1, 0, 0, 0],
            [0, 1, 0, 0, 0, 0],
            [1, 0, 0, 0, 0, 0],
            [9, 9, 9, 7, 3, 14],
        ],
    )


def test_images_are_float32_in_unit_interval(twin):
    x = twin.images(_corners())
    assert x.shape == (64, 3, 64, 64)
    assert str(x.dtype) == "torch.float32"
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def test_hues_are_saturated_and_distinct():
    rgb = hue_to_rgb(np.arange(10) / 10)
    np.testing.assert_allclose(rgb.max(axis=1), 1.0)
    np.testing.assert_allclose(rgb.min(axis=1), 0.0, atol=1e-7)
    np.testing.assert_allclose(rgb[0], [1, 0, 0])
    assert len({tuple(c) for c in rgb.round(6)}) == 10


_DIGEST_CODE = (
    "import hashlib, numpy as np; from untwine.data import load_dataset; "
    "ds = load_dataset('shapes3d'); f = ds.sample_factors(32, np.random.RandomState(7)); "
    "print(hashlib.sha256(ds.images_numpy(f).tobytes()).hexdigest())"
)


def test_images_are_deterministic_across_calls_and_processes(twin):
    f = twin.sample_factors(32, np.random.RandomState(7))
    first = twin.images_numpy(f)
    np.testing.assert_array_equal(first, load_dataset("shapes3d").images_numpy(f))
    digest = hashlib.sha256(first.tobytes()).hexdigest()
    out = subprocess.run(
        [sys.executable, "-c", _DIGEST_CODE], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == digest


@pytest.mark.parametrize("k", range(6), ids=FACTOR_NAMES)
def test_every_value_of_every_factor_gives_a_different_image(twin, k):
    """For each sample, sweeping factor k over all its values gives pairwise distinct images."""
    base = twin.sample_factors(24, np.random.RandomState(k))
    for f in base:
        sweep = np.repeat(f[None], SIZES[k], axis=0)
        sweep[:, k] = np.arange(SIZES[k])
        x = twin.images_numpy(sweep).reshape(SIZES[k], -1)
        diff = np.abs(x[:, None] - x[None]).max(axis=-1)
        assert (diff[~np.eye(SIZES[k], dtype=bool)] > 1e-3).all(), f"factor {k} at {f}"


def test_random_pairs_of_grid_points_give_different_images(twin):
    rng = np.random.RandomState(3)
    a, b = rng.randint(0, len(twin), (2, 2000))
    keep = a != b
    xa = twin.images_numpy(twin.index_to_factors(a[keep])).reshape(keep.sum(), -1)
    xb = twin.images_numpy(twin.index_to_factors(b[keep])).reshape(keep.sum(), -1)
    assert (np.abs(xa - xb).max(axis=1) > 1e-3).all()


def test_the_480_scene_layers_are_pairwise_distinct(layers):
    flat = layers.reshape(480, -1)
    assert len({hashlib.sha256(row.tobytes()).hexdigest() for row in flat}) == 480


def test_every_pixel_is_lit_and_no_brighter_than_white(layers):
    total = layers.sum(axis=3)
    assert total.min() >= 0.38 - 1e-6
    assert total.max() <= 0.95 + 1e-6


@pytest.mark.parametrize("region", [FLOOR, WALL, OBJECT], ids=["floor", "wall", "object"])
def test_a_hue_changes_exactly_the_pixels_of_its_region(twin, layers, region):
    rng = np.random.RandomState(10 + region)
    for f in twin.sample_factors(40, rng):
        g = f.copy()
        g[region] = (f[region] + 1 + rng.randint(9)) % 10
        changed = (np.ptp(twin.images_numpy(np.stack([f, g])), axis=0) > 0).any(axis=0)
        mask = layers[f[3], f[4], f[5], region] > 0
        np.testing.assert_array_equal(changed, mask)


def test_every_region_is_visible_in_every_scene(layers):
    visible = (layers > 0).sum(axis=(4, 5))
    assert visible.min() >= 200


def test_scale_grows_the_object_strictly(layers):
    """The object's pixel count increases with scale, for every shape and view."""
    pixels = (layers[:, :, :, OBJECT] > 0).sum(axis=(-2, -1))
    assert (np.diff(pixels, axis=0) > 0).all()
    assert 0.05 * IMAGE_SIZE**2 < pixels.min() and pixels.max() < 0.4 * IMAGE_SIZE**2


def test_orientation_mirrors_the_room_about_the_middle_view(layers):
    """Azimuth −θ and +θ give mirror-image silhouettes; the room tilts, so views differ."""
    masks = layers > 0
    np.testing.assert_array_equal(masks[:, :, ::-1], masks[..., ::-1])
    middle = masks[:, :, 7]
    np.testing.assert_array_equal(middle, middle[..., ::-1])
    floor = masks[0, SPHERE, :, FLOOR]
    assert all((floor[i] != floor[j]).any() for i, j in itertools.combinations(range(15), 2))


def test_sphere_silhouette_ignores_orientation_but_its_shading_does_not(layers):
    """The documented symmetry: a sphere looks the same from every azimuth; light and room move."""
    sphere = layers[:, SPHERE, :, OBJECT]
    masks = sphere > 0
    assert (masks == masks[:, :1]).all()
    for i, j in itertools.combinations(range(15), 2):
        assert np.abs(sphere[:, i] - sphere[:, j]).max() > 1e-3


def test_shapes_have_different_silhouettes_at_every_scale_and_view(layers):
    masks = layers[:, :, :, OBJECT] > 0
    for a, b in itertools.combinations(range(4), 2):
        assert (masks[:, a] != masks[:, b]).sum(axis=(-2, -1)).min() >= 10


# The loader, on small files in the official format: labels are factor VALUES.

VALUES = (
    np.array([0.0, 0.5]),
    np.array([0.1, 0.4, 0.8]),
    np.array([0.3, 0.9]),
    np.array([0.75, 1.25]),
    np.array([0.0, 1.0, 2.0, 3.0]),
    np.linspace(-30.0, 30.0, 3),
)
SMALL_SIZES = tuple(len(v) for v in VALUES)


def _small_file_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 64, 64, 3) uint8, labels (N, 6) float64 values with float32 noise) in C order."""
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in SMALL_SIZES], indexing="ij"), -1)
    classes = grid.reshape(-1, 6)
    labels = np.stack([VALUES[k][classes[:, k]] for k in range(6)], axis=1)
    labels = labels.astype(np.float32).astype(np.float64)  # 0.1 -> 0.10000000149..., as in files
    images = np.random.RandomState(0).randint(0, 256, (len(labels), 64, 64, 3), dtype=np.uint8)
    return images, labels


def _write(path, images=None, labels=None, **extra) -> None:
    with h5py.File(path, "w") as h5:
        if images is not None:
            h5.create_dataset("images", data=images)
        if labels is not None:
            h5.create_dataset("labels", data=labels)
        for key, value in extra.items():
            h5.create_dataset(key, data=value)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    images, labels = _small_file_arrays()
    path = tmp_path_factory.mktemp("shapes3d") / "3dshapes.h5"
    _write(path, images, labels)
    return path, images, labels


def test_label_classes_are_value_ranks_despite_float_noise():
    labels = np.array([[0.30000001, -30.0], [0.1, 0.0], [0.29999999, 30.0], [0.1, 0.0]])
    classes, values = label_classes(labels)
    np.testing.assert_array_equal(classes, [[1, 0], [0, 1], [1, 2], [0, 1]])
    np.testing.assert_allclose(values[0], [0.1, 0.3])
    np.testing.assert_allclose(values[1], [-30.0, 0.0, 30.0])


@pytest.mark.parametrize("in_memory", [False, True], ids=["lazy", "in_memory"])
def test_loader_reads_the_grid_from_the_labels_and_images_round_trip(small, in_memory):
    path, images, _ = small
    ds = load_dataset("shapes3d", path=path, in_memory=in_memory)
    assert ds.factor_names == FACTOR_NAMES
    assert ds.factor_sizes == SMALL_SIZES
    for got, want in zip(ds.factor_values, VALUES, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)
    assert ds.image_shape == (3, 64, 64) and ds.source == "file"
    rng = np.random.RandomState(1)
    index = np.concatenate([rng.randint(0, len(ds), 50), [0, len(ds) - 1, 7, 7]])
    x = ds.images(ds.index_to_factors(index)).numpy()
    expected = images[index].transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(x, expected)


def test_loader_classes_follow_the_value_ranks_row_by_row(small):
    path, _, labels = small
    ds = load_shapes3d_file(path)
    classes = ds.index_to_factors(np.arange(len(ds)))
    np.testing.assert_allclose(ds.space.factor_values(classes), labels, atol=1e-6)


def _bad_files(tmp_path, images, labels):
    swapped = labels.copy()
    swapped[[3, 4]] = swapped[[4, 3]]
    return {
        "not an HDF5 file": lambda p: p.write_text("images,labels\n"),
        "truncated": lambda p: (_write(p, images, labels), _truncate(p)),
        "lacks dataset(s) ['labels']": lambda p: _write(p, images),
        "'images' has shape (288, 32, 32, 3)": lambda p: _write(p, images[:, :32, :32], labels),
        "'images' has dtype float32": lambda p: _write(p, images.astype(np.float32), labels),
        "'labels' has shape (288, 5)": lambda p: _write(p, images, labels[:, :5]),
        "'labels' has dtype int64": lambda p: _write(p, images, labels.astype(np.int64)),
        "287 rows but the distinct label values give": lambda p: _write(
            p, images[:-1], labels[:-1]
        ),
        "not in C order": lambda p: _write(p, images, swapped),
    }


def _truncate(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_loader_errors_name_the_file_the_problem_and_the_official_source(small, tmp_path):
    _, images, labels = small
    for i, (problem, make) in enumerate(_bad_files(tmp_path, images, labels).items()):
        path = tmp_path / f"bad{i}.h5"
        make(path)
        with pytest.raises(UntwineError) as err:
            load_shapes3d_file(path)
        message = str(err.value)
        assert problem in message, message
        assert str(path) in message and "storage.googleapis.com/3d-shapes/3dshapes.h5" in message


def test_loader_missing_file_is_a_clear_error(tmp_path):
    missing = tmp_path / "3dshapes.h5"
    with pytest.raises(UntwineError, match="no such file.*3dshapes.h5"):
        load_shapes3d_file(missing)
    with pytest.raises(UntwineError, match="no such file.*3dshapes"):
        load_dataset("shapes3d", path=missing)
