"""Swap scoring on a grid whose answer is known: four factors, each lighting its own region."""

import numpy as np
import pytest
import torch

from untwine.data import FactorSpace, GridDataset
from untwine.data.split import ContentStyleSplit
from untwine.metrics.swap import (
    content_style_scores,
    factor_probe,
    leakage,
    mapping_from_probe,
    probe_accuracy,
    split_codes_by_mi,
    swap_target_factors,
)

SIZES = (4, 3, 2, 2)
REGIONS = [(slice(0, 32), slice(0, 64)), (slice(32, 48), slice(0, 32)),
           (slice(48, 64), slice(0, 32)), (slice(32, 64), slice(32, 64))]
DECLARED = ContentStyleSplit(content=("a", "b"), style=("c", "d"))


def _levels(f: np.ndarray) -> np.ndarray:
    return f / (np.array(SIZES) - 1)


def _render(f: np.ndarray) -> np.ndarray:
    x = np.zeros((len(f), 1, 64, 64), np.float32)
    for k, (rows, cols) in enumerate(REGIONS):
        x[:, 0, rows, cols] = _levels(f)[:, k, None, None]
    return x


DATA = GridDataset("regions", FactorSpace.from_sizes("abcd", SIZES), (1, 64, 64), _render)


def _read(x: torch.Tensor, ks: list[int]) -> torch.Tensor:
    """Region intensities of x for factors ks: the oracle's codes."""
    return torch.stack([x[:, 0, REGIONS[k][0], REGIONS[k][1]].mean((1, 2)) for k in ks], 1)


def _draw(levels: torch.Tensor, ks: list[int]) -> np.ndarray:
    return np.rint(levels.numpy() * (np.array(SIZES)[ks] - 1)).astype(np.int64)


def _oracle(content_ks: list[int], style_ks: list[int]):
    def combine(c: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        f = np.zeros((len(c), 4), np.int64)
        f[:, content_ks] = _draw(c, content_ks)
        f[:, style_ks] = _draw(s, style_ks)
        return DATA.images(f)

    return (lambda x: _read(x, content_ks)), (lambda x: _read(x, style_ks)), combine


def test_oracle_with_the_declared_split_swaps_without_error():
    content, style, combine = _oracle([0, 1], [2, 3])
    r = content_style_scores(DATA, content, style, combine, DECLARED, n_probe=1500, n_pairs=2000)
    assert r["mapping"] == {"a": "content", "b": "content", "c": "style", "d": "style"}
    assert r["mapping_matches_declared"] and not r["mapping_one_sided"]
    assert r["swap_error"] == 0.0 and r["declared"]["swap_error"] == 0.0
    assert r["references"]["reconstruction_error"] == 0.0
    # copying the style source gets a's regions A (half the image) and B (an eighth) wrong:
    # E|a - a'| / 3 = 1.25 / 3 over 1/2 of the pixels, E|b - b'| / 2 = (8/9) / 2 over 1/8
    expected = 0.5 * 1.25 / 3 + 0.125 * (8 / 9) / 2
    assert r["references"]["copy_style_source"] == pytest.approx(expected, abs=0.01)
    # content codes read only regions A and B: c and d are at chance from them, and back
    assert r["leakage_content"] == pytest.approx(r["leakage_content_chance"], abs=0.06)
    assert r["leakage_style"] == pytest.approx(r["leakage_style_chance"], abs=0.06)
    assert r["probe"]["a"]["content"] == 1.0 and r["probe"]["d"]["style"] == 1.0


def test_reversed_oracle_is_scored_under_the_mapping_it_learned():
    content, style, combine = _oracle([2, 3], [0, 1])  # "content" codes hold the declared style
    r = content_style_scores(DATA, content, style, combine, DECLARED, n_probe=1500, n_pairs=500)
    assert r["mapping"] == {"a": "style", "b": "style", "c": "content", "d": "content"}
    assert not r["mapping_matches_declared"]
    assert r["swap_error"] == 0.0
    assert r["declared"]["swap_error"] > 0.2  # the declared target is the complementary swap
    assert r["declared"]["leakage_content"] == 1.0  # declared style factors sit in content codes


def test_a_model_ignoring_style_equals_copying_the_content_source():
    content, _, _ = _oracle([0, 1, 2, 3], [])

    def combine(c: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return DATA.images(_draw(c, [0, 1, 2, 3]))

    style = lambda x: torch.randn(len(x), 2, generator=torch.Generator().manual_seed(len(x)))  # noqa: E731
    r = content_style_scores(DATA, content, style, combine, DECLARED, n_probe=900, n_pairs=300)
    assert r["mapping_one_sided"] and set(r["mapping"].values()) == {"content"}
    assert r["swap_error"] == 0.0  # every factor is content: the target is a itself
    assert r["declared"]["swap_error"] == pytest.approx(
        r["references"]["copy_content_source_declared"])
    assert r["declared"]["swap_error"] > 0.1


def test_swap_target_takes_content_columns_from_a():
    a, b = np.array([[1, 1, 1, 1]]), np.array([[0, 2, 0, 0]])
    assert swap_target_factors(a, b, [0, 3]).tolist() == [[1, 2, 0, 1]]


def test_probe_accuracy_and_chance():
    y = np.repeat([0, 1, 2], 50)
    x = np.eye(3)[y] + 0.01 * np.random.RandomState(0).randn(150, 3)
    assert probe_accuracy(x, y, x, y) == (1.0, pytest.approx(1 / 3))
    assert probe_accuracy(x[:50], y[:50], x[50:], y[50:]) == (0.0, 0.0)  # one class seen


def test_mapping_and_leakage_from_a_probe_table():
    probe = {"a": {"content": 0.9, "style": 0.5, "chance": 0.5},
             "b": {"content": 0.3, "style": 0.6, "chance": 0.25}}
    assert mapping_from_probe(probe) == {"a": "content", "b": "style"}
    assert leakage(probe, ("a",), ("b",)) == {
        "leakage_content": 0.3, "leakage_content_chance": 0.25,
        "leakage_style": 0.5, "leakage_style_chance": 0.5}
    assert np.isnan(leakage(probe, (), ("a", "b"))["leakage_style"])
    table = factor_probe(np.eye(2)[[0, 1] * 30], np.zeros((60, 1)), np.array([[0], [1]] * 30),
                         ("a",))
    assert table["a"]["content"] == 1.0 and table["a"]["style"] == table["a"]["chance"]


def test_split_codes_by_mi_follows_the_most_informative_factor():
    rng = np.random.RandomState(0)
    f = DATA.sample_factors(2000, rng)
    codes = np.stack([f[:, 0] + 0.1 * rng.randn(2000), f[:, 2], f[:, 3], f[:, 1]], 1)
    content, style = split_codes_by_mi(codes, f, [0, 1])
    assert content == [0, 3] and style == [1, 2]
    # no dim for the style factors: the most style-informative dim still goes to style
    content, style = split_codes_by_mi(codes[:, [0, 3]], f, [0, 1])
    assert len(content) == 1 and len(style) == 1
