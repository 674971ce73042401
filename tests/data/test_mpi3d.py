"""MPI3D: the twin's factor semantics, and the loader on files written in the official format."""

from __future__ import annotations

import io
import itertools
import logging
import os
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from numpy.lib import format as npy_format

from untwine.data import load_dataset
from untwine.data.mpi3d import (
    CHALLENGE,
    COMPLEX,
    FACTOR_NAMES,
    FULL,
    infer_layout,
    load_mpi3d,
    render,
    render_layers,
)
from untwine.errors import UntwineError

ROW_BYTES = 64 * 64 * 3


@pytest.fixture(scope="module")
def twin():
    return load_dataset("mpi3d")


@pytest.fixture(scope="module")
def base():
    """1,000 random factor combinations of the full grid (fixed seed)."""
    return load_dataset("mpi3d").sample_factors(1000, np.random.RandomState(0))


# ---------------------------------------------------------------- the twin


def test_twin_has_the_official_factor_names_sizes_and_shape(twin):
    assert twin.factor_names == FACTOR_NAMES
    assert twin.factor_sizes == (6, 6, 2, 3, 3, 40, 40)
    assert len(twin) == 1_036_800
    assert twin.image_shape == (3, 64, 64)
    names = twin.info["value_names"]
    assert names["object_color"] == ("white", "green", "red", "blue", "brown", "olive")
    assert names["object_shape"] == ("cone", "cube", "cylinder", "hexagonal", "pyramid", "sphere")
    assert names["background_color"] == ("purple", "sea green", "salmon")


def test_index_round_trip_matches_the_official_formula(twin):
    corners = np.array(list(itertools.product(*[(0, s - 1) for s in twin.factor_sizes])))
    f = np.concatenate([corners, twin.sample_factors(500, np.random.RandomState(1))])
    index = twin.factors_to_index(f)
    weights = np.array([172800, 28800, 14400, 4800, 1600, 40, 1])  # README: C order
    np.testing.assert_array_equal(index, f @ weights)
    np.testing.assert_array_equal(twin.index_to_factors(index), f)
    assert index.max() == 1_036_799


def test_images_are_float32_in_unit_range(twin, base):
    x = twin.images(base[:256])
    assert x.shape == (256, 3, 64, 64) and str(x.dtype) == "torch.float32"
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def test_render_is_the_composite_of_its_layers(base):
    f = base[:300]
    layer = render_layers(f)
    img = layer["background"] * (1 - layer["arm_alpha"][:, None]) + layer["arm_grey"][:, None]
    img = img * (1 - layer["object_alpha"][:, None])
    img += layer["object_rgb"][:, :, None, None] * layer["object_diffuse"][:, None]
    img += layer["object_specular"][:, None]
    np.testing.assert_allclose(render(f), np.clip(img, 0, 1), atol=1e-6)


def test_rendering_is_deterministic_across_calls(twin, base):
    np.testing.assert_array_equal(twin.images_numpy(base[:200]), twin.images_numpy(base[:200]))


