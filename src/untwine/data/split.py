"""Content / style split of a factor grid, declared by each factor's share of pixel variance.

C-S DisMo (Ren et al. 2021) assumes content carries the factors that matter most for
reconstruction and style the rest; on Cars3D its content turned out to be the viewpoint. So the
split is not assumed from the factor names: each factor's *total-effect share* of pixel variance
is measured and the dominant factors are declared content.

Total-effect share of factor k (Sobol's total-effect index summed over pixels)::

    S_k = E_{f_-k}[ Σ_p Var_{f_k}(x_p | f_-k) ] / Σ_p Var(x_p)

i.e. how much the image varies when factor k sweeps all its values with the others fixed,
averaged over random settings of the others, over the total pixel variance of random images.
Interactions count towards every factor involved, so the shares may sum above 1.

Declared split: factors sorted by share, content is the smallest set of top factors whose shares
make up at least ``threshold`` (default half) of the summed shares; style is the rest (at least
one factor). ``SPLITS`` stores the split of each twin measured with the defaults (seed 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from untwine.errors import UntwineError


@dataclass(frozen=True)
class ContentStyleSplit:
    """Which factors are content and which style, with the shares that decided it."""

    content: tuple[str, ...]
    style: tuple[str, ...]
    shares: dict[str, float] = field(default_factory=dict)

    def indices(self, factor_names: tuple[str, ...]) -> tuple[list[int], list[int]]:
        """Column indices (content, style) of these factors in ``factor_names``."""
        missing = [n for n in self.content + self.style if n not in factor_names]
        if missing:
            raise UntwineError(
                f"content/style split names factors {missing} the dataset lacks "
                f"(its factors: {', '.join(factor_names)})"
            )
        return ([factor_names.index(n) for n in self.content],
                [factor_names.index(n) for n in self.style])

    def describe(self) -> str:
        """One line such as ``content: posX 0.70, posY 0.67 | style: scale 0.29, ...``."""

        def part(names: tuple[str, ...]) -> str:
            return ", ".join(f"{n} {self.shares[n]:.3f}" if n in self.shares else n for n in names)

        return f"content: {part(self.content)} | style: {part(self.style)}"


def pixel_variance_shares(
    dataset, n_bases: int = 64, n_total: int = 2000, seed: int = 0
) -> dict[str, float]:
    """Total-effect share of pixel variance of each factor (module docstring), by name.

    ``n_bases`` random settings of the other factors per factor, each swept over all values;
    ``n_total`` random images for the total variance. Rendering cost: n_total + n_bases × Σ sizes.
    """
    if n_bases < 1 or n_total < 2:
        raise UntwineError(f"need n_bases >= 1 and n_total >= 2; got {n_bases}, {n_total}")
    rng = np.random.RandomState(seed)
    x = np.asarray(dataset.images(dataset.sample_factors(n_total, rng)), dtype=np.float64)
    total = x.reshape(n_total, -1).var(0).sum()
    if total <= 0:
        raise UntwineError(f"{dataset.name}: the images do not vary; no split can be measured")
    shares = {}
    for k, (name, size) in enumerate(zip(dataset.factor_names, dataset.factor_sizes, strict=True)):
        within = 0.0
        for base in dataset.sample_factors(n_bases, rng):
            sweep = np.repeat(base[None], size, axis=0)
            sweep[:, k] = np.arange(size)
            imgs = np.asarray(dataset.images(sweep), dtype=np.float64).reshape(size, -1)
            within += imgs.var(0).sum()
        shares[name] = float(within / n_bases / total)
    return shares


def declare_split(shares: dict[str, float], threshold: float = 0.5) -> ContentStyleSplit:
    """Content = fewest top-share factors reaching ``threshold`` of the summed shares."""
    if len(shares) < 2:
        raise UntwineError("a content/style split needs at least two factors")
    if not 0 < threshold < 1:
        raise UntwineError(f"threshold must be in (0, 1); got {threshold}")
    order = sorted(shares, key=lambda n: -shares[n])
    total = sum(shares.values())
    content: list[str] = []
    for name in order[:-1]:
        content.append(name)
        if sum(shares[n] for n in content) >= threshold * total:
            break
    style = tuple(n for n in shares if n not in content)
    content_t = tuple(n for n in shares if n in content)
    return ContentStyleSplit(content_t, style, dict(shares))


SPLITS: dict[str, ContentStyleSplit] = {
    # measured: declare_split(pixel_variance_shares(load_dataset(name))), rounded to 3 decimals
    "dsprites": ContentStyleSplit(
        content=("posX", "posY"),
        style=("shape", "scale", "orientation"),
        shares={"shape": 0.176, "scale": 0.293, "orientation": 0.209, "posX": 0.698,
                "posY": 0.669},
    ),
    "shapes3d": ContentStyleSplit(
        content=("floor_hue", "wall_hue"),
        style=("object_hue", "scale", "shape", "orientation"),
        shares={"floor_hue": 0.506, "wall_hue": 0.351, "object_hue": 0.145, "scale": 0.053,
                "shape": 0.04, "orientation": 0.033},
    ),
    "mpi3d": ContentStyleSplit(
        content=("background_color",),
        style=("object_color", "object_shape", "object_size", "camera_height",
               "horizontal_axis", "vertical_axis"),
        shares={"object_color": 0.036, "object_shape": 0.02, "object_size": 0.016,
                "camera_height": 0.078, "background_color": 0.911, "horizontal_axis": 0.081,
                "vertical_axis": 0.058},
    ),
}


def content_style_split(dataset) -> ContentStyleSplit:
    """The declared split of ``dataset``: from ``SPLITS`` by name, else measured now."""
    split = SPLITS.get(dataset.name)
    if split is not None and set(split.content + split.style) == set(dataset.factor_names):
        return split
    return declare_split(pixel_variance_shares(dataset))
