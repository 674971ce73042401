"""Fault injection: damaged run-folder files, a full disk, SIGKILL mid-run, folders swapped
between models, bad command-line input. Each fault must end in one line naming the problem and
the fix, and must not lose anything finished: the run resumes (bit-exactly on CPU) or its
weights load as before."""

from __future__ import annotations

import errno
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from tinymodel import assert_identical, register, weights
from tinymodel import tiny_config as shared_tiny_config
from typer.testing import CliRunner

from untwine import files, pipeline, runs
from untwine.cli import app, main
from untwine.config import check_seed, make_run_config
from untwine.errors import UntwineError
from untwine.train import train

TESTS = Path(__file__).parent


@pytest.fixture(autouse=True)
def _tiny(monkeypatch):
    register(monkeypatch)


def tiny_config(steps=60, sets=(), **train_options):
    """The shared tiny config, checkpointing every 20 steps (the fault tests count on it)."""
    return shared_tiny_config(steps, sets, **{"checkpoint_every": 20, **train_options})


def logged_steps(run_dir: Path) -> list[int]:
    return [row["step"] for row in runs.read_log(run_dir)]


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text and "Traceback" not in text
    return text


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """Uninterrupted tiny runs of 60 and 100 steps, the references for every recovery."""
    root = tmp_path_factory.mktemp("straight")
    register()
    for steps in (60, 100):
        train(tiny_config(steps), root / str(steps), quiet=True)
    return root


# -- damaged checkpoint ---------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "wrong_content"])
def test_a_damaged_checkpoint_points_to_the_previous_one_which_resumes_bit_exactly(
    tmp_path, straight, damage
):
    run = tmp_path / "run"
    train(tiny_config(50), run, quiet=True)  # checkpoints at 20, 40 and 50: state.prev.pt is 40
    state = run / runs.CHECKPOINT
    if damage == "truncate":
        state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    elif damage == "garbage":
        state.write_bytes(os.urandom(4096))
    elif damage == "empty":
        state.write_bytes(b"")
    else:
        torch.save({"step": 50}, state)
    with pytest.raises(UntwineError) as err:
        train(tiny_config(100), run, resume=True, quiet=True)
    message = one_line(err)
    assert f"{state} is damaged" in message
    assert f"previous checkpoint (step 40) is sound: `mv {run / runs.PREVIOUS} {state}`" in message
    shutil.move(run / runs.PREVIOUS, state)  # the fix the message names
    train(tiny_config(100), run, resume=True, quiet=True)
    assert_identical(weights(straight / "100"), weights(run))
    assert logged_steps(run) == list(range(10, 101, 10))


def test_a_damaged_lone_checkpoint_says_to_train_again(tmp_path):
    run = tmp_path / "run"
    train(tiny_config(20), run, quiet=True)  # one checkpoint only
    (run / runs.CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(UntwineError, match=r"is damaged .*train the run again .*--force"):
        train(tiny_config(40), run, resume=True, quiet=True)
    # the finished weights are untouched and still load
    assert pipeline.load_model(run) is not None


# -- damaged or missing weights ---------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncate", "garbage", "delete"])
def test_damaged_weights_are_named_and_rebuilt_from_the_checkpoint(tmp_path, straight, damage):
    run = tmp_path / "run"
    train(tiny_config(60), run, quiet=True)
    path = run / runs.WEIGHTS
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "garbage":
        path.write_bytes(b"\xff" * 64)
    else:
        path.unlink()
    with pytest.raises(UntwineError) as err:
        pipeline.load_model(run)
    message = one_line(err)
    if damage == "delete":
        assert "no model.safetensors (training unfinished: resume it" in message
    else:
        assert f"{path} is damaged" in message
        assert f"rebuild it from the checkpoint with `untwine train --resume {run}`" in message
    result = train(runs.read_config(run), run, resume=True, quiet=True)  # the fix
    assert result.step == 60 and not result.interrupted
    assert_identical(weights(straight / "60"), weights(run))
    assert runs.weights_info(run)["step"] == "60"


def test_a_finished_run_with_sound_weights_still_asks_for_more_steps(tmp_path):
    run = tmp_path / "run"
    train(tiny_config(20), run, quiet=True)
    with pytest.raises(UntwineError, match="already trained to step 20; pass --steps N"):
        train(tiny_config(20), run, resume=True, quiet=True)


# -- damaged config, log and metrics ----------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        ('{"model": "tiny", "train": {', "is unreadable"),
        ("", "is unreadable"),
        ("[1, 2]", "is unreadable (no 'model' entry)"),
        ('{"model": "tiny", "train": {"lr": "fast"}}', "lr must be a number"),
        ('{"model": "tiny", "data": 5}', "does not describe a run"),
        ('{"model": "nosuchmodel"}', "unknown model 'nosuchmodel'"),
    ],
)
def test_a_damaged_config_json_is_one_line_and_weights_stay(tmp_path, content, phrase):
    run = tmp_path / "run"
    train(tiny_config(20), run, quiet=True)
    before = weights(run)
    (run / runs.CONFIG).write_text(content)
    with pytest.raises(UntwineError) as err:
        pipeline.load_model(run)
    assert phrase in one_line(err)
    assert_identical(before, weights(run))


