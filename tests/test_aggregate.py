"""The study table: settings found from the configs, scores exactly as metrics.json has them,
mean ± std over seeds per configuration."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from studyruns import fake_scores, write_run, write_study

from untwine.aggregate import collect, write_tables
from untwine.errors import UntwineError


def test_settings_are_the_fields_that_vary_and_scores_equal_metrics_json(tmp_path):
    write_study(tmp_path / "sweep")
    study = collect([tmp_path / "sweep"])
    assert study.setting_keys == ["model", "data", "beta"]
    assert study.score_keys[:3] == [
        "beta_vae.eval_accuracy", "mig.discrete_mig", "dci_fast.disentanglement"]
    assert "mig.time_s" not in study.score_keys
    for run in study.runs:
        metrics = json.loads((run.run_dir / "metrics.json").read_text())["metrics"]
        assert run.scores["mig.discrete_mig"] == metrics["mig"]["discrete_mig"]
        assert run.scores["dci_fast.disentanglement"] == metrics["dci_fast"]["disentanglement"]
        assert run.final_loss == 90.25 and run.status == "done"


def test_configurations_average_over_seeds_with_the_sample_std(tmp_path):
    write_study(tmp_path)
    configs = {c["label"]: c for c in collect([tmp_path]).configurations()}
    assert set(configs) == {"betavae beta=1", "betavae beta=4", "betatcvae beta=6"}
    row = configs["betavae beta=4"]
    assert row["seeds"] == [0, 1]
    values = [fake_scores("betavae", 4.0, s)["dci"] for s in (0, 1)]
    stats = row["scores"]["dci_fast.disentanglement"]
    assert stats["mean"] == pytest.approx(np.mean(values), abs=1e-15)
    assert stats["std"] == pytest.approx(np.std(values, ddof=1), abs=1e-15)
    assert stats["n"] == 2


def test_one_seed_has_no_std_and_an_unevaluated_run_has_no_scores(tmp_path):
    write_run(tmp_path, "betavae", 1.0, 0)
    lone = write_run(tmp_path, "betavae", 2.0, 0)
    (lone / "metrics.json").unlink()
    study = collect([tmp_path])
    configs = {c["label"]: c for c in study.configurations()}
    assert configs["betavae beta=1"]["scores"]["mig.discrete_mig"]["std"] is None
    assert configs["betavae beta=2"]["scores"]["mig.discrete_mig"] == {
        "mean": None, "std": None, "n": 0}
    assert {r.name: r.status for r in study.runs}["betavae-dsprites-beta2-s0"] == "unevaluated"


def test_scores_of_an_earlier_step_than_the_checkpoint_are_not_reported_as_done(tmp_path):
    # A longer `--resume --steps N` killed after its first checkpoint leaves metrics.json of the
    # old, shorter run: the report must not list those scores as the run's.
    from untwine import runs

    stale, current = write_run(tmp_path, "betavae", 1.0, 0), write_run(tmp_path, "betavae", 1.0, 1)
    for run, scored in ((stale, 40), (current, 60)):
        metrics = json.loads((run / "metrics.json").read_text())
        (run / "metrics.json").write_text(json.dumps({**metrics, "step": scored}))
        runs.save_checkpoint(run, {"step": 60})
    records = {r.name: r for r in collect([tmp_path]).runs}
    assert records[stale.name].status == "unfinished" and records[stale.name].scores == {}
    assert records[current.name].status == "done" and records[current.name].scores


def test_csv_and_json_hold_the_same_numbers_as_metrics_json(tmp_path):
    runs = write_study(tmp_path / "sweep")
    csv_path, json_path = write_tables(collect([tmp_path / "sweep"]), tmp_path / "out")
    with csv_path.open() as handle:
        rows = {r["run"]: r for r in csv.DictReader(handle)}
    body = json.loads(json_path.read_text())
    by_run = {r["run"]: r for r in body["runs"]}
    assert len(rows) == len(runs) == 6 and len(body["configurations"]) == 3
    for run in runs:
        mig = json.loads((run / "metrics.json").read_text())["metrics"]["mig"]["discrete_mig"]
        assert float(rows[run.name]["mig.discrete_mig"]) == mig
        assert by_run[run.name]["mig.discrete_mig"] == mig


def test_a_run_folder_and_a_sweep_folder_can_be_mixed_without_repeats(tmp_path):
    runs = write_study(tmp_path / "sweep")
    study = collect([tmp_path / "sweep", runs[0]])
    assert len(study.runs) == 6
    with pytest.raises(UntwineError, match="no such run or sweep folder"):
        collect([tmp_path / "absent"])


def test_an_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UntwineError, match="holds no run folders"):
        collect([tmp_path / "empty"])


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("config.json", b"\xbe\x00garbage", "is unreadable"),
        ("config.json", b'{"model": "betavae", "train": {', "is unreadable"),
        ("config.json", b"[1, 2]", "holds a JSON list, not an object"),
        ("metrics.json", b'{"metrics": {"mig" 1}}', "is unreadable"),
    ],
)
def test_a_damaged_run_file_is_one_line_naming_it_and_the_fix(tmp_path, name, content, problem):
    run = write_run(tmp_path, "betavae", 1.0, 0)
    (run / name).write_bytes(content)
    with pytest.raises(UntwineError, match=f"{name} {problem}.*leave its folder out of the report"):
        collect([tmp_path])


@pytest.mark.parametrize("content", [b"step,loss\n20,\x00\x00\n40", b"step,loss\n20,1.5\n\xff\xfe"])
def test_a_damaged_log_leaves_the_final_loss_empty_and_the_scores_whole(tmp_path, content):
    run = write_run(tmp_path, "betavae", 1.0, 0)
    (run / "log.csv").write_bytes(content)
    (record,) = collect([tmp_path]).runs
    assert record.final_loss is None and record.status == "done" and record.scores


def test_a_damaged_sweep_manifest_is_one_line_naming_it(tmp_path):
    write_study(tmp_path)
    (tmp_path / "sweep.json").write_text('{"trials": [')
    with pytest.raises(UntwineError, match=r"sweep.json is unreadable .*restore it"):
        collect([tmp_path])
