import numpy as np
import pytest

from untwine.data import FactorSpace, GridDataset, load_dataset
from untwine.data.split import SPLITS, content_style_split, declare_split, pixel_variance_shares
from untwine.errors import UntwineError


def _two_patch_dataset(big: float, small: float) -> GridDataset:
    """Factor a lights a 32×64 half with intensity big·class; factor b an 8×8 patch."""
    space = FactorSpace.from_sizes(("a", "b"), (2, 2))

    def render(f: np.ndarray) -> np.ndarray:
        x = np.zeros((len(f), 1, 64, 64), np.float32)
        x[:, 0, :32, :] = big * f[:, :1, None]
        x[:, 0, 40:48, 40:48] = small * f[:, 1:2, None]
        return x

    return GridDataset("patches", space, (1, 64, 64), render)


def test_shares_of_independent_additive_factors_are_their_pixel_variance():
    # a: 2048 pixels of amplitude 1, b: 64 pixels of amplitude 1 -> variance ratio 32 : 1
    shares = pixel_variance_shares(_two_patch_dataset(1.0, 1.0), n_bases=8, n_total=4000)
    assert shares["a"] == pytest.approx(32 / 33, abs=0.02)
    assert shares["b"] == pytest.approx(1 / 33, abs=0.01)
    split = content_style_split(_two_patch_dataset(1.0, 1.0))
    assert split.content == ("a",) and split.style == ("b",)


def test_declare_split_takes_fewest_top_factors_reaching_half():
    split = declare_split({"x": 0.1, "y": 0.45, "z": 0.3, "w": 0.15})
    assert split.content == ("y", "z") and split.style == ("x", "w")
    # one factor holding everything still leaves a style factor
    assert declare_split({"x": 1.0, "y": 0.0}).style == ("y",)
    with pytest.raises(UntwineError, match="two factors"):
        declare_split({"x": 1.0})


@pytest.mark.parametrize("name", ["dsprites", "shapes3d", "mpi3d"])
def test_declared_split_table_matches_a_fresh_measurement(name):
    ds = load_dataset(name)
    shares = pixel_variance_shares(ds)
    for factor, share in SPLITS[name].shares.items():
        assert shares[factor] == pytest.approx(share, abs=0.001)
    fresh = declare_split(shares)
    assert (fresh.content, fresh.style) == (SPLITS[name].content, SPLITS[name].style)


def test_split_indices_and_description():
    ds = load_dataset("dsprites")
    content, style = SPLITS["dsprites"].indices(ds.factor_names)
    assert content == [3, 4] and style == [0, 1, 2]
    assert SPLITS["dsprites"].describe().startswith("content: posX 0.698, posY 0.669 | style:")
    with pytest.raises(UntwineError, match="lacks"):
        SPLITS["dsprites"].indices(("a", "b"))


def test_constant_images_cannot_be_split():
    space = FactorSpace.from_sizes(("a", "b"), (2, 2))
    flat = GridDataset("flat", space, (1, 64, 64),
                       lambda f: np.zeros((len(f), 1, 64, 64), np.float32))
    with pytest.raises(UntwineError, match="do not vary"):
        pixel_variance_shares(flat)


def test_datasets_show_prints_the_declared_split(tmp_path):
    from typer.testing import CliRunner

    from untwine.cli import app

    out = tmp_path / "d.png"
    result = CliRunner().invoke(app, ["datasets", "show", "dsprites", "--out", str(out)],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich wraps at its own width
    assert "content: posX 0.698, posY 0.669 | style: shape 0.176" in text
