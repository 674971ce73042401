"""Cars3D loader on small archives written in the official layout (list.txt + car_XXX_mesh.mat)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from untwine.data import cars3d, load_dataset
from untwine.errors import UntwineError

ORDER = ("car_010_mesh", "car_002_mesh", "car_005_mesh")  # list order != alphabetical order


def mesh(seed: int, size: int = 64, n_azim: int = 5, n_elev: int = 2) -> np.ndarray:
    """A random ``im`` array (H, W, 3, azimuth, elevation) uint8."""
    rng = np.random.RandomState(seed)
    return rng.randint(0, 256, size=(size, size, 3, n_azim, n_elev)).astype(np.uint8)


def write_archive(folder: Path, meshes: dict[str, np.ndarray], order=ORDER) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, im in meshes.items():
        scipy.io.savemat(folder / f"{name}.mat", {"im": im})
    (folder / "list.txt").write_text("".join(f"{n}\n" for n in order))
    return folder


def small_archive(folder: Path, **kw) -> tuple[Path, dict[str, np.ndarray]]:
    meshes = {name: mesh(i, **kw) for i, name in enumerate(ORDER)}
    return write_archive(folder, meshes), meshes


def test_loader_round_trips_every_view_in_list_order(tmp_path):
    folder, meshes = small_archive(tmp_path / "cars")
    scipy.io.savemat(folder / "car_001_mesh.mat", {"im": mesh(9)})  # not listed: ignored
    ds = load_dataset("cars3d", path=folder)
    assert ds.factor_names == ("elevation", "azimuth", "object")
    assert ds.factor_sizes == (2, 5, 3)
    assert ds.image_shape == (3, 64, 64)
    assert ds.info["objects"] == ORDER
    f = ds.index_to_factors(np.arange(len(ds)))
    out = ds.images_numpy(f)
    for (e, a, o), img in zip(f, out, strict=True):
        expected = meshes[ORDER[o]][:, :, :, a, e].transpose(2, 0, 1) / np.float32(255)
        np.testing.assert_array_equal(img, expected.astype(np.float32))
    assert ds.array.dtype == np.uint8


def test_loader_accepts_the_list_file_as_path(tmp_path):
    folder, _ = small_archive(tmp_path / "cars")
    a = load_dataset("cars3d", path=folder)
    b = load_dataset("cars3d", path=folder / "list.txt")
    f = a.index_to_factors(np.arange(len(a)))
    np.testing.assert_array_equal(a.images_numpy(f), b.images_numpy(f))


def test_list_lines_may_carry_the_mat_suffix(tmp_path):
    folder, meshes = small_archive(tmp_path / "cars")
    (folder / "list.txt").write_text("car_005_mesh.mat\ncar_010_mesh.mat\n\n")
    ds = load_dataset("cars3d", path=folder)
    assert ds.factor_sizes == (2, 5, 2)
    img = ds.images_numpy([[1, 3, 0]])[0]
    np.testing.assert_array_equal(
        img * 255, meshes["car_005_mesh"][:, :, :, 3, 1].transpose(2, 0, 1)
    )


def test_full_size_views_are_resized_to_64_with_lanczos(tmp_path):
    folder, meshes = small_archive(tmp_path / "cars", size=128, n_azim=2, n_elev=1)
    ds = load_dataset("cars3d", path=folder)
    assert ds.image_shape == (3, 64, 64)
    view = meshes[ORDER[2]][:, :, :, 1, 0]
    expected = np.asarray(Image.fromarray(view).resize((64, 64), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(
        ds.images_numpy([[0, 1, 2]])[0] * 255, expected.transpose(2, 0, 1)
    )


def test_resize_keeps_a_constant_image_constant():
    images = np.full((2, 128, 128, 3), 77, dtype=np.uint8)
    out = cars3d.resize(images)
    assert out.shape == (2, 64, 64, 3) and (out == 77).all()
    gray = cars3d.resize(np.full((1, 96, 96), 200, dtype=np.uint8))
    assert gray.shape == (1, 64, 64) and (gray == 200).all()


def assert_user_error(path: Path, match: str, names: Path | None = None) -> None:
    with pytest.raises(UntwineError, match=match) as err:
        load_dataset("cars3d", path=path)
    message = str(err.value)
    assert str(names or path) in message
    assert "car_XXX_mesh.mat" in message and "list.txt" in message
    assert "scottreed.info" in message


def test_missing_folder_raises(tmp_path):
    assert_user_error(tmp_path / "nowhere", "no such file")


def test_missing_list_raises(tmp_path):
    folder, _ = small_archive(tmp_path / "cars")
    (folder / "list.txt").unlink()
    assert_user_error(folder, "no list.txt")


def test_listed_mesh_missing_raises(tmp_path):
    folder, _ = small_archive(tmp_path / "cars")
    (folder / "car_002_mesh.mat").unlink()
    assert_user_error(folder, "missing", names=folder / "car_002_mesh.mat")


def test_wrong_key_raises(tmp_path):
    folder, _ = small_archive(tmp_path / "cars")
    scipy.io.savemat(folder / "car_005_mesh.mat", {"images": mesh(0)})
    assert_user_error(folder, "lacks key 'im'", names=folder / "car_005_mesh.mat")


def test_wrong_shape_raises(tmp_path):
    folder, _ = small_archive(tmp_path / "cars")
    scipy.io.savemat(folder / "car_005_mesh.mat", {"im": mesh(0)[:, :, :2]})
    assert_user_error(folder, r"expected uint8 \(128, 128, 3, 24, 4\)", folder / "car_005_mesh.mat")


def test_wrong_dtype_raises(tmp_path):
    folder, _ = small_archive(tmp_path / "cars")
    scipy.io.savemat(folder / "car_005_mesh.mat", {"im": mesh(0).astype(np.float64)})
    assert_user_error(folder, "float64", folder / "car_005_mesh.mat")


def test_meshes_with_different_view_counts_raise(tmp_path):
    meshes = {name: mesh(i) for i, name in enumerate(ORDER)}
    meshes[ORDER[1]] = mesh(1, n_azim=4)
    folder = write_archive(tmp_path / "cars", meshes)
    assert_user_error(folder, "views", folder / f"{ORDER[1]}.mat")


def test_truncated_mesh_raises(tmp_path):
    folder, _ = small_archive(tmp_path / "cars")
    path = folder / "car_010_mesh.mat"
    path.write_bytes(path.read_bytes()[:300])
    assert_user_error(folder, "readable", path)
