"""Cars3D: a loader for the Reed et al. (2015) archive of rendered car meshes (no twin).

The archive's ``cars/`` folder holds ``car_XXX_mesh.mat`` files, each with ``im`` of shape
(128, 128, 3, 24, 4) = (H, W, C, azimuth, elevation), and ``list.txt`` naming the meshes in
order. Factors (C order, last fastest): elevation 4, azimuth 24, object 183; the object index
is the line of ``list.txt`` (never the directory listing, whose order is file-system dependent).
Images are resized to 64 × 64 with Pillow's Lanczos filter, as disentanglement_lib's
``thumbnail(…, ANTIALIAS)`` does, and kept as uint8 (216 MB for the full archive).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from untwine.data.base import ArrayDataset
from untwine.data.factors import FactorSpace
from untwine.data.registry import register_loader
from untwine.errors import UntwineError

OFFICIAL = (
    "the cars/ folder (car_XXX_mesh.mat files and list.txt) of nips2015-analogy-data.tar.gz, "
    "Reed et al. 2015, from http://www.scottreed.info/files/nips2015-analogy-data.tar.gz"
)
NAMES = ("elevation", "azimuth", "object")
SIZE = 64


def resize(images: np.ndarray, size: int = SIZE) -> np.ndarray:
    """uint8 images (n, H, W) or (n, H, W, C) -> (n, size, size[, C]) by Pillow's Lanczos filter.

    Lanczos is what disentanglement_lib's ``thumbnail(…, ANTIALIAS)`` applies; images already
    ``size`` × ``size`` are returned unchanged.
    """
    if images.shape[1:3] == (size, size):
        return images
    out = np.empty((len(images), size, size, *images.shape[3:]), dtype=np.uint8)
    for i, im in enumerate(images):
        out[i] = np.asarray(Image.fromarray(im).resize((size, size), Image.Resampling.LANCZOS))
    return out


def read_list(path: Path) -> tuple[Path, list[str]]:
    """The archive folder and the mesh names of its ``list.txt``, in file order."""
    folder = path.parent if path.is_file() else path
    listing = folder / "list.txt"
    if not listing.is_file():
        raise UntwineError(f"{folder}: no list.txt (the object order); expected {OFFICIAL}")
    names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    if not names:
        raise UntwineError(f"{listing}: lists no meshes; expected {OFFICIAL}")
    return folder, [n[: -len(".mat")] if n.endswith(".mat") else n for n in names]


def read_mesh(path: Path) -> np.ndarray:
    """One mesh file -> uint8 (elevation, azimuth, 64, 64, 3)."""
    import scipy.io

    if not path.is_file():
        raise UntwineError(f"{path}: listed in list.txt but missing; expected {OFFICIAL}")
    try:
        mat = scipy.io.loadmat(path)
    except (ValueError, OSError, TypeError, scipy.io.matlab.MatReadError) as err:
        raise UntwineError(f"{path}: not a readable .mat file ({err}); {OFFICIAL}") from err
    if "im" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise UntwineError(f"{path}: lacks key 'im' (has {keys}); expected {OFFICIAL}")
    im = mat["im"]
    if im.ndim != 5 or im.shape[2] != 3 or im.shape[0] != im.shape[1] or im.dtype != np.uint8:
        raise UntwineError(
            f"{path}: 'im' is {im.dtype} {im.shape}, expected uint8 (128, 128, 3, 24, 4) = "
            f"(H, W, C, azimuth, elevation); {OFFICIAL}"
        )
    views = np.einsum("hwcae->eahwc", im)  # (elevation, azimuth, H, W, C)
    n_elev, n_azim = views.shape[:2]
    return resize(views.reshape(-1, *views.shape[2:])).reshape(n_elev, n_azim, SIZE, SIZE, 3)


@register_loader("cars3d", official=OFFICIAL)
def load_cars3d(path: str | Path) -> ArrayDataset:
    """Cars3D from the archive folder (or its list.txt): all views in memory as uint8."""
    folder, names = read_list(Path(path))
    first = read_mesh(folder / f"{names[0]}.mat")
    n_elev, n_azim = first.shape[:2]
    images = np.empty((n_elev, n_azim, len(names), SIZE, SIZE, 3), dtype=np.uint8)
    images[:, :, 0] = first
    for i, name in enumerate(names[1:], start=1):
        mesh = read_mesh(folder / f"{name}.mat")
        if mesh.shape[:2] != (n_elev, n_azim):
            raise UntwineError(
                f"{folder / name}.mat: {mesh.shape[:2]} (elevation, azimuth) views, but "
                f"{names[0]}.mat has {(n_elev, n_azim)}; expected {OFFICIAL}"
            )
        images[:, :, i] = mesh
    space = FactorSpace.from_sizes(NAMES, (n_elev, n_azim, len(names)))
    return ArrayDataset(
        "cars3d",
        space,
        images.reshape(-1, SIZE, SIZE, 3),
        source=str(folder),
        info={"objects": tuple(names), "resize": "Pillow Lanczos to 64 × 64"},
    )
