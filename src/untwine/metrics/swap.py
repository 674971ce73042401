"""Content/style scores: swaps against the true rendering, leakage, and the factor mapping.

A content/style model gives three functions on image tensors: ``content(x) -> (n, Dc)``,
``style(x) -> (n, Ds)`` and ``combine(c, s) -> images (n, C, H, W)`` in [0, 1].

- **Factor mapping** (:func:`factor_probe`, :func:`mapping_from_probe`): a linear probe predicts
  every factor from the content codes and from the style codes; a factor belongs to the side
  whose probe beats chance by more (accuracy normalised as (acc − chance)/(1 − chance)). The
  learned split is measured, not assumed: on Cars3D C-S DisMo's content was the viewpoint.
- **Swap error** (:func:`swap_scores`): for random pairs (a, b), the swap ``combine(content(x_a),
  style(x_b))`` is compared with the true rendering of the factors of a on the content side and
  of b on the style side; the error is the mean absolute pixel difference (images in [0, 1]).
  References on the same pairs: the reconstruction error of a (a floor), and the error of just
  copying x_a or x_b (what a model that ignores one code would get).
- **Leakage** (:func:`leakage`): the mean probe accuracy of style factors from content codes
  (``leakage_content``) and of content factors from style codes (``leakage_style``), each beside
  the mean chance level (the test frequency of the majority training class). A linear probe
  sees only linearly decodable leakage.

Both swap error and leakage are reported under the mapping found and under a declared split
(``untwine.data.split``), so a model whose content is the declared style is visible as such.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from untwine.errors import UntwineError
from untwine.metrics.utils import discrete_entropy, discrete_mutual_info, histogram_discretize

Codes = Callable[[torch.Tensor], torch.Tensor]
Combine = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def probe_accuracy(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray
) -> tuple[float, float]:
    """(test accuracy, chance) of a multinomial logistic regression on standardised codes.

    Chance is the test frequency of the most common training class (what a constant guess
    scores). A single-class training set gives accuracy = chance.
    """
    classes, counts = np.unique(y_train, return_counts=True)
    chance = float(np.mean(y_test == classes[np.argmax(counts)]))
    if len(classes) < 2:
        return chance, chance
    scaler = StandardScaler().fit(x_train)
    clf = LogisticRegression(max_iter=2000).fit(scaler.transform(x_train), y_train)
    return float(np.mean(clf.predict(scaler.transform(x_test)) == y_test)), chance


def factor_probe(
    content_codes: np.ndarray,
    style_codes: np.ndarray,
    factors: np.ndarray,
    names: tuple[str, ...],
    seed: int = 0,
    test_fraction: float = 1 / 3,
) -> dict[str, dict[str, float]]:
    """Per factor: probe accuracy from content codes, from style codes, and chance.

    Rows are split once by ``RandomState(seed).permutation``, the last ``test_fraction`` test.
    """
    n = len(factors)
    if len(content_codes) != n or len(style_codes) != n or factors.shape[1] != len(names):
        raise UntwineError(
            f"probe needs one content code, style code and factor row per point; got "
            f"{len(content_codes)}, {len(style_codes)}, {factors.shape} for factors {names}"
        )
    order = np.random.RandomState(seed).permutation(n)
    cut = n - max(1, int(round(n * test_fraction)))
    train, test = order[:cut], order[cut:]
    result = {}
    for k, name in enumerate(names):
        y = factors[:, k]
        acc_c, chance = probe_accuracy(content_codes[train], y[train], content_codes[test], y[test])
        acc_s, _ = probe_accuracy(style_codes[train], y[train], style_codes[test], y[test])
        result[name] = {"content": acc_c, "style": acc_s, "chance": chance}
    return result


def _above_chance(acc: float, chance: float) -> float:
    return (acc - chance) / (1 - chance) if chance < 1 else 0.0


def mapping_from_probe(probe: dict[str, dict[str, float]]) -> dict[str, str]:
    """Each factor to "content" or "style": the side whose probe beats chance by more."""
    return {
        name: "content"
        if _above_chance(p["content"], p["chance"]) >= _above_chance(p["style"], p["chance"])
        else "style"
        for name, p in probe.items()
    }


def leakage(
    probe: dict[str, dict[str, float]], content: tuple[str, ...], style: tuple[str, ...]
) -> dict[str, float]:
    """Mean probe accuracy of style factors from content codes and vice versa, with chance.

    An empty side gives NaN for the scores that need it.
    """

    def mean(names: tuple[str, ...], key: str) -> float:
        return float(np.mean([probe[n][key] for n in names])) if names else float("nan")

    return {
        "leakage_content": mean(style, "content"),
        "leakage_content_chance": mean(style, "chance"),
        "leakage_style": mean(content, "style"),
        "leakage_style_chance": mean(content, "chance"),
    }


def swap_target_factors(
    factors_a: np.ndarray, factors_b: np.ndarray, content_columns: list[int]
) -> np.ndarray:
    """Factors of the true swap: content columns from a, the others from b."""
    target = np.array(factors_b, copy=True)
    target[:, content_columns] = factors_a[:, content_columns]
    return target


def pixel_error(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute pixel difference per image, (n,)."""
    return (x.float() - y.float()).abs().flatten(1).mean(1)