def test_rendering_is_deterministic_in_a_fresh_process(twin, base, tmp_path):
    np.save(tmp_path / "f.npy", base[:64])
    code = (
        "import numpy as np; from untwine.data import load_dataset; "
        f"f = np.load(r'{tmp_path / 'f.npy'}'); "
        f"np.save(r'{tmp_path / 'x.npy'}', load_dataset('mpi3d').images_numpy(f))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), twin.images_numpy(base[:64]))


@pytest.mark.parametrize("k", range(7), ids=FACTOR_NAMES)
def test_every_factor_changes_every_image(twin, base, k):
    """Moving one factor to its next class (wrapping) changes every one of 1,000 images by at
    least 0.05 in some pixel, including the smallest steps of the two axes."""
    other = base.copy()
    other[:, k] = (other[:, k] + 1) % twin.factor_sizes[k]
    diff = np.abs(twin.images_numpy(other) - twin.images_numpy(base)).reshape(len(base), -1)
    assert diff.max(axis=1).min() > 0.05


@pytest.mark.parametrize("shape", [1, 5], ids=["cube", "sphere"])
def test_every_axis_step_changes_the_image_from_every_camera(twin, shape):
    """Exhaustive over camera x horizontal x vertical for a large object: each single step of
    either axis changes the image by at least 0.05 in some pixel."""
    grid = itertools.product([0], [shape], [1], range(3), [0], range(40), range(40))
    x = twin.images_numpy(np.array(list(grid))).reshape(3, 40, 40, -1)
    assert np.abs(np.diff(x, axis=1)).max(-1).min() > 0.05
    assert np.abs(np.diff(x, axis=2)).max(-1).min() > 0.05


def test_random_pairs_of_distinct_factors_give_distinct_images(twin, base):
    other = twin.sample_factors(len(base), np.random.RandomState(2))
    distinct = (other != base).any(axis=1)
    diff = np.abs(twin.images_numpy(other) - twin.images_numpy(base)).reshape(len(base), -1)
    assert distinct.sum() == len(base)
    assert diff.max(axis=1).min() > 0.05


def test_horizontal_axis_moves_the_object_right_strictly(base):
    """The object's centroid column increases strictly with horizontal_axis for every camera,
    vertical position (every 6th), shape and size."""
    grid = itertools.product([0], [1, 4], range(2), range(3), [0], range(40), range(0, 40, 6))
    alpha = render_layers(np.array(list(grid)))["object_alpha"]
    cols = (alpha.sum(1) * (np.arange(64) + 0.5)).sum(1) / alpha.sum((1, 2))
    cols = cols.reshape(2, 2, 3, 40, -1)
    assert np.diff(cols, axis=3).min() > 0.2


def test_vertical_axis_raises_the_object_strictly():
    grid = itertools.product([0], [1, 4], range(2), range(3), [0], range(0, 40, 6), range(40))
    alpha = render_layers(np.array(list(grid)))["object_alpha"]
    rows = (alpha.sum(2) * (np.arange(64) + 0.5)).sum(1) / alpha.sum((1, 2))
    assert np.diff(rows.reshape(2, 2, 3, -1, 40), axis=4).max() < -0.2


def test_the_whole_object_always_stays_in_the_frame(base):
    """The object's patch never leaves the frame, so no object pixel is ever cropped: its
    alpha mass depends only on shape, size and camera, not on where the arm holds it."""
    grid = itertools.product([0], range(6), range(2), range(3), [0], [0, 20, 39], [0, 20, 39])
    alpha = render_layers(np.array(list(grid)))["object_alpha"].sum((1, 2)).reshape(36, 9)
    np.testing.assert_allclose(alpha, alpha[:, :1].repeat(9, axis=1), rtol=0.02)


def test_object_color_changes_only_object_pixels(twin, base):
    other = base.copy()
    other[:, 0] = (other[:, 0] + np.random.RandomState(3).randint(1, 6, len(base))) % 6
    changed = (twin.images_numpy(other) != twin.images_numpy(base)).any(axis=1)
    on_object = render_layers(base)["object_alpha"] > 0
    assert changed.any(axis=(1, 2)).all()
    assert not (changed & ~on_object).any()


def test_background_color_changes_only_background_pixels(twin, base):
    other = base.copy()
    other[:, 4] = (other[:, 4] + 1) % 3
    changed = (twin.images_numpy(other) != twin.images_numpy(base)).any(axis=1)
    layer = render_layers(base)
    visible = (1 - layer["arm_alpha"]) * (1 - layer["object_alpha"]) > 0
    assert not (changed & ~visible).any()
    assert changed.sum(axis=(1, 2)).min() > 64 * 64 // 2  # most of the frame is background


# ---------------------------------------------------------------- layouts


def test_layout_inference_for_both_official_sizes():
    assert infer_layout(1_036_800) is FULL
    assert FULL.sizes == (6, 6, 2, 3, 3, 40, 40)
    assert infer_layout(460_800) is CHALLENGE
    assert CHALLENGE.sizes == (4, 4, 2, 3, 3, 40, 40)
    assert infer_layout(460_800, variant="complex") is COMPLEX
    assert COMPLEX.value_names[1] == ("coffee-cup", "tennis-ball", "croissant", "beer-cup")
    assert CHALLENGE.value_names[1] == ("cone", "cube", "hexagonal prism", "sphere")


def test_layout_for_an_unknown_size_lists_both_known_layouts():
    with pytest.raises(UntwineError, match=r"1,036,800.*460,800|460,800.*1,036,800"):
        infer_layout(1000)


def test_factor_sizes_override_gives_a_custom_layout():
    layout = infer_layout(240, factor_sizes=(2, 1, 2, 1, 3, 4, 5))
    assert layout.sizes == (2, 1, 2, 1, 3, 4, 5)
    with pytest.raises(UntwineError, match="product"):
        infer_layout(241, factor_sizes=(2, 1, 2, 1, 3, 4, 5))


# ---------------------------------------------------------------- files in the official format


def _npy_header(shape: tuple[int, ...], dtype: str = "|u1") -> bytes:
    out = io.BytesIO()
    npy_format.write_array_header_1_0(out, {"descr": dtype, "fortran_order": False, "shape": shape})
    return out.getvalue()


def write_sparse_npz(path, n: int, rows: dict[int, np.ndarray], short_by: int = 0) -> None:
    """A ZIP_STORED, zip64 npz with one member images.npy of shape (n, 64, 64, 3) uint8, whose
    data region is sparse on disk except for ``rows``. The CRC is fake (the loader never
    checks it); ``short_by`` bytes are cut from the member to make a truncated file."""
    head = _npy_header((n, 64, 64, 3))
    size = len(head) + n * ROW_BYTES - short_by
    name = b"images.npy"
    zip64 = struct.pack("<HHQQ", 1, 16, size, size)
    ff = 0xFFFFFFFF
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0x21, 0, ff, ff, 10, 20)
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0x21, 0, ff, ff, 10, 20, 0, 0, 0, 0, 0
    )
    with open(path, "wb") as f:
        f.write(local + name + zip64)
        start = f.tell() + len(head)
        f.write(head)
        for i, image in rows.items():
            f.seek(start + i * ROW_BYTES)
            f.write(image.astype(np.uint8).tobytes())
        cd_offset = start - len(head) + size
        f.seek(cd_offset)
        f.truncate()
        f.write(central + name + zip64)
        eocd64 = f.tell()
        cd_size = eocd64 - cd_offset
        f.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, 1, 1, cd_size, cd_offset))
        f.write(struct.pack("<IIQI", 0x07064B50, 0, eocd64, 1))
        f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, cd_size, ff, 0))


