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


def test_a_finished_run_loads_and_evaluates_without_its_dpm_folder(dpm_dir, tmp_path):
    import shutil

    import untwine.models.disdiff as mod
    from untwine.pipeline import evaluate_run, load_model
    from untwine.train import train

    run_dir, ds = dpm_dir
    dpm = shutil.copytree(run_dir, tmp_path / "dpm")
    config = make_run_config(
        "disdiff",
        {"data.name": "shapes3d", "train.steps": 2, "train.batch_size": 4, "train.metrics": "none"},
        [f"dpm={dpm}", "units=3", "dims=4", "encoder_width=8", "sample_steps=2"],
    )
    mod.PCA_IMAGES, old = 500, mod.PCA_IMAGES
    try:
        trained = train(config, tmp_path / "run", quiet=True, dataset=ds)
    finally:
        mod.PCA_IMAGES = old
    moved = shutil.copytree(tmp_path / "run", tmp_path / "elsewhere" / "run")
    shutil.rmtree(tmp_path / "run")
    shutil.rmtree(dpm)
    recorded = runs.read_config(moved).model_config.dpm_model
    assert recorded["unet_width"] == 8 and recorded["ae_width"] == 8

    model = load_model(moved, dataset=ds)
    x = ds.images(ds.sample_factors(4, np.random.RandomState(3)))
    xt = torch.randn(4, *model.dpm.first_stage.latent_shape)
    t = torch.tensor([1, 50, 400, 999])
    with torch.no_grad():
        assert torch.equal(model.represent(x), trained.model.represent(x))
        assert torch.equal(model.dpm.unet(xt, t), trained.model.dpm.unet(xt, t))
    scores = evaluate_run(moved, ["mig"])
    assert 0 <= scores["metrics"]["mig"]["discrete_mig"] <= 1
    assert (moved / runs.METRICS).exists()


def test_dpm_folder_retrained_with_another_config_is_refused(dpm_dir, tmp_path):
    run_dir, ds = dpm_dir
    config = DisDiffConfig(dpm=str(run_dir), units=3, dims=4, encoder_width=8)
    model = DisDiff(config, ds.image_shape)
    config.dpm_model = {**config.dpm_model, "unet_width": 16}
    with pytest.raises(UntwineError, match="another DPM"):
        model.prepare(ds)


def test_dpm_trained_on_other_data_is_refused(dpm_dir):
    run_dir, _ = dpm_dir
    model = DisDiff(DisDiffConfig(dpm=str(run_dir), units=3, dims=4, encoder_width=8), (3, 64, 64))
    with pytest.raises(UntwineError, match="trained on shapes3d"):
        model.prepare(load_dataset("mpi3d"))


def test_stage_lengths_default_by_size_and_steps_sets_every_stage():
    from untwine.config import apply_overrides
    from untwine.models.ddpm import DDPMConfig

    def lengths(config: DDPMConfig) -> list[int]:
        return [s.steps for s in DDPM(config, (3, 64, 64)).stages()]

    assert lengths(make_run_config("ddpm").model_config) == [1000, 3000]
    assert lengths(make_run_config("ddpm", sets=["size=paper"]).model_config) == [50_000, 100_000]
    assert lengths(make_run_config("ddpm", {"train.steps": 7}).model_config) == [7, 7]
    assert lengths(make_run_config("ddpm", {"train.steps": 7}, ["ae_steps=5"]).model_config) == [
        5,
        7,
    ]
    resumed = apply_overrides(make_run_config("ddpm"), {"train.steps": 9})
    assert lengths(resumed.model_config) == [9, 9]


def test_disdiff_size_sets_its_length_and_batch_unless_given():
    cpu = make_run_config("disdiff")
    assert (cpu.model_config.get("disdiff_steps"), cpu.train.batch_size) == (1500, 32)
    paper = make_run_config("disdiff", sets=["size=paper"])
    assert (paper.model_config.get("disdiff_steps"), paper.train.batch_size) == (37_500, 128)
    given = make_run_config("disdiff", {"train.batch_size": 64, "train.steps": 5})
    assert (given.model_config.get("disdiff_steps"), given.train.batch_size) == (5, 64)
    assert make_run_config("disdiff", sets=["batch_size=16"]).train.batch_size == 16
    assert make_run_config("betavae").train.batch_size == 64
