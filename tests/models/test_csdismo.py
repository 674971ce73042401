"""C-S DisMo: the subset and its codes, the two stages, resume, and the CLI end to end."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from untwine import runs
from untwine.config import make_run_config
from untwine.data import load_dataset
from untwine.errors import UntwineError
from untwine.models.csdismo import CSDisMo, CSDisMoConfig
from untwine.train import train


def tiny_config(sets=()):
    options = {"data.name": "dsprites", "train.steps": 6, "train.batch_size": 8,
               "train.lr": 1e-3, "train.log_every": 2, "train.checkpoint_every": 4,
               "train.metrics": "none", "train.device": "cpu"}
    base = ["train_images=16", "latent_steps=6", "encoder_steps=3", "content_dim=3",
            "style_dim=2", "affine_hidden=8"]
    return make_run_config("csdismo", options, base + list(sets))


def test_subset_batches_pair_each_image_with_its_own_row():
    ds = load_dataset("dsprites")
    model = CSDisMo(CSDisMoConfig(train_images=5), ds.image_shape)
    model.prepare(ds)
    with pytest.raises(UntwineError, match="not drawn"):
        model.subset_batch(2, np.random.RandomState(0))
    torch.manual_seed(0)
    model.draw_subset(ds)
    assert len(set(model.train_index.tolist())) == 5
    images, pos = model.subset_batch(7, np.random.RandomState(1))
    expected = ds.images(ds.index_to_factors(model.train_index.numpy()[pos.numpy()]))
    assert torch.equal(images, expected) and pos.shape == (7,)


def test_too_large_a_subset_is_refused():
    ds = load_dataset("dsprites")
    with pytest.raises(UntwineError, match="train_images=10 exceeds"):
        CSDisMo(CSDisMoConfig(train_images=10), ds.image_shape).prepare(
            type("Small", (), {"__len__": lambda self: 4, "name": "small"})())


def test_stages_train_codes_with_the_generator_then_only_the_encoders(tmp_path):
    result = train(tiny_config(), tmp_path, quiet=True)
    model = result.model
    assert result.step == 9
    rows = runs.read_log(tmp_path)
    assert [r["stage"] for r in rows] == ["latent"] * 3 + ["encoders"] * 2
    assert "code_mse" in rows[-1] and "code_sq" in rows[0]
    torch.manual_seed(0)
    fresh = CSDisMo(model.config, (1, 64, 64))
    # stage 1 moved the codes and the generator; the perceptual net never moves
    assert not torch.equal(model.content_table.weight, fresh.content_table.weight)
    assert torch.equal(model.features.weight0, fresh.features.weight0)
    # stage 2 left the generator as stage 1 ended: a 6-step run has the same generator
    only_latent = train(tiny_config(["encoder_steps=1"]), tmp_path / "l", quiet=True).model
    g1, g2 = model.generator.state_dict(), only_latent.generator.state_dict()
    assert all(torch.equal(g1[k], g2[k]) for k in g1)
    assert model.represent(torch.rand(4, 1, 64, 64)).shape == (4, 5)


def test_each_image_keeps_its_own_codes_across_resume(tmp_path, monkeypatch):
    train(tiny_config(), tmp_path / "straight", quiet=True)
    original = CSDisMo.latent_loss

    def stop_at_3(self, batch, step):
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, batch, step)

    monkeypatch.setattr(CSDisMo, "latent_loss", stop_at_3)
    stopped = train(tiny_config(), tmp_path / "split", quiet=True)
    assert stopped.interrupted and runs.load_checkpoint(tmp_path / "split")["stage_step"] == 4
    monkeypatch.setattr(CSDisMo, "latent_loss", original)
    train(tiny_config(), tmp_path / "split", resume=True, quiet=True)
    a, b = (load_file(tmp_path / d / runs.WEIGHTS) for d in ("straight", "split"))
    assert torch.equal(a["train_index"], b["train_index"])  # the same subset, in the same rows
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.slow
def test_trains_evaluates_and_draws_from_the_cli(tmp_path):
    from typer.testing import CliRunner

    from untwine.cli import app

    out = tmp_path / "run"
    args = ["train", "csdismo", "--data", "dsprites", "--steps", "4", "--batch-size", "8",
            "--metrics", "none", "--out", str(out), "--quiet", "--set", "train_images=32",
            "--set", "content_dim=3", "--set", "style_dim=2", "--set", "device=cpu"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "swap_grid.png").stat().st_size > 5000
    from untwine.pipeline import evaluate_model, load_run

    model, ds = load_run(out)
    metrics = json.loads(json.dumps(evaluate_model(model, ds, ["mig"], seed=0)))["metrics"]
    scores = metrics["model"]
    assert "discrete_mig" in metrics["mig"]  # the standard suite on [content, style]
    assert 0 <= scores["swap_error"] <= 1 and set(scores["mapping"]) == {
        "shape", "scale", "orientation", "posX", "posY"}
    for key in ("leakage_content", "leakage_style"):  # NaN when the mapping is one-sided
        assert scores["mapping_one_sided"] or 0 <= scores[key] <= 1
    assert scores["declared"]["content"] == ["posX", "posY"]
    assert 0 <= scores["declared"]["leakage_content"] <= 1