def test_torn_log_lines_are_skipped_and_resume_rewrites_a_clean_log(tmp_path, straight):
    run = tmp_path / "run"
    train(tiny_config(50), run, quiet=True)
    with (run / runs.LOG).open("a") as handle:
        handle.write("55,tra")  # a line cut by a kill in an older, appending writer
    assert logged_steps(run) == [10, 20, 30, 40, 50]
    with (run / runs.LOG).open("a") as handle:
        handle.write("\n\x00\x00garbage,,\n60,train,abc,1,2,3\n")
    train(tiny_config(100), run, resume=True, quiet=True)
    assert logged_steps(run) == list(range(10, 101, 10))
    assert_identical(weights(straight / "100"), weights(run))


def test_a_damaged_metrics_json_says_to_evaluate_again(tmp_path):
    (tmp_path / runs.METRICS).write_text('{"metrics": ')
    with pytest.raises(UntwineError, match=r"is unreadable .*untwine evaluate"):
        runs.read_metrics(tmp_path)


# -- disk full, permission denied -------------------------------------------------------------


def failing_fsync(after: int, code: int):
    """An ``os.fsync`` that works ``after`` times, then fails with ``code`` (ENOSPC, EACCES)."""
    calls = {"n": 0}
    real = os.fsync

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] > after:
            raise OSError(code, os.strerror(code))
        return real(fd)

    return fsync


@pytest.mark.parametrize(
    ("code", "phrase"),
    [(errno.ENOSPC, "the disk is full"), (errno.EACCES, "permission denied"),
     (errno.EROFS, "read-only")],
)
@pytest.mark.parametrize("after", [1, 4, 7, 12])
def test_a_full_disk_mid_run_names_it_and_the_run_resumes_bit_exactly(
    tmp_path, straight, monkeypatch, code, phrase, after
):
    """Every write goes through fsync: config, 10 log rows, 5 checkpoints, the weights.
    Failing the n-th write stops with one line; the old files stay whole; resuming once the
    disk has room gives the weights of an uninterrupted run."""
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(files.os, "fsync", failing_fsync(after, code))
        with pytest.raises(runs.WriteError) as err:
            train(tiny_config(100), run, quiet=True)
    message = one_line(err)
    assert message.startswith(f"cannot write {run}") and phrase in message
    assert not [p for p in run.rglob("*.tmp")]
    done = runs.checkpoint_step(run)
    if done is None:
        assert "run the command again" in message
        train(tiny_config(100), run, force=True, quiet=True)
    else:
        assert f"checkpoint of step {done} is intact: continue with" in message
        train(tiny_config(100), run, resume=True, quiet=True)
    assert_identical(weights(straight / "100"), weights(run))
    assert logged_steps(run) == list(range(10, 101, 10))


class FullDisk(io.RawIOBase):
    """A file whose writes fail with ENOSPC once ``room`` bytes are taken, like a full tmpfs."""

    def __init__(self, handle, room: int):
        self.handle, self.room = handle, room

    def write(self, data) -> int:
        size = memoryview(data).nbytes
        if size > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= size
        return self.handle.write(data)

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __exit__(self, *exc):
        self.handle.close()


