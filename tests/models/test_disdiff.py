"""DisDiff on a frozen ddpm run: zero-initialised fields, frozen parts, the CLI pipeline."""

import numpy as np
import pytest
import torch

from untwine import runs
from untwine.config import make_run_config
from untwine.data import load_dataset
from untwine.errors import UntwineError
from untwine.models.ddpm import DDPM
from untwine.models.disdiff import DisDiff, DisDiffConfig

TINY_DPM = ["unet_width=8", "ae_width=8", "sample_steps=2"]


@pytest.fixture(scope="module")
def dpm_dir(tmp_path_factory):
    ds = load_dataset("shapes3d")
    config = make_run_config("ddpm", {"data.name": "shapes3d"}, TINY_DPM)
    run_dir = tmp_path_factory.mktemp("ddpm")
    runs.write_config(run_dir, config)
    torch.manual_seed(0)
    runs.save_weights(run_dir, DDPM(config.model_config, ds.image_shape))
    return run_dir, ds


def _model(dpm_dir):
    run_dir, ds = dpm_dir
    torch.manual_seed(0)
    model = DisDiff(
        DisDiffConfig(dpm=str(run_dir), units=3, dims=4, encoder_width=8), ds.image_shape
    )
    model.prepare(ds)
    return model.train(), ds


def test_disdiff_without_dpm_says_to_train_one():
    with pytest.raises(UntwineError, match="untwine train ddpm"):
        DisDiff(DisDiffConfig(), (3, 64, 64))


def test_zero_initialised_fields_leave_the_frozen_prediction_bit_equal(dpm_dir):
    model, ds = _model(dpm_dir)
    x = ds.images(ds.sample_factors(4, np.random.RandomState(0)))
    xt = torch.randn(4, *model.dpm.first_stage.latent_shape)
    t = torch.tensor([0, 10, 500, 999])
    eps = model.predict_eps(xt, t, model.codes(x))
    assert torch.equal(eps, model.dpm.unet(xt, t))


def test_frozen_parts_get_no_gradient_and_trainable_parts_do(dpm_dir):
    model, ds = _model(dpm_dir)
    x = ds.images(ds.sample_factors(8, np.random.RandomState(1)))
    model.loss(x, 0)["loss"].backward()
    assert all(p.grad is None and not p.requires_grad for p in model.dpm.parameters())
    assert model.decoder.body.conv_out.weight.grad.abs().sum() > 0


def test_represent_is_one_number_per_unit_after_finish(dpm_dir):
    model, ds = _model(dpm_dir)
    model.eval()
    import untwine.models.disdiff as mod

    mod.PCA_IMAGES, old = 500, mod.PCA_IMAGES
    try:
        model.finish(ds)
    finally:
        mod.PCA_IMAGES = old
    x = ds.images(ds.sample_factors(5, np.random.RandomState(2)))
    codes = model.represent(x)
    assert codes.shape == (5, 3)
    assert torch.allclose(model.pca_axis.norm(dim=1), torch.ones(3), atol=1e-5)


@pytest.mark.slow
def test_ddpm_then_disdiff_from_the_cli(tmp_path):
    from typer.testing import CliRunner

    from untwine.cli import app

    runner = CliRunner()
    d1, d2 = tmp_path / "d1", tmp_path / "d2"
    r1 = runner.invoke(
        app,
        [
            "train",
            "ddpm",
            "--data",
            "shapes3d",
            "--steps",
            "3",
            "--out",
            str(d1),
            *sum((["--set", s] for s in TINY_DPM), []),
        ],
    )
    assert r1.exit_code == 0, r1.output
    assert (d1 / "samples.png").exists()
    r2 = runner.invoke(
        app,
        [
            "train",
            "disdiff",
            "--data",
            "shapes3d",
            "--steps",
            "3",
            "--out",
            str(d2),
            "--set",
            f"dpm={d1}",
            "--set",
            "units=3",
            "--set",
            "dims=4",
            "--set",
            "sample_steps=2",
            "--metrics",
            "none",
        ],
    )
    assert r2.exit_code == 0, r2.output
    assert (d2 / "swap_grid.png").exists() and (d2 / "model.safetensors").exists()
