"""Sweeps on a local Ray (one ray.init for the module, two CPUs): trials finish and are skipped
when the sweep runs again, a failing trial is retried once then reported, an interrupted trial
resumes from its checkpoint, and the report's numbers are the runs' metrics.json."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray") if os.environ.get("CI") != "true" else __import__("ray")

from untwine.data.registry import DATASETS  # noqa: E402
from untwine.models import MODELS  # noqa: E402
from untwine.sweep import parse_spec, run_sweep  # noqa: E402

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray for the module; workers find the tests' modules through PYTHONPATH."""
    before = set(MODELS), set(DATASETS)
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield
    ray.shutdown()
    for name in set(MODELS) - before[0]:
        del MODELS[name]
    for name in set(DATASETS) - before[1]:
        del DATASETS[name]
    sys.modules.pop("sweepmodels", None)


def _spec(**extra):
    return parse_spec({
        "import": ["sweepmodels"],
        "models": {"tiny": extra.pop("axes", {})},
        "data": "tinygrid",
        "steps": 12,
        "set": {"train.batch_size": 8, "train.log_every": 2, "train.checkpoint_every": 4,
                "train.metrics": "fast"},
        **extra,
    })


def test_two_trials_finish_and_a_second_sweep_skips_both(tmp_path):
    spec = _spec(seeds=[0, 1])
    outcomes = run_sweep(spec, tmp_path, quiet=True)
    assert [(o.trial.name, o.status, o.attempts) for o in outcomes] == [
        ("tiny-tinygrid-steps12-s0", "done", 1), ("tiny-tinygrid-steps12-s1", "done", 1)]
    for o in outcomes:
        run = tmp_path / o.trial.name
        assert (run / "model.safetensors").exists() and (run / "metrics.json").exists()
        assert json.loads((run / "config.json").read_text())["train"]["seed"] == o.trial.settings[
            "seed"]
    manifest = json.loads((tmp_path / "sweep.json").read_text())
    assert [t["status"] for t in manifest["trials"]] == ["done", "done"]
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("model.safetensors")}

    again = run_sweep(spec, tmp_path, quiet=True)
    assert [o.status for o in again] == ["skipped", "skipped"]
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("model.safetensors")} == stamps


def test_a_failing_trial_is_retried_once_then_reported_and_the_others_finish(tmp_path):
    spec = _spec(axes={"nan_at": [-1, 3]})
    outcomes = {o.trial.name: o for o in run_sweep(spec, tmp_path, quiet=True)}
    good, bad = outcomes["tiny-tinygrid-nan_at-1-steps12-s0"], outcomes[
        "tiny-tinygrid-nan_at3-steps12-s0"]
    assert (good.status, good.attempts) == ("done", 1)
    assert (bad.status, bad.attempts) == ("failed", 2)
    assert "nan" in bad.error.lower() and "\n" not in bad.error
    manifest = {t["name"]: t for t in json.loads((tmp_path / "sweep.json").read_text())["trials"]}
    assert manifest[bad.trial.name]["status"] == "failed"
    assert manifest[bad.trial.name]["error"] == bad.error


def test_an_interrupted_trial_resumes_from_its_checkpoint_instead_of_starting_over(tmp_path):
    # the model SIGTERMs itself at step 6: the first attempt saves a checkpoint and stops; a
    # fresh start would stop there again, so finishing proves the retry resumed
    spec = _spec(axes={"signal_at": 6})
    [outcome] = run_sweep(spec, tmp_path, quiet=True)
    assert (outcome.status, outcome.attempts) == ("done", 2), outcome.error
    log = (tmp_path / outcome.trial.name / "log.csv").read_text().splitlines()
    steps = [int(float(line.split(",", 1)[0])) for line in log[1:]]
    assert steps == sorted(steps) and steps[-1] == 12 and len(set(steps)) == len(steps)


def test_the_report_of_a_sweep_carries_each_runs_metrics_json(tmp_path):
    from untwine.metrics.evaluate import flat_scores
    from untwine.viz.report import write_report

    outcomes = run_sweep(_spec(seeds=[0, 1, 2]), tmp_path / "sweep", quiet=True)
    written = write_report([tmp_path / "sweep"], tmp_path / "report.html")
    rows = {r["run"]: r for r in json.loads(written["json"].read_text())["runs"]}
    assert len(rows) == 3
    for o in outcomes:
        scores = flat_scores(json.loads((tmp_path / "sweep" / o.trial.name / "metrics.json")
                                        .read_text()))
        assert scores and all(rows[o.trial.name][k] == v for k, v in scores.items())
