"""The one run call: train → evaluate → draw with one dataset load and one model build; loading
trained runs back; model hooks (extra metrics and pictures) reach the run folder."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from tinymodel import register

from untwine import pipeline, runs
from untwine.config import make_run_config
from untwine.errors import UntwineError
from untwine.models.base import build_model, representer


@pytest.fixture(autouse=True)
def _tiny(monkeypatch):
    register(monkeypatch)


def tiny(steps=10, **train):
    options = {"data.name": "tinygrid", "train.batch_size": 8, "train.device": "cpu",
               "train.steps": steps, "train.metrics": "none", "train.log_every": 5}
    return make_run_config("tiny", {**options, **{f"train.{k}": v for k, v in train.items()}})


def test_saved_weights_load_back_into_an_equal_model(tmp_path):
    config = tiny()
    runs.write_config(tmp_path, config)
    model = build_model(config.model, config.model_config, (1, 8, 8))
    runs.save_weights(tmp_path, model)
    loaded = pipeline.load_model(tmp_path)
    assert not loaded.training
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_load_model_of_an_unfinished_run_says_to_resume(tmp_path):
    runs.write_config(tmp_path, tiny())
    runs.save_checkpoint(tmp_path, {"step": 3})
    with pytest.raises(UntwineError, match="no model.safetensors.*--resume"):
        pipeline.load_model(tmp_path)


def test_representer_batches_and_returns_numpy_means():
    torch.manual_seed(0)
    config = tiny()
    model = build_model(config.model, config.model_config, (1, 8, 8)).eval()
    x = torch.rand(10, 1, 8, 8)
    codes = representer(model, batch_size=3)(x.numpy())
    assert codes.shape == (10, 3) and codes.dtype == np.float64
    np.testing.assert_allclose(codes, model.encode(x)[0].detach().numpy(), atol=1e-6)


def test_run_loads_the_dataset_once_builds_the_model_once_and_scores_it(tmp_path, monkeypatch):
    from untwine.data import registry
    from untwine.models import base

    calls = {"load": 0, "build": 0}
    load, build = registry.load_dataset, base.build_model

    def counted_load(*args, **kwargs):
        calls["load"] += 1
        return load(*args, **kwargs)

    def counted_build(*args, **kwargs):
        calls["build"] += 1
        return build(*args, **kwargs)

    monkeypatch.setattr("untwine.data.load_dataset", counted_load)
    # untwine.train is also the name of the function the package exports: patch the module
    monkeypatch.setattr(sys.modules["untwine.train"], "build_model", counted_build)
    small = {"mig": {"num_train": 64, "num_bins": 20},
             "dci_fast": {"num_train": 64, "num_test": 32}}
    monkeypatch.setattr("untwine.metrics.registry.PRESETS", {"fast": small, "study": small})
    result = pipeline.run(tiny(10, metrics="fast"), tmp_path, quiet=True)
    assert calls == {"load": 1, "build": 1}
    assert result.metrics == runs.read_metrics(tmp_path)
    assert set(result.metrics["metrics"]) == {"mig", "dci_fast"}
    assert [p.name for p in result.pictures] == list(runs.PICTURES)
    assert all(p.stat().st_size > 1000 for p in result.pictures)


def test_model_hooks_add_scores_and_pictures(tmp_path, monkeypatch):
    from tinymodel import TinyVAE

    def draw(self, dataset, run_dir, seed):
        path = run_dir / "extra.png"
        path.write_bytes(b"x" * 2000)
        return [path]

    monkeypatch.setattr(TinyVAE, "extra_metrics", lambda self, ds, seed: {"found": np.int64(3)})
    monkeypatch.setattr(TinyVAE, "draw", draw)
    result = pipeline.run(tiny(5), tmp_path, quiet=True)
    metrics = pipeline.evaluate_model(result.model, result.dataset, ["mig"])
    assert metrics["metrics"]["model"] == {"found": 3}
    assert (tmp_path / "extra.png").exists()


def test_a_model_without_codes_skips_metrics_and_traversals(tmp_path, monkeypatch):
    from tinymodel import TinyVAE

    monkeypatch.setattr(TinyVAE, "has_codes", False)
    result = pipeline.run(tiny(5, metrics="fast"), tmp_path, quiet=True)
    assert result.metrics == {} and result.pictures == []
    assert not (tmp_path / runs.METRICS).exists()
    with pytest.raises(UntwineError, match="no codes"):
        pipeline.evaluate_run(tmp_path)


def test_an_interrupted_run_is_neither_scored_nor_drawn(tmp_path):
    config = make_run_config(
        "tiny", {"data.name": "tinygrid", "train.batch_size": 8, "train.device": "cpu",
                 "train.steps": 20, "train.metrics": "fast"}, ["signal_at=4"])
    result = pipeline.run(config, tmp_path, quiet=True)
    assert result.interrupted and result.step == 5 and result.pictures == []
    assert not (tmp_path / runs.METRICS).exists()


def test_small_autoencoders_train_and_get_their_pictures(tmp_path):
    for name in ("ae", "smallvae"):
        config = make_run_config(
            name,
            {"data.name": "blob2d", "train.steps": 3, "train.batch_size": 8,
             "train.metrics": "none", "train.device": "cpu"},
        )
        run_dir = tmp_path / name
        pipeline.run(config, run_dir, quiet=True)
        model, dataset = pipeline.load_run(run_dir)
        x = dataset.images(dataset.sample_factors(4, np.random.RandomState(0)))
        recon = model.reconstruct(x)
        assert recon.shape == x.shape and 0 <= recon.min() and recon.max() <= 1
        assert model.kl_per_latent(x).shape == (2,)
        assert all((run_dir / name).stat().st_size > 1000 for name in runs.PICTURES)
