"""The training loop: bit-exact resume (also after a real SIGTERM), NaN stops, logs, optimisers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tinymodel import assert_identical, register, tiny_config, weights

from untwine import runs
from untwine.config import make_run_config
from untwine.errors import UntwineError
from untwine.train import train

TESTS = Path(__file__).parent


@pytest.fixture(autouse=True)
def _tiny(monkeypatch):
    register(monkeypatch)


def test_resume_is_bit_identical_to_straight_run(tmp_path):
    straight = tiny_config(200, ["critic=true"])
    train(straight, tmp_path / "straight", quiet=True)
    train(tiny_config(100, ["critic=true"]), tmp_path / "split", quiet=True)
    train(straight, tmp_path / "split", resume=True, quiet=True)
    assert_identical(weights(tmp_path / "straight"), weights(tmp_path / "split"))
    steps = [row["step"] for row in runs.read_log(tmp_path / "split")]
    assert steps == list(range(10, 201, 10))


def test_resume_after_sigterm_is_bit_identical(tmp_path):
    """A CLI run killed with SIGTERM checkpoints where it stopped; resuming it finishes the
    same weights as an uninterrupted run."""
    train(tiny_config(200, ["delay=0.01"]), tmp_path / "straight", quiet=True)
    killed = tmp_path / "killed"
    script = (
        f"import sys; sys.path.insert(0, {str(TESTS)!r}); import tinymodel; "
        "tinymodel.register(); from untwine.cli import main; main()"
    )
    args = [
        "train",
        "tiny",
        "--data",
        "tinygrid",
        "--steps",
        "200",
        "--batch-size",
        "8",
        "--lr",
        "1e-2",
        "--metrics",
        "none",
        "--out",
        str(killed),
        "--quiet",
        "--set",
        "delay=0.01",
        "--set",
        "log_every=10",
        "--set",
        "checkpoint_every=50",
        "--set",
        "device=cpu",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (killed / runs.LOG).exists() or len(runs.read_log(killed)) < 3:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGTERM)
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 128 + signal.SIGTERM, output
    stopped = int(runs.load_checkpoint(killed)["step"])
    assert 30 <= stopped < 200, output
    assert f"stopped at step {stopped}" in output
    assert not (killed / runs.WEIGHTS).exists()
    train(runs.read_config(killed), killed, resume=True, quiet=True)
    assert_identical(weights(tmp_path / "straight"), weights(killed))


def test_a_signal_during_the_last_step_still_finishes_the_run(tmp_path):
    result = train(tiny_config(20, ["signal_at=19"]), tmp_path, quiet=True)
    assert result.step == 20 and result.signal is None
    assert (tmp_path / runs.WEIGHTS).exists()


def test_a_signal_mid_run_stops_with_a_checkpoint_and_no_weights(tmp_path):
    result = train(tiny_config(20, ["signal_at=9"]), tmp_path, quiet=True)
    assert result.interrupted and result.step == 10 and result.signal == signal.SIGTERM
    assert runs.load_checkpoint(tmp_path)["step"] == 10
    assert not (tmp_path / runs.WEIGHTS).exists()


def test_nan_loss_stops_naming_step_and_term_and_keeps_last_checkpoint(tmp_path):
    config = tiny_config(100, ["nan_at=64"], checkpoint_every=30)
    with pytest.raises(UntwineError, match=r"'loss' is nan at step 65\b"):
        train(config, tmp_path, quiet=True)
    assert runs.load_checkpoint(tmp_path)["step"] == 60
    assert not (tmp_path / runs.WEIGHTS).exists()
    assert [row["step"] for row in runs.read_log(tmp_path)] == [10, 20, 30, 40, 50, 60]


def test_log_rows_hold_every_loss_term_lr_and_speed(tmp_path):
    train(tiny_config(30, ["critic=true"]), tmp_path, quiet=True)
    rows = runs.read_log(tmp_path)
    assert list(rows[0]) == [
        "step", "stage", "loss", "recon", "kl", "critic", "lr", "images_per_s"]
    assert {r["stage"] for r in rows} == {"train"}
    assert [r["step"] for r in rows] == [10, 20, 30]
    assert all(r["lr"] == 1e-2 and r["images_per_s"] > 0 for r in rows)
    assert rows[-1]["recon"] < rows[0]["recon"]


def test_extra_optimiser_alone_updates_its_parameters(tmp_path):
    """The critic is trained by its own optimiser only; the main Adam never holds it."""
    from untwine.models.base import build_model
    from untwine.train import make_optimisers

    config = tiny_config(10, ["critic=true"])
    model = build_model(config.model, config.model_config, (1, 8, 8))
    adam, _, extras = make_optimisers(model, model.stages()[0], config.train)
    critic = {id(p) for p in model.critic.parameters()}
    assert not critic & {id(p) for g in adam.param_groups for p in g["params"]}
    assert [e.name for e, _ in extras] == ["critic"]
    assert isinstance(extras[0][1], torch.optim.SGD)


def test_batch_larger_than_dataset_is_refused(tmp_path):
    with pytest.raises(UntwineError, match="batch size 64 is larger than tinygrid"):
        train(tiny_config(5, batch_size=64), tmp_path, quiet=True)


def test_fresh_run_refuses_a_finished_run_folder(tmp_path):
    train(tiny_config(10), tmp_path, quiet=True)
    with pytest.raises(UntwineError, match="already holds a finished run.*--force"):
        train(tiny_config(10), tmp_path, quiet=True)
    train(tiny_config(10), tmp_path, quiet=True, force=True)
    assert len(runs.read_log(tmp_path)) == 1


def test_prepare_fills_betatcvae_dataset_size_from_the_dataset():
    from tinymodel import tiny_grid

    from untwine.models.base import build_model

    config = make_run_config("betatcvae", {"data.name": "tinygrid", "train.batch_size": 8})
    model = build_model(config.model, config.model_config, (1, 64, 64))
    model.prepare(tiny_grid())
    assert model.config.dataset_size == 32 and config.model_config.dataset_size is None


def two_stage_config(steps=20, sets=()):
    options = {
        "data.name": "tinygrid", "train.steps": steps, "train.batch_size": 8, "train.lr": 1e-2,
        "train.log_every": 5, "train.checkpoint_every": 7, "train.metrics": "none",
        "train.device": "cpu",
    }
    return make_run_config("twostage", options, list(sets))


def test_stages_run_in_order_each_training_its_own_parameters(tmp_path):
    from tinymodel import TwoStage

    config = two_stage_config(20, ["distil_steps=10", "checkpoint_every=5"])
    result = train(config, tmp_path, quiet=True)
    assert result.step == 30 and isinstance(result.model, TwoStage)
    rows = runs.read_log(tmp_path)
    assert [(r["step"], r["stage"]) for r in rows] == [
        (5, "distil"), (10, "distil"), (15, "decode"), (20, "decode"), (25, "decode"),
        (30, "decode")]
    assert "distil_mse" in rows[0] and "recon" not in rows[0] and "distil_mse" not in rows[-1]
    # the warm-up: lr (5 + 1) / 5 capped at 1 → the decode rows log the full lr
    assert rows[2]["lr"] == 1e-2
    assert result.model.scale.item() != 1.0


def test_frozen_parts_get_no_gradient_and_stay_out_of_the_checkpoint(tmp_path):
    config = two_stage_config(6)
    result = train(config, tmp_path, quiet=True)
    model = result.model
    fresh = torch.randn(model.teacher.weight.shape, generator=torch.Generator().manual_seed(9))
    assert torch.equal(model.teacher.weight, fresh) and model.teacher.weight.grad is None
    checkpoint = runs.load_checkpoint(tmp_path)["model"]
    assert not [k for k in checkpoint if k.startswith("teacher.")] and "enc.weight" in checkpoint
    assert "teacher.weight" in weights(tmp_path)


def test_frozen_parameters_are_never_handed_to_an_optimiser():
    from tinymodel import TwoStage, TwoStageConfig, tiny_grid

    from untwine.train import make_optimisers

    model = TwoStage(TwoStageConfig(), (1, 8, 8))
    model.prepare(tiny_grid())
    teacher = {id(p) for p in model.teacher.parameters()}
    for stage in model.stages():
        optimiser, _, _ = make_optimisers(model, stage, two_stage_config().train)
        held = {id(p) for g in optimiser.param_groups for p in g["params"]}
        assert held and not held & teacher


@pytest.mark.parametrize("stop", ["distil:8", "distil:19", "decode:0", "decode:11"])
def test_resume_inside_or_between_stages_is_bit_identical(tmp_path, stop):
    train(two_stage_config(20), tmp_path / "straight", quiet=True)
    split = tmp_path / "split"
    stopped = train(two_stage_config(20, [f"signal_at={stop}"]), split, quiet=True)
    stage, step = stop.split(":")
    assert stopped.interrupted
    assert stopped.step == (0 if stage == "distil" else 20) + int(step) + 1
    state = runs.load_checkpoint(split)
    assert (state["stage"], state["stage_step"]) == (int(stage == "decode"), int(step) + 1)
    train(two_stage_config(20), split, resume=True, quiet=True)
    assert_identical(weights(tmp_path / "straight"), weights(split))
    steps = [r["step"] for r in runs.read_log(split)]
    assert steps == sorted(set(steps)) and steps[-1] == 40
    assert set(range(5, 41, 5)) <= set(steps)


def test_resuming_a_finished_run_asks_for_more_steps(tmp_path):
    train(two_stage_config(5), tmp_path, quiet=True)
    with pytest.raises(UntwineError, match="already trained to step 10; pass --steps N"):
        train(two_stage_config(5), tmp_path, resume=True, quiet=True)
