"""The run folder: atomic writes, config and weights round trips, RNG state, refusal to clobber."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from tinymodel import register

from untwine import runs
from untwine.config import make_run_config
from untwine.errors import UntwineError


@pytest.fixture(autouse=True)
def _tiny(monkeypatch):
    register(monkeypatch)


def tiny(**train):
    options = {"data.name": "tinygrid", "train.batch_size": 8, "train.device": "cpu"}
    return make_run_config("tiny", {**options, **{f"train.{k}": v for k, v in train.items()}})


def test_config_json_round_trip_records_seed_and_versions(tmp_path):
    config = tiny(seed=7)
    runs.write_config(tmp_path, config)
    body = json.loads((tmp_path / runs.CONFIG).read_text())
    assert body["seed"] == 7 and body["versions"]["torch"] == torch.__version__
    assert runs.read_config(tmp_path) == config


def test_saved_weights_load_back_into_an_equal_model(tmp_path):
    config = tiny()
    runs.write_config(tmp_path, config)
    model = runs.build_model(config, (1, 8, 8))
    runs.save_weights(tmp_path, model)
    loaded = runs.load_model(tmp_path)
    assert not loaded.training
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    path = runs.atomic_write_text(tmp_path / "f.txt", "old")

    def explode(handle):
        handle.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        runs.atomic_write(path, explode)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["f.txt"]


def test_numpy_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    rng = np.random.RandomState(3)
    rng.normal()  # leaves a cached Gaussian in the state
    runs.save_checkpoint(tmp_path, {"rng": runs.numpy_state(rng)})
    other = np.random.RandomState(0)
    runs.set_numpy_state(other, runs.load_checkpoint(tmp_path)["rng"])
    assert np.array_equal(rng.randint(0, 1000, 50), other.randint(0, 1000, 50))
    assert rng.normal() == other.normal()


def test_truncate_log_drops_rows_after_the_checkpoint_step(tmp_path):
    for step in (10, 20, 30):
        runs.append_log(tmp_path, {"step": step, "loss": 1.0 / step})
    runs.truncate_log(tmp_path, 20)
    assert [r["step"] for r in runs.read_log(tmp_path)] == [10, 20]


def test_prepare_run_dir_refuses_an_unfinished_run_pointing_to_resume(tmp_path):
    runs.save_checkpoint(tmp_path, {"step": 3})
    with pytest.raises(
        UntwineError, match="unfinished run; continue it with `untwine train --resume"
    ):
        runs.prepare_run_dir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    runs.prepare_run_dir(tmp_path, force=True)
    assert os.listdir(tmp_path) == ["notes.txt"]


def test_load_model_of_an_unfinished_run_says_to_resume(tmp_path):
    runs.write_config(tmp_path, tiny())
    runs.save_checkpoint(tmp_path, {"step": 3})
    with pytest.raises(UntwineError, match="no model.safetensors.*--resume"):
        runs.load_model(tmp_path)


def test_representer_batches_and_returns_numpy_means(tmp_path):
    model = runs.build_model(tiny(), (1, 8, 8)).eval()
    x = torch.rand(10, 1, 8, 8)
    codes = runs.representer(model, batch_size=3)(x.numpy())
    assert codes.shape == (10, 3) and codes.dtype == np.float64
    np.testing.assert_allclose(codes, model.encode(x)[0].detach().numpy(), rtol=1e-6)


def test_small_autoencoders_train_and_get_their_pictures(tmp_path):
    from untwine.train import train

    for name in ("ae", "smallvae"):
        config = make_run_config(
            name,
            {"data.name": "blob2d", "train.steps": 3, "train.batch_size": 8,
             "train.metrics": "none", "train.device": "cpu"},
        )
        run_dir = tmp_path / name
        train(config, run_dir, quiet=True)
        model, dataset = runs.load_run(run_dir)
        x = dataset.images(dataset.sample_factors(4, np.random.RandomState(0)))
        recon = model.reconstruct(x)
        assert recon.shape == x.shape and 0 <= recon.min() and recon.max() <= 1
        assert model.kl_per_latent(x).shape == (2,)
        paths = runs.draw_run(run_dir)
        assert [p.name for p in paths] == list(runs.PICTURES)
        assert all(p.stat().st_size > 1000 for p in paths)