def test_a_disk_filling_up_inside_the_checkpoint_write_names_it(tmp_path, monkeypatch):
    # torch.save writing into a full disk raised its zip writer's RuntimeError (a traceback).
    real = files.os.fdopen
    monkeypatch.setattr(files.os, "fdopen", lambda fd, mode: FullDisk(real(fd, mode), 1000))
    with pytest.raises(runs.WriteError, match="state.pt: the disk is full; free some space"):
        runs.save_checkpoint(tmp_path, {"weights": torch.zeros(10_000)})
    assert list(tmp_path.rglob("*.tmp")) == [] and not (tmp_path / runs.CHECKPOINT).exists()


def test_a_full_disk_while_writing_a_picture_leaves_no_half_file(tmp_path, monkeypatch):
    from untwine.viz.figures import save, subplots

    monkeypatch.setattr(files.os, "fsync", failing_fsync(0, errno.ENOSPC))
    fig, _ = subplots()
    with pytest.raises(UntwineError, match="cannot write .*p.png: the disk is full"):
        save(fig, tmp_path / "p.png")
    assert list(tmp_path.iterdir()) == []


# -- an interrupted --resume --steps N leaves stale weights -----------------------------------


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs."""


def test_stale_weights_of_an_interrupted_longer_resume_are_refused_then_finished(
    tmp_path, straight, monkeypatch
):
    run = tmp_path / "run"
    train(tiny_config(60), run, quiet=True)
    real = runs.save_checkpoint

    def kill_after_step_80(run_dir, state):
        real(run_dir, state)
        if state["step"] == 80:
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(runs, "save_checkpoint", kill_after_step_80)
        with pytest.raises(Killed):
            train(tiny_config(100), run, resume=True, quiet=True)
    with pytest.raises(UntwineError) as err:
        pipeline.load_model(run)
    message = one_line(err)
    assert "is from step 60, but training went on to step 80" in message
    assert f"finish it with `untwine train --resume {run}`" in message
    train(runs.read_config(run), run, resume=True, quiet=True)  # config.json says 100 steps
    assert_identical(weights(straight / "100"), weights(run))
    assert pipeline.load_model(run) is not None


# -- folders swapped between models, image sizes ----------------------------------------------


def test_weights_of_another_model_size_are_refused_naming_the_mix(tmp_path):
    small, wide = tmp_path / "small", tmp_path / "wide"
    train(tiny_config(20), small, quiet=True)
    train(tiny_config(20, ["latents=5"]), wide, quiet=True)
    kept = weights(small)
    shutil.copy(wide / runs.WEIGHTS, small / runs.WEIGHTS)
    with pytest.raises(UntwineError) as err:
        pipeline.load_model(small)
    assert "does not fit the tiny on tinygrid (1, 8, 8)" in one_line(err)
    assert "mixes files of different runs" in str(err.value)
    shutil.copy(wide / runs.CHECKPOINT, small / runs.CHECKPOINT)
    with pytest.raises(UntwineError, match="state.pt does not fit the TinyVAE .* different runs"):
        train(tiny_config(40), small, resume=True, quiet=True)
    shutil.copy(wide / runs.CONFIG, small / runs.CONFIG)  # now all of wide's files: loads
    assert pipeline.load_model(small) is not None
    assert kept.keys() == weights(tmp_path / "small").keys()


def test_weights_of_another_model_name_are_refused(tmp_path):
    tiny_run, two = tmp_path / "tiny", tmp_path / "two"
    train(tiny_config(20), tiny_run, quiet=True)
    config = make_run_config("twostage", {"data.name": "tinygrid", "train.steps": 4,
                                          "train.batch_size": 8, "train.device": "cpu",
                                          "train.metrics": "none"})
    train(config, two, quiet=True)
    shutil.copy(two / runs.WEIGHTS, tiny_run / runs.WEIGHTS)
    with pytest.raises(UntwineError, match="weights of model twostage but config.json says tiny"):
        pipeline.load_model(tiny_run)


def test_a_config_naming_another_image_size_is_refused(tmp_path):
    run = tmp_path / "run"
    train(tiny_config(20), run, quiet=True)
    body = json.loads((run / runs.CONFIG).read_text())
    body["data"]["name"] = "blob2d"  # 32×32 images, not the 8×8 the weights were trained on
    (run / runs.CONFIG).write_text(json.dumps(body))
    with pytest.raises(UntwineError, match=r"does not fit the tiny on blob2d \(1, 32, 32\)"):
        pipeline.load_model(run)


# -- devices ----------------------------------------------------------------------------------


def test_a_cuda_trained_run_loads_and_scores_on_this_cpu(tmp_path):
    run = tmp_path / "run"
    train(tiny_config(20), run, quiet=True)
    body = json.loads((run / runs.CONFIG).read_text())
    body["train"]["device"] = "cuda:3"  # as written by a run on a 4-GPU machine
    (run / runs.CONFIG).write_text(json.dumps(body))
    if torch.cuda.device_count() > 3:
        pytest.skip("this machine has that GPU")
    model = pipeline.load_model(run)
    assert next(model.parameters()).device.type in ("cpu", "cuda")
    with pytest.raises(UntwineError) as err:
        train(runs.read_config(run), run, resume=True, quiet=True)
    message = one_line(err)
    assert f"continue it here with `untwine train --resume {run} --set device=auto`" in message


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_mps_where_there_is_none_is_one_line():
    with pytest.raises(UntwineError, match="has no MPS .*--set device=auto or --set device=cpu"):
        train(tiny_config(5, device="mps"), "unused", quiet=True)


# -- evaluation failing after training --------------------------------------------------------


def test_a_failed_evaluation_still_draws_and_leaves_a_valid_run(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("sklearn exploded")

    monkeypatch.setattr(pipeline, "evaluate_model", broken)
    run = tmp_path / "run"
    with pytest.raises(UntwineError) as err:
        pipeline.run(tiny_config(20, metrics="fast"), run, quiet=True)
    message = one_line(err)
    assert "trained and saved (step 20) and its pictures are drawn" in message
    assert f"evaluation failed: sklearn exploded; score it again with `untwine evaluate {run}`" in (
        message
    )
    assert all((run / name).exists() for name in runs.PICTURES)
    assert not (run / runs.METRICS).exists()
    assert pipeline.load_model(run) is not None


# -- SIGKILL at random steps, then resume -----------------------------------------------------


def cli_train(out: Path, *extra: str) -> subprocess.Popen:
    script = (
        f"import sys; sys.path.insert(0, {str(TESTS)!r}); import tinymodel; "
        "tinymodel.register(); from untwine.cli import main; main()"
    )
    args = ["train", *extra, "--quiet"]
    return subprocess.Popen(
        [sys.executable, "-c", script, *args, *(["--out", str(out)] if out else [])],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


TINY_CLI = ["tiny", "--data", "tinygrid", "--steps", "100", "--batch-size", "8", "--lr", "1e-2",
            "--metrics", "none", "--set", "delay=0.01", "--set", "log_every=10",
            "--set", "checkpoint_every=20", "--set", "device=cpu"]


@pytest.mark.slow
def test_sigkill_at_random_steps_then_resume_loses_nothing_finished(tmp_path):
    """Kill -9 a CLI run three times at seeded random log rows, resuming after each kill; the
    weights equal an uninterrupted run's (same delay option) and the log has every row once."""
    straight = tmp_path / "straight"
    assert cli_train(straight, *TINY_CLI).wait(120) == 0
    run, rng = tmp_path / "killed", random.Random(13)
    proc = cli_train(run, *TINY_CLI)
    for _ in range(3):
        target = rng.randint(1, 9)  # after this many log rows of the whole run
        deadline = time.monotonic() + 60
        while len(runs.read_log(run)) < target and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(60)
        done = runs.checkpoint_step(run)
        if done is not None and done < 100:
            # every step checkpointed before the kill is kept; nothing later was claimed
            assert logged_steps(run)[: done // 10] == list(range(10, done + 1, 10))
        proc = cli_train(None, "--resume", str(run)) if done is not None else cli_train(
            run, *TINY_CLI, "--force"
        )
    output = proc.communicate(timeout=120)[0]
    if proc.returncode != 0:  # the last resume found the run already finished
        assert "already trained to step 100" in output, output
    assert "Traceback" not in output
    assert_identical(weights(straight), weights(run))
    assert logged_steps(run) == list(range(10, 101, 10))


# -- bad command-line input -------------------------------------------------------------------

runner = CliRunner()


def cli_error(*args: str, capsys, monkeypatch) -> str:
    """Run ``untwine ARGS`` through ``main``; the one-line error it prints (exit code 2)."""
    monkeypatch.setattr(sys, "argv", ["untwine", *map(str, args)])
    with pytest.raises(SystemExit) as stopped:
        main()
    out = capsys.readouterr().out
    assert stopped.value.code == 2, out
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and out.endswith(errors[0] + "\n") and "Traceback" not in out, out
    return errors[0]


@pytest.fixture
def finished_run(tmp_path):
    run = tmp_path / "run"
    train(tiny_config(20), run, quiet=True)
    return run


@pytest.mark.parametrize("command", ["evaluate", "traverse"])
def test_a_negative_seed_is_one_line(finished_run, capsys, monkeypatch, command):
    out = cli_error(command, finished_run, "--seed", "-1", capsys=capsys, monkeypatch=monkeypatch)
    assert "seed must be an integer in 0 … 2**32 - 1; got -1" in out


def test_datasets_show_negative_seed_is_one_line(capsys, monkeypatch, tmp_path):
    out = cli_error("datasets", "show", "blob2d", "--out", tmp_path / "g.png", "--seed", "-5",
                    capsys=capsys, monkeypatch=monkeypatch)
    assert "got -5" in out


def test_out_naming_a_folder_writes_inside_it(finished_run, tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    result = runner.invoke(app, ["traverse", str(finished_run), "--out", str(folder)])
    assert result.exit_code == 0, result.output
    assert (folder / "traversal.png").stat().st_size > 0
    result = runner.invoke(app, ["datasets", "show", "blob2d", "--out", str(folder)])
    assert result.exit_code == 0 and (folder / "blob2d_factors.png").exists()


@pytest.mark.parametrize("where", ["under_a_file", "unknown_suffix"])
def test_out_naming_an_unwritable_path_is_one_line(finished_run, tmp_path, capsys, monkeypatch,
                                                   where):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    out_path = blocker / "t.png" if where == "under_a_file" else tmp_path / "t.xyz"
    out = cli_error("traverse", finished_run, "--out", out_path, capsys=capsys,
                    monkeypatch=monkeypatch)
    assert f"cannot write {out_path if where == 'unknown_suffix' else out_path}" in out or (
        f"cannot write {blocker}" in out
    )


def test_train_out_naming_a_file_is_one_line(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    out = cli_error("train", "tiny", "--data", "tinygrid", "--steps", "2", "--batch-size", "8",
                    "--out", blocker, capsys=capsys, monkeypatch=monkeypatch)
    assert f"{blocker} is a file, not a folder" in out


def test_isometry_out_naming_a_file_is_refused_before_any_training(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    out = cli_error("experiment", "isometry", "--out", blocker, capsys=capsys,
                    monkeypatch=monkeypatch)
    assert f"{blocker} is a file, not a folder" in out


def test_a_non_npz_dsprites_file_is_one_line(tmp_path, capsys, monkeypatch):
    fake = tmp_path / "dsprites.npz"
    fake.write_bytes(b"<html>404 not found</html>" * 10)
    out = cli_error("datasets", "show", "dsprites", "--data-path", fake, capsys=capsys,
                    monkeypatch=monkeypatch)
    assert "unreadable (not an npz archive); expected" in out


def test_paths_with_brackets_print_verbatim(tmp_path, capsys, monkeypatch):
    run = tmp_path / "[bold]runs[/]" / "[/x]"
    out = cli_error("evaluate", run, capsys=capsys, monkeypatch=monkeypatch)
    assert f"error: {run} is not a run folder" in out


def test_data_options_reach_the_loader_and_unknown_ones_are_named(tmp_path, capsys, monkeypatch):
    result = runner.invoke(app, ["datasets", "show", "blob2d", "--data-option", "steps=8",
                                 "--out", str(tmp_path / "g.png")])
    assert result.exit_code == 0, result.output
    out = cli_error("datasets", "show", "blob2d", "--data-option", "in_memory=true",
                    capsys=capsys, monkeypatch=monkeypatch)
    assert "blob2d twin has no option in_memory; it takes size, steps, width" in out


def test_list_valued_data_options_are_tuples_as_the_loaders_expect():
    from untwine.cli import parse_options

    for text in ("factor_sizes=1,1,1,1,1,2,2", "factor_sizes=(1, 1, 1, 1, 1, 2, 2)"):
        assert parse_options([text]) == {"factor_sizes": (1, 1, 1, 1, 1, 2, 2)}
    assert parse_options(["steps=8", "in_memory=true"]) == {"steps": 8, "in_memory": True}


@pytest.mark.parametrize(
    "args",
    [
        ("train", "tiny", "--seed", str(2**32)),
        ("experiment", "isometry", "--seed", "-1"),
        ("experiment", "isometry", "--seeds", "0,-1"),
    ],
)
def test_seeds_outside_numpys_range_are_refused_in_one_line(args, capsys, monkeypatch):
    register()
    out = cli_error(*args, capsys=capsys, monkeypatch=monkeypatch)
    assert "seed must be an integer in 0 … 2**32 - 1" in out


@pytest.mark.parametrize("command", [("traverse", "RUN"), ("train", "tiny", "--steps", "2")])
def test_an_out_path_that_cannot_be_made_names_a_fix(tmp_path, command, capsys, monkeypatch):
    register()
    run = tmp_path / "run"
    if command[0] == "traverse":
        train(tiny_config(2), run, quiet=True)
    args = [str(run) if a == "RUN" else a for a in command]
    out = cli_error(*args, "--out", "/proc/untwine/x", capsys=capsys, monkeypatch=monkeypatch)
    assert "cannot write /proc/untwine" in out and "choose a path you can write to" in out


def test_a_twin_only_dataset_given_a_file_says_to_drop_it(tmp_path, capsys, monkeypatch):
    out = cli_error("datasets", "show", "blob2d", "--data-path", tmp_path / "x.npz",
                    capsys=capsys, monkeypatch=monkeypatch)
    assert "blob2d has no file loader: it is rendered here; drop --data-path" in out


def test_train_records_data_options_in_config_json(tmp_path):
    config = make_run_config("tiny", {"data.name": "blob2d", "data.options": {"steps": 4}})
    assert config.data.options == {"steps": 4}
    runs.write_config(tmp_path, config)
    assert runs.read_config(tmp_path).data.options == {"steps": 4}
    from untwine.train import load_run_dataset

    assert len(load_run_dataset(config)) == 16


def test_resume_takes_a_device_override_only(finished_run):
    result = runner.invoke(app, ["train", "--resume", str(finished_run), "--steps", "30",
                                 "--set", "device=cpu", "--quiet", "--metrics", "none"])
    assert result.exit_code == 0, result.output
    assert runs.weights_info(finished_run)["step"] == "30"
    result = runner.invoke(app, ["train", "--resume", str(finished_run), "--set", "beta=3"])
    assert isinstance(result.exception, UntwineError)
    assert "drop --set" in str(result.exception)


# -- Ctrl-C after training ---------------------------------------------------------------------


def cli_stopped(*args: str, capsys, monkeypatch) -> str:
    """Run ``untwine ARGS`` through ``main`` (Typer included); the one line a Ctrl-C prints
    (exit code 130, as a shell gives for SIGINT)."""
    monkeypatch.setattr(sys, "argv", ["untwine", *map(str, args)])
    with pytest.raises(SystemExit) as stopped:
        main()
    out = capsys.readouterr().out
    assert stopped.value.code == 130, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and "Traceback" not in out, out
    assert sum(line.startswith("error: ") for line in lines) == 1, out
    return lines[-1]


def ctrl_c(*args, **kwargs):
    raise KeyboardInterrupt


TRAIN_TINY = ["train", "tiny", "--data", "tinygrid", "--steps", "20", "--batch-size", "8",
              "--set", "device=cpu", "--quiet"]


def test_ctrl_c_while_scoring_after_training_says_it_is_saved_and_how_to_score(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(pipeline, "evaluate_model", ctrl_c)
    run = tmp_path / "run"
    line = cli_stopped(*TRAIN_TINY, "--metrics", "fast", "--out", run, capsys=capsys,
                       monkeypatch=monkeypatch)
    assert line == (
        f"error: training finished: {run} is saved at step 20; interrupted while scoring it, so "
        f"metrics.json and the pictures are not written: score it with `untwine evaluate {run}` "
        f"and draw its traversal with `untwine traverse {run}`"
    )
    assert runs.weights_info(run)["step"] == "20" and not (run / runs.METRICS).exists()
    assert pipeline.load_model(run) is not None


def test_ctrl_c_while_drawing_after_training_says_how_to_draw(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(pipeline, "draw_model", ctrl_c)
    run = tmp_path / "run"
    line = cli_stopped(*TRAIN_TINY, "--metrics", "none", "--out", run, capsys=capsys,
                       monkeypatch=monkeypatch)
    assert line == (
        f"error: training finished: {run} is saved at step 20; interrupted while drawing its "
        f"pictures: draw its traversal with `untwine traverse {run}`"
    )
    result = runner.invoke(app, ["traverse", str(run)])
    assert result.exit_code == 0 and (run / "traversal.png").stat().st_size > 0


def test_ctrl_c_during_untwine_evaluate_leaves_the_run_as_it_was(
    finished_run, capsys, monkeypatch
):
    monkeypatch.setattr(pipeline, "evaluate_model", ctrl_c)
    line = cli_stopped("evaluate", finished_run, capsys=capsys, monkeypatch=monkeypatch)
    assert line == (
        f"error: interrupted while scoring {finished_run}; its metrics.json is not (re)written, "
        f"the run is unchanged: score it again with `untwine evaluate {finished_run}`"
    )
    assert not (finished_run / runs.METRICS).exists()


def test_ctrl_c_in_any_other_command_is_one_line(finished_run, capsys, monkeypatch):
    import untwine.viz.traversal as traversal

    monkeypatch.setattr(traversal, "traversal_grid", ctrl_c)
    line = cli_stopped("traverse", finished_run, capsys=capsys, monkeypatch=monkeypatch)
    assert line.startswith("error: interrupted; files already written are kept")


def test_the_library_keeps_ctrl_c_a_keyboard_interrupt(tmp_path, monkeypatch):
    """``except Exception`` (a sweep's retry) must not swallow it."""
    from untwine.errors import Interrupted

    monkeypatch.setattr(pipeline, "evaluate_model", ctrl_c)
    with pytest.raises(Interrupted) as err:
        pipeline.run(tiny_config(20, metrics="fast"), tmp_path / "run", quiet=True)
    assert isinstance(err.value, KeyboardInterrupt) and not isinstance(err.value, Exception)


# -- file modes --------------------------------------------------------------------------------


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_mode_open_would_give(tmp_path, umask, mode):
    """0666 less the umask, as for any new file, not mkstemp's owner-only 0600; also when a
    file is replaced."""
    old = os.umask(umask)
    try:
        path = files.atomic_write_text(tmp_path / "a.json", "{}")
        assert path.stat().st_mode & 0o777 == mode
        files.atomic_write_text(path, "[]")
        assert path.stat().st_mode & 0o777 == mode and path.read_text() == "[]"
        runs.write_config(tmp_path / "run", tiny_config(20))
        assert (tmp_path / "run" / runs.CONFIG).stat().st_mode & 0o777 == mode
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "run"]  # no .tmp left


def test_seeds_beyond_numpy_are_refused_by_the_library():
    with pytest.raises(UntwineError, match="seed must be"):
        check_seed(2**32)
    assert np.random.RandomState(2**32 - 1) is not None