@torch.no_grad()
def swap_scores(
    dataset,
    content: Codes,
    style: Codes,
    combine: Combine,
    content_columns: dict[str, list[int]],
    n_pairs: int = 512,
    seed: int = 0,
    batch_size: int = 128,
) -> dict[str, float]:
    """Swap error of random pairs under each named content-column choice, plus references.

    ``content_columns`` maps a label (``"found"``, ``"declared"``) to the factor columns taken
    from the content source. Returns ``swap_error_<label>`` for each, ``reconstruction_error``,
    and ``copy_content_source_<label>`` / ``copy_style_source_<label>``.
    """
    if n_pairs < 1:
        raise UntwineError(f"n_pairs must be >= 1; got {n_pairs}")
    rng = np.random.RandomState(seed)
    fa, fb = dataset.sample_factors(n_pairs, rng), dataset.sample_factors(n_pairs, rng)
    sums: dict[str, float] = {}

    def add(key: str, err: torch.Tensor) -> None:
        sums[key] = sums.get(key, 0.0) + float(err.sum())

    for start in range(0, n_pairs, batch_size):
        a, b = fa[start:start + batch_size], fb[start:start + batch_size]
        xa, xb = dataset.images(a), dataset.images(b)
        ca, sa, sb = content(xa), style(xa), style(xb)
        add("reconstruction_error", pixel_error(combine(ca, sa), xa))
        swapped = combine(ca, sb)
        for label, cols in content_columns.items():
            truth = dataset.images(swap_target_factors(a, b, cols))
            add(f"swap_error_{label}", pixel_error(swapped, truth))
            add(f"copy_content_source_{label}", pixel_error(xa, truth))
            add(f"copy_style_source_{label}", pixel_error(xb, truth))
    return {key: value / n_pairs for key, value in sums.items()}


@torch.no_grad()
def encode_all(fn: Codes, images: Callable[[np.ndarray], torch.Tensor], factors: np.ndarray,
               batch_size: int = 256) -> np.ndarray:
    """Codes of the images of ``factors``, in batches, as float64 NumPy."""
    parts = [fn(images(factors[i:i + batch_size])).detach().cpu().double().numpy()
             for i in range(0, len(factors), batch_size)]
    return np.concatenate(parts)


def content_style_scores(
    dataset,
    content: Codes,
    style: Codes,
    combine: Combine,
    declared,
    n_probe: int = 3000,
    n_pairs: int = 512,
    seed: int = 0,
) -> dict:
    """Probe, mapping, leakage and swap error of a content/style model (module docstring).

    ``declared`` is a ``ContentStyleSplit``. Top-level keys are under the mapping found:
    ``swap_error``, ``leakage_content`` (+ ``_chance``), ``leakage_style`` (+ ``_chance``);
    ``declared`` holds the same under the declared split; ``probe``, ``mapping`` and
    ``references`` (reconstruction and copy errors) explain them.
    """
    names = tuple(dataset.factor_names)
    rng = np.random.RandomState(seed)
    factors = dataset.sample_factors(n_probe, rng)
    c_codes = encode_all(content, dataset.images, factors)
    s_codes = encode_all(style, dataset.images, factors)
    probe = factor_probe(c_codes, s_codes, factors, names, seed=seed)
    mapping = mapping_from_probe(probe)
    found_content = tuple(n for n in names if mapping[n] == "content")
    found_style = tuple(n for n in names if mapping[n] == "style")
    cols = {
        "found": [names.index(n) for n in found_content],
        "declared": declared.indices(names)[0],
    }
    swaps = swap_scores(dataset, content, style, combine, cols, n_pairs=n_pairs, seed=seed + 1)
    found = leakage(probe, found_content, found_style)
    return {
        "swap_error": swaps["swap_error_found"],
        **found,
        "declared": {"swap_error": swaps["swap_error_declared"],
                     **leakage(probe, declared.content, declared.style),
                     "content": list(declared.content), "style": list(declared.style)},
        "mapping": mapping,
        "mapping_matches_declared": set(found_content) == set(declared.content),
        "mapping_one_sided": not found_content or not found_style,
        "probe": probe,
        "references": {
            "reconstruction_error": swaps["reconstruction_error"],
            "copy_content_source": swaps["copy_content_source_found"],
            "copy_style_source": swaps["copy_style_source_found"],
            "copy_content_source_declared": swaps["copy_content_source_declared"],
            "copy_style_source_declared": swaps["copy_style_source_declared"],
        },
        "params": {"n_probe": n_probe, "n_pairs": n_pairs, "seed": seed,
                   "probe": "LogisticRegression on standardised codes, 2/3 train, 1/3 test",
                   "pixel_error": "mean absolute difference, images in [0, 1]"},
    }


def split_codes_by_mi(
    codes: np.ndarray, factors: np.ndarray, content_columns: list[int], num_bins: int = 20
) -> tuple[list[int], list[int]]:
    """Post-hoc split of a code's dims into (content dims, style dims) by mutual information.

    Each dim goes with the factor of highest normalised MI, I(z_d; v_k) / H(v_k) (the MIG
    estimator: ``num_bins`` equal-width bins); dims whose factor is a content column are content.
    If a side would be empty, the dim most informative about that side's factors moves there.
    For baselines without a built-in split (a β-VAE).
    """
    mi = discrete_mutual_info(histogram_discretize(codes, num_bins), factors)
    norm = mi / np.maximum(discrete_entropy(factors), 1e-12)[None]
    is_content = np.isin(np.argmax(norm, axis=1), content_columns)
    style_columns = [k for k in range(factors.shape[1]) if k not in content_columns]
    if codes.shape[1] < 2:
        raise UntwineError("a post-hoc content/style split needs at least two code dims")
    if not is_content.any():
        is_content[np.argmax(norm[:, content_columns].max(1))] = True
    if is_content.all():
        is_content[np.argmax(norm[:, style_columns].max(1))] = False
    dims = np.arange(codes.shape[1])
    return dims[is_content].tolist(), dims[~is_content].tolist()