def _pokes(n: int) -> dict[int, np.ndarray]:
    """Known images at a few rows: the first, one step of each factor, the last."""
    rng = np.random.RandomState(4)
    at = [0, 1, 40, 1600, 4800, 14400, 28800, n // 2 + 12345, n - 1]
    return {i: rng.randint(1, 256, (64, 64, 3)) for i in at}


@pytest.mark.parametrize(("n", "layout"), [(460_800, CHALLENGE), (1_036_800, FULL)])
def test_a_full_size_npz_is_memory_mapped_row_for_row(tmp_path, caplog, n, layout):
    path = tmp_path / "mpi3d_real.npz"
    pokes = _pokes(n)
    write_sparse_npz(path, n, pokes)
    assert path.stat().st_size > n * ROW_BYTES  # the full official size...
    assert path.stat().st_blocks * 512 < 64 * 2**20  # ...sparse on disk
    with zipfile.ZipFile(path) as zf:  # a structurally valid zip64 archive
        info = zf.getinfo("images.npy")
        assert info.compress_type == zipfile.ZIP_STORED
        assert info.file_size == len(_npy_header((n, 64, 64, 3))) + n * ROW_BYTES
        with zf.open("images.npy") as member:
            assert npy_format.read_magic(member) == (1, 0)
    with caplog.at_level(logging.INFO, logger="untwine.data.mpi3d"):
        ds = load_dataset("mpi3d", path=path)
    assert ds.factor_sizes == layout.sizes and ds.info["layout"] == layout.name
    assert layout.name in caplog.text
    assert isinstance(ds.array, np.memmap) and ds.info["memory_mapped"]
    index = np.array(list(pokes) + [2, 1601])  # two rows never written read as zeros
    x = ds.images_numpy(ds.index_to_factors(index))
    expected = np.concatenate([np.stack(list(pokes.values())), np.zeros((2, 64, 64, 3))])
    np.testing.assert_array_equal(np.rint(x * 255).transpose(0, 2, 3, 1), expected)


def test_a_complex_file_name_selects_the_complex_class_names(tmp_path):
    path = tmp_path / "real3d_complicated_shapes_ordered_complex.npz"
    write_sparse_npz(path, 460_800, {})
    ds = load_dataset("mpi3d", path=path)
    assert ds.info["layout"] == COMPLEX.name
    assert ds.info["value_names"]["object_color"] == ("yellow", "green", "olive", "red")


def test_a_plain_npy_is_memory_mapped(tmp_path):
    path = tmp_path / "mpi3d_toy.npy"
    pokes = _pokes(460_800)
    with open(path, "wb") as f:
        f.write(_npy_header((460_800, 64, 64, 3)))
        start = f.tell()
        for i, image in pokes.items():
            f.seek(start + i * ROW_BYTES)
            f.write(image.astype(np.uint8).tobytes())
        f.truncate(start + 460_800 * ROW_BYTES)
    ds = load_dataset("mpi3d", path=path)
    assert isinstance(ds.array, np.memmap) and ds.factor_sizes == CHALLENGE.sizes
    x = ds.images_numpy(ds.index_to_factors(np.array(list(pokes))))
    np.testing.assert_array_equal(
        np.rint(x * 255).transpose(0, 2, 3, 1), np.stack(list(pokes.values()))
    )


SMALL = (2, 1, 2, 1, 3, 4, 5)


@pytest.fixture
def small_images():
    return np.random.RandomState(5).randint(0, 256, (240, 64, 64, 3)).astype(np.uint8)


@pytest.mark.parametrize("in_memory", [False, True])
def test_custom_sizes_round_trip_in_c_order(tmp_path, small_images, in_memory):
    path = tmp_path / "subset.npz"
    np.savez(path, images=small_images)
    ds = load_mpi3d(path, factor_sizes=SMALL, in_memory=in_memory)
    assert ds.factor_sizes == SMALL and isinstance(ds.array, np.memmap) != in_memory
    f = ds.sample_factors(100, np.random.RandomState(6))
    rows = small_images.reshape(*SMALL, 64, 64, 3)[tuple(f.T)]
    np.testing.assert_array_equal(np.rint(ds.images_numpy(f) * 255).transpose(0, 2, 3, 1), rows)
    np.testing.assert_array_equal(ds.factors_to_index(f), np.ravel_multi_index(f.T, SMALL))


def test_a_compressed_npz_names_both_fixes_and_loads_in_memory(tmp_path, small_images):
    path = tmp_path / "compressed.npz"
    np.savez_compressed(path, images=small_images)
    with pytest.raises(UntwineError, match=r"compressed.*np\.savez.*in_memory=True"):
        load_mpi3d(path, factor_sizes=SMALL)
    ds = load_mpi3d(path, factor_sizes=SMALL, in_memory=True)
    x = ds.images_numpy(ds.index_to_factors(np.arange(240)))
    np.testing.assert_array_equal(np.rint(x * 255).transpose(0, 2, 3, 1), small_images)


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "nowhere" / "mpi3d_toy.npz"
    with pytest.raises(UntwineError, match="nowhere.*no such file.*mpi3d_toy.npz"):
        load_mpi3d(path)
    with pytest.raises(UntwineError, match="no such file"):
        load_dataset("mpi3d", path=path)


def test_a_file_that_is_not_npz_is_refused(tmp_path):
    path = tmp_path / "mpi3d_toy.npz"
    path.write_text("<html>quota exceeded</html>")
    with pytest.raises(UntwineError, match="neither an .npz.*incomplete download"):
        load_mpi3d(path)


def test_a_missing_images_key_lists_the_keys_found(tmp_path, small_images):
    path = tmp_path / "other.npz"
    np.savez(path, imgs=small_images)
    with pytest.raises(UntwineError, match="lacks key 'images' \\(keys: imgs\\)"):
        load_mpi3d(path)


@pytest.mark.parametrize(
    "array",
    [np.zeros((240, 32, 32, 3), np.uint8), np.zeros((240, 64, 64, 3), np.float32)],
    ids=["shape", "dtype"],
)
def test_wrong_shape_or_dtype_is_refused(tmp_path, array):
    path = tmp_path / "bad.npz"
    np.savez(path, images=array)
    with pytest.raises(UntwineError, match=r"expected \(N, 64, 64, 3\) uint8"):
        load_mpi3d(path, factor_sizes=SMALL)


def test_an_unknown_image_count_lists_both_layouts(tmp_path):
    path = tmp_path / "odd.npz"
    np.savez(path, images=np.zeros((100, 64, 64, 3), np.uint8))
    with pytest.raises(UntwineError, match=r"odd.npz: .*100 images.*1,036,800.*460,800.*factor_"):
        load_mpi3d(path)


def test_a_truncated_npz_is_refused_before_mapping(tmp_path):
    path = tmp_path / "mpi3d_real.npz"
    write_sparse_npz(path, 460_800, {}, short_by=10 * ROW_BYTES)
    with pytest.raises(UntwineError, match="truncated.*download it again"):
        load_mpi3d(path)


def test_a_truncated_npy_is_refused_before_mapping(tmp_path, small_images):
    path = tmp_path / "subset.npy"
    np.save(path, small_images)
    os.truncate(path, path.stat().st_size - ROW_BYTES)
    with pytest.raises(UntwineError, match="truncated"):
        load_mpi3d(path, factor_sizes=SMALL)


def test_a_download_cut_before_the_zip_directory_is_refused(tmp_path, small_images):
    path = tmp_path / "subset.npz"
    np.savez(path, images=small_images)
    os.truncate(path, path.stat().st_size // 2)
    with pytest.raises(UntwineError, match="incomplete download"):
        load_mpi3d(path, factor_sizes=SMALL)
