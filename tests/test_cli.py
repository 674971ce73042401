"""The CLI's train / evaluate / traverse / models commands, end to end on a tiny model."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from tinymodel import register
from typer.testing import CliRunner

from untwine import runs
from untwine.cli import app, main
from untwine.errors import UntwineError

runner = CliRunner()
TINY = [
    "--data",
    "tinygrid",
    "--batch-size",
    "8",
    "--lr",
    "1e-2",
    "--quiet",
    "--set",
    "log_every=5",
    "--set",
    "checkpoint_every=10",
    "--set",
    "device=cpu",
]


@pytest.fixture(autouse=True)
def _tiny(monkeypatch):
    register(monkeypatch)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_models_lists_each_model_with_its_defaults():
    result = invoke("models")
    assert result.exit_code == 0, result.output
    for text in ("betavae", "beta=4.0", "latents=10", "factorvae", "betatcvae", "dipvae2"):
        assert text in result.output


def test_train_writes_the_run_folder_and_pictures_then_resume_extends_it(tmp_path):
    run = tmp_path / "run"
    result = invoke("train", "tiny", *TINY, "--steps", "20", "--metrics", "none", "--out", run)
    assert result.exit_code == 0, result.output
    for name in ("config.json", "model.safetensors", "log.csv", *runs.PICTURES):
        assert (run / name).exists(), name
    assert "wrote" in result.output and str(run / "traversal.png") in result.output
    assert runs.read_config(run).train.batch_size == 8

    result = invoke("train", "--resume", run, "--steps", "30", "--metrics", "none", "--quiet")
    assert result.exit_code == 0, result.output
    assert [r["step"] for r in runs.read_log(run)] == [5, 10, 15, 20, 25, 30]
    assert runs.read_config(run).train.steps == 30


def test_train_refuses_to_overwrite_and_resume_refuses_new_settings(tmp_path):
    run = tmp_path / "run"
    assert (
        invoke("train", "tiny", *TINY, "--steps", "10", "--metrics", "none", "--out", run).exit_code
        == 0
    )
    again = invoke("train", "tiny", *TINY, "--steps", "10", "--out", run)
    assert isinstance(again.exception, UntwineError)
    assert "already holds a finished run" in str(again.exception)
    done = invoke("train", "--resume", run, "--quiet")
    assert "already trained to step 10; pass --steps N" in str(done.exception)
    changed = invoke("train", "--resume", run, "--lr", "0.1", "--steps", "20")
    assert "drop --lr" in str(changed.exception)


def test_unknown_model_is_a_clear_error():
    result = invoke("train", "nosuch")
    assert isinstance(result.exception, UntwineError)
    assert "known models:" in str(result.exception) and "betavae" in str(result.exception)


def test_evaluate_writes_metrics_json_and_traverse_writes_png(tmp_path, monkeypatch):
    import untwine.metrics

    def fake_evaluate(dataset, represent, preset, seed):
        codes = represent(dataset.images(dataset.sample_factors(4, np.random.RandomState(0))))
        return {"preset": preset, "code_size": codes.shape[1], "mig": {"discrete_mig": 0.25}}

    monkeypatch.setattr(untwine.metrics, "evaluate", fake_evaluate, raising=False)
    run = tmp_path / "run"
    assert (
        invoke("train", "tiny", *TINY, "--steps", "5", "--metrics", "none", "--out", run).exit_code
        == 0
    )
    result = invoke("evaluate", run, "--preset", "fast")
    assert result.exit_code == 0, result.output
    assert json.loads((run / "metrics.json").read_text())["mig"]["discrete_mig"] == 0.25
    assert "mig.discrete_mig" in result.output and "0.2500" in result.output
    result = invoke("traverse", run, "--out", tmp_path / "t.png")
    assert result.exit_code == 0 and (tmp_path / "t.png").exists()


def test_train_betavae_defaults_to_the_dsprites_twin(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--steps", "2", "--batch-size", "4", "--metrics", "none", "--quiet"]
    result = invoke("train", "betavae", *args)
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "betavae-dsprites-s0"
    config = runs.read_config(run)
    assert (config.data.name, config.data.path, config.model_config.beta) == ("dsprites", None, 4.0)
    assert all((run / name).exists() for name in ("model.safetensors", *runs.PICTURES))


def test_main_prints_a_user_error_in_one_line_and_exits_2(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["untwine", "train", "nosuchmodel"])
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 2
    out = capsys.readouterr().out
    assert out.startswith("error: unknown model 'nosuchmodel'") and "Traceback" not in out


def test_main_with_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["untwine", "--debug", "train", "nosuchmodel"])
    with pytest.raises(UntwineError, match="unknown model"):
        main()


def test_datasets_list_shows_every_dataset_with_its_source():
    result = CliRunner().invoke(app, ["datasets", "list"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for name in ("dsprites", "shapes3d", "mpi3d", "cars3d", "smallnorb", "blob2d"):
        assert name in result.output
    assert "posX=32" in result.output and "twin + file" in result.output


def test_datasets_show_writes_the_gallery_and_loader_only_sets_need_a_path(tmp_path):
    out = tmp_path / "blob.png"
    result = invoke("datasets", "show", "blob2d", "--out", out)
    assert result.exit_code == 0 and out.stat().st_size > 1000
    result = invoke("datasets", "show", "cars3d")
    assert isinstance(result.exception, UntwineError)
    assert "no procedural twin" in str(result.exception)


def test_the_cli_module_runs_with_python_dash_m():
    import subprocess

    out = subprocess.run(
        [sys.executable, "-m", "untwine.cli", "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "train" in out.stdout and "evaluate" in out.stdout
