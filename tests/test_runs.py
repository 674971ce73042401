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


def test_a_row_with_new_terms_widens_the_log_and_leaves_old_cells_empty(tmp_path):
    runs.append_log(tmp_path, {"step": 1, "stage": "autoencoder", "recon": 0.5})
    runs.append_log(tmp_path, {"step": 2, "stage": "dpm", "noise_mse": 0.25})
    assert (tmp_path / runs.LOG).read_text().splitlines() == [
        "step,stage,recon,noise_mse", "1,autoencoder,0.5,", "2,dpm,,0.25"]
    assert runs.read_log(tmp_path) == [
        {"step": 1, "stage": "autoencoder", "recon": 0.5},
        {"step": 2, "stage": "dpm", "noise_mse": 0.25},
    ]
    assert not [p for p in tmp_path.iterdir() if p.name != runs.LOG]


def test_prepare_run_dir_refuses_an_unfinished_run_pointing_to_resume(tmp_path):
    runs.save_checkpoint(tmp_path, {"step": 3})
    with pytest.raises(
        UntwineError, match="unfinished run; continue it with `untwine train --resume"
    ):
        runs.prepare_run_dir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    runs.prepare_run_dir(tmp_path, force=True)
    assert os.listdir(tmp_path) == ["notes.txt"]
